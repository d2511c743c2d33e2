// Stage 2: one GRPO step — sample G completions per prompt (prefix shared), score them, turn the
// rewards into group advantages and take num_iterations clipped-surrogate updates.
#include <algorithm>
#include <array>
#include <chrono>

#include "lriad/io/error.h"
#include "lriad/io/fs.h"
#include "lriad/model/generate.h"
#include "lriad/model/precision.h"
#include "lriad/train/grpo.h"
#include "lriad/rl/rewards.h"
#include "lriad/text/answer.h"
#include "lriad/train/schedule.h"
#include "trainer_internal.h"

namespace lriad::train::detail {

namespace {

model::TokenRows repeat_rows(const model::TokenRows& rows, int64_t times) {
  model::TokenRows out;
  for (const auto& r : rows)
    for (int64_t g = 0; g < times; ++g) out.push_back(r);
  return out;
}

// 1. G completions per prompt from the current policy, decoded after their openings and parsed.
struct Sampled {
  model::Generation gen;
  std::vector<std::string> texts;              // (N) the chains, openings included
  std::vector<text::ParsedCompletion> parsed;  // (N)
  double seconds = 0;
};

Sampled sample(Context& ctx, const EncodedBatch& batch, int step, bool bf16) {
  const auto t0 = std::chrono::steady_clock::now();
  const auto& g = ctx.config.grpo;
  const int64_t G = g.num_generations, N = int64_t(batch.items.size()) * G;
  model::GenerateOptions go;
  go.group = int(G);
  go.max_new_tokens = ctx.config.sampling.max_new_tokens;
  go.sampling.temperature = g.temperature;
  go.sampling.top_k = ctx.config.sampling.top_k;
  go.sampling.top_p = ctx.config.sampling.top_p;
  go.seed = ctx.config.seed * 1000003ull + uint64_t(step);
  go.rows_total = N * ctx.world();  // this rank's rows of the whole batch: the numbers one process would draw
  go.first_row = N * ctx.rank();
  go.eos_id = ctx.tokenizer->eos_id();
  go.pad_id = ctx.tokenizer->pad_id();
  ctx.policy->eval();
  Sampled s;
  {
    model::AutocastGuard autocast(ctx.device, bf16);
    s.gen = model::generate(ctx.policy, batch.images, batch.prompts, go);
  }
  s.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const auto lengths = s.gen.lengths.cpu();
  const auto tokens_cpu = s.gen.tokens.cpu();
  s.texts.resize(size_t(N));
  s.parsed.resize(size_t(N));
  for (int64_t n = 0; n < N; ++n) {
    s.texts[size_t(n)] = batch.openings[size_t(n / G)] + ctx.decode(tokens_cpu[n], lengths[n].item<int64_t>());
    s.parsed[size_t(n)] = text::parse_completion(s.texts[size_t(n)], ctx.defect_types);
  }
  return s;
}

// 2. The rewards of the N completions from the first forward pass's logits (the focal term's verdict
// probability, one belief per group); fills `breakdown` and `beliefs`, feeds the dynamic weights.
torch::Tensor rewards_of(Context& ctx, const EncodedBatch& batch, const GrpoBatch& gb, const Sampled& sampled,
                         const torch::Tensor& logits, std::vector<rl::RewardBreakdown>& breakdown,
                         std::vector<double>& beliefs) {
  const int64_t G = gb.group, N = int64_t(batch.items.size()) * G;
  const auto& parsed = sampled.parsed;
  std::vector<std::string> categories;
  for (int64_t n = 0; n < N; ++n) categories.push_back(batch.items[size_t(n / G)].category);
  const auto probs =
      decision_probs(ctx, logits, gb.tokens, gb.mask, categories).to(torch::kDouble).cpu().contiguous();  // (N,2)
  std::vector<std::array<double, 2>> p(static_cast<size_t>(N));
  for (int64_t n = 0; n < N; ++n) p[size_t(n)] = {probs[n][0].item<double>(), probs[n][1].item<double>()};
  const auto samples = ctx.group_samples(batch);
  std::vector<bool> anomalous;
  for (const auto& sample : samples) anomalous.push_back(sample.target.anomalous);
  beliefs = rl::group_beliefs(p, anomalous);  // (B): one belief per group, whatever each row's phrasing
  breakdown = rl::group_rewards(parsed, samples, beliefs, ctx.config.reward);
  std::vector<double> r(static_cast<size_t>(N));
  for (int64_t n = 0; n < N; ++n) r[size_t(n)] = breakdown[size_t(n)].total;
  return torch::tensor(r, torch::kDouble);
}

// What the metrics and the dynamic class weights need of each completion, the whole batch's: every
// rank's rows in rank order (one process: its own).
struct BatchRows {
  static constexpr int kFields = 5;  // class, correct, well-formed, length, truncated; then the reward parts
  std::vector<std::string> classes;  // the classes' names, by index (TrainingSource::class_prior's order)
  std::vector<double> rows;          // (rows, kFields + reward_names().size())
  std::vector<double> beliefs;       // one per group
  size_t width() const { return kFields + rl::reward_names().size(); }
  size_t count() const { return rows.size() / width(); }
  double at(size_t n, size_t field) const { return rows[n * width() + field]; }
  const std::string& cls(size_t n) const { return classes[size_t(at(n, 0))]; }
};

BatchRows gather_rows(const Context& ctx, const EncodedBatch& batch, const Sampled& sampled,
                      const std::vector<rl::RewardBreakdown>& breakdown, const std::vector<double>& beliefs) {
  BatchRows b;
  for (const auto& [c, _] : ctx.source->class_prior()) b.classes.push_back(c);
  const int64_t G = ctx.config.grpo.num_generations, N = int64_t(batch.items.size()) * G;
  const auto lengths = sampled.gen.lengths.cpu(), truncated = sampled.gen.truncated.cpu();
  std::vector<double> mine;
  for (int64_t n = 0; n < N; ++n) {
    const auto cls = batch.items[size_t(n / G)].cls();
    const auto it = std::find(b.classes.begin(), b.classes.end(), cls);
    if (it == b.classes.end()) throw Error("internal: class '" + cls + "' is not among the source's classes");
    mine.push_back(double(it - b.classes.begin()));
    mine.push_back(breakdown[size_t(n)].correct);
    mine.push_back(sampled.parsed[size_t(n)].well_formed);
    mine.push_back(double(lengths[n].item<int64_t>()));
    mine.push_back(truncated[n].item<bool>());
    for (const auto& name : rl::reward_names()) mine.push_back(breakdown[size_t(n)].parts.at(name));
  }
  b.rows = ctx.dist ? ctx.dist->all_gather(mine) : mine;
  b.beliefs = ctx.dist ? ctx.dist->all_gather(beliefs) : beliefs;
  return b;
}

// 3. The metrics.jsonl line (TRL's names where one exists), of the whole batch.
nlohmann::json metrics_of(const Context& ctx, const BatchRows& rows, const GrpoUpdate& u, double lr) {
  const auto& g = ctx.config.grpo;
  const size_t N = rows.count();
  const auto& rewards = u.rewards;
  const auto& stats = u.stats;
  nlohmann::json j;
  j["loss"] = u.loss;
  j["reward"] = rewards.mean().item<double>();
  // TRL: the std the advantages were divided by (mean group std, or the batch std).
  j["reward_std"] = g.scale_rewards == "batch" ? rewards.std().item<double>() : stats.std.mean().item<double>();
  j["frac_reward_zero_std"] = stats.frac_zero_std;
  const auto& names = rl::reward_names();
  for (size_t k = 0; k < names.size(); ++k) {
    double s = 0;
    for (size_t n = 0; n < N; ++n) s += rows.at(n, BatchRows::kFields + k);
    j["rewards/" + names[k] + "/mean"] = s / double(N);
  }
  j["kl"] = u.kl;
  j["clip_ratio/region_mean"] = u.clip_region;
  j["clip_ratio/low_mean"] = u.clip_low;
  j["clip_ratio/high_mean"] = u.clip_high;
  double length = 0, truncated = 0;
  for (size_t n = 0; n < N; ++n) length += rows.at(n, 3), truncated += rows.at(n, 4);
  j["completions/mean_length"] = length / double(N);
  j["completions/clipped_ratio"] = truncated / double(N);
  j["entropy"] = u.entropy;
  j["learning_rate"] = lr;
  j["grad_norm"] = u.grad_norm;
  j["updates"] = u.updates;
  std::map<std::string, std::pair<int, int>> per_class;
  int correct = 0, formatted = 0;
  for (size_t n = 0; n < N; ++n) {
    per_class[rows.cls(n)].first += int(rows.at(n, 1));
    per_class[rows.cls(n)].second += 1;
    correct += int(rows.at(n, 1));
    formatted += int(rows.at(n, 2));
  }
  j["accuracy"] = double(correct) / double(N);
  double belief = 0;
  int read = 0;
  for (double b : rows.beliefs)
    if (b >= 0) belief += b, ++read;
  j["belief/mean"] = read ? belief / read : -1.0;  // the focal term's p, per group
  j["belief/unread"] =
      rows.beliefs.empty() ? 0.0 : double(rows.beliefs.size() - size_t(read)) / double(rows.beliefs.size());
  j["format_rate"] = double(formatted) / double(N);
  for (const auto& [cls, ct] : per_class) j["class_accuracy/" + cls] = double(ct.first) / double(ct.second);
  return j;
}

}  // namespace

StepMetrics grpo_step(Context& ctx, torch::optim::AdamW& optimizer, int step, PreparedBatch prepared,
                      bool log_completions) {
  const auto t0 = std::chrono::steady_clock::now();
  const auto& g = ctx.config.grpo;
  const int64_t G = g.num_generations;
  EncodedBatch batch = ctx.encode(std::move(prepared));
  const bool bf16 = model::use_bf16(ctx.config);

  // 1. Sample G completions per prompt from the current policy.
  const Sampled sampled = sample(ctx, batch, step, bf16);
  GrpoBatch gb;
  gb.images = batch.images.repeat_interleave(G, 0);  // (N,3,S,S)
  gb.prompts = repeat_rows(batch.prompts, G);
  gb.tokens = sampled.gen.tokens;
  gb.mask = sampled.gen.mask;
  gb.truncated = sampled.gen.truncated;
  gb.group = G;

  // 2. Rewards (the first forward pass gives the focal term's verdict probability), updates.
  std::vector<rl::RewardBreakdown> breakdown(batch.items.size() * size_t(G));
  std::vector<double> beliefs;
  const double lr = lr_at(step, g.steps, g.warmup_steps, g.lr);
  set_lr(optimizer, lr);
  const GrpoUpdate u = grpo_update(
      ctx.policy, &ctx.ref_policy, optimizer, gb, g, ctx.config.sampling.max_new_tokens, bf16,
      [&](const torch::Tensor& logits) { return rewards_of(ctx, batch, gb, sampled, logits, breakdown, beliefs); },
      ctx.world() > 1 ? ctx.dist.get() : nullptr);

  // 3. The whole batch's rows: the dynamic class weights' counts (rarity once per sample, accuracy
  // per completion; they take effect at the next recompute), the metrics; 4. the completions' log.
  const BatchRows rows = gather_rows(ctx, batch, sampled, breakdown, beliefs);
  if (ctx.dynamic_weights) {
    for (size_t n = 0; n < rows.count(); n += size_t(G)) ctx.dynamic_weights->observe_sample(rows.cls(n));
    for (size_t n = 0; n < rows.count(); ++n) ctx.dynamic_weights->observe(rows.cls(n), rows.at(n, 1) > 0.5);
  }
  StepMetrics out;
  out.finite = u.finite;
  out.nonfinite = u.nonfinite;
  out.json = metrics_of(ctx, rows, u, lr);
  out.json["time/generate"] = sampled.seconds;
  out.json["time/policy_forward"] = u.times.forward;
  out.json["time/ref_policy"] = u.times.ref_policy;
  out.json["time/backward"] = u.times.backward;
  out.json["time/optimizer"] = u.times.optimizer;
  out.json["step_time"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (log_completions && ctx.writer()) {
    const auto adv = u.advantages.to(torch::kDouble).cpu().contiguous();
    const auto truncated = sampled.gen.truncated.cpu();
    std::vector<bool> cut;
    for (int64_t n = 0; n < truncated.size(0); ++n) cut.push_back(truncated[n].item<bool>());
    write_completions(ctx, step, batch.items, sampled.texts, breakdown,
                      std::vector<double>(adv.data_ptr<double>(), adv.data_ptr<double>() + adv.numel()), cut);
  }
  return out;
}

}  // namespace lriad::train::detail
