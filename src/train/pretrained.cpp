// Training a pretrained PaliGemma (pretrained.base): the trainer's stages on its LoRA adapters. The
// draws, the normal reference's evidence, the prompts' words, the SFT targets and the rewards are
// the ones lriad's own policy gets (context.cpp); only the model differs.
#include <spdlog/spdlog.h>

#include <chrono>
#include <cmath>

#include "lriad/io/fs.h"
#include "lriad/rl/advantages.h"
#include "lriad/rl/rewards.h"
#include "lriad/text/answer.h"
#include "lriad/train/paligemma_grpo.h"
#include "lriad/train/paligemma_run.h"
#include "lriad/train/schedule.h"
#include "run_state.h"
#include "trainer_internal.h"

namespace lriad::train::detail {

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

std::string decode_ids(const Context& ctx, const std::vector<int64_t>& ids) {
  return ctx.tokenizer->decode_completion(ids.data(), int64_t(ids.size()));  // stops at eos
}

}  // namespace

void make_pretrained_policy(Context& ctx, const TrainOptions& o, const TrainerState& state) {
  const RunConfig& config = ctx.config;
  const std::string adapters = o.resume ? checkpoint_file(ctx.run, state, RunFiles::kWeights) : "";
  ctx.pali = load_pretrained(config.pretrained, config.device, config.seed, adapters);
  int64_t frozen = 0, trained = 0;
  for (const auto& p : ctx.pali->parameters()) (p.requires_grad() ? trained : frozen) += p.numel();
  spdlog::info("policy: PaliGemma {} ({} frozen parameters in {}, {} in LoRA adapters of rank {}) on {}{}",
               config.pretrained.base, frozen, config.pretrained.dtype, trained, config.pretrained.lora_rank,
               config.device, o.resume ? ", adapters from " + adapters : "");
}

std::vector<std::string> pretrained_greedy(Context& ctx, const EncodedBatch& batch) {
  torch::NoGradGuard no_grad;
  std::vector<std::string> out;
  for (size_t i = 0; i < batch.items.size(); ++i) {
    const auto ids = model::greedy_generate(*ctx.pali, batch.images.narrow(0, int64_t(i), 1), batch.prompts[i],
                                            ctx.config.sampling.max_new_tokens);
    out.push_back(batch.openings[i] + decode_ids(ctx, ids));
  }
  return out;
}

StepMetrics pretrained_sft_step(Context& ctx, torch::optim::AdamW& optimizer, int step, PreparedBatch prepared) {
  const auto t0 = std::chrono::steady_clock::now();
  const auto& c = ctx.config.sft;
  IdRows targets;
  for (size_t i = 0; i < prepared.items.size(); ++i) {
    const auto& facts = prepared.facts[i];  // the chain states the evidence, as lriad's own policy's does
    targets.push_back(ctx.completion_ids(prepared.items[i], int((uint64_t(step) * 31 + i) % text::kCotVariants),
                                         facts ? &*facts : nullptr));
  }
  EncodedBatch batch = ctx.encode(std::move(prepared));
  const double lr = lr_at(step, c.steps, c.warmup_steps, c.lr);
  set_lr(optimizer, lr);
  ctx.pali->train();
  optimizer.zero_grad();
  const auto [logits, mask] = paligemma_completion_logits(*ctx.pali, batch.images, batch.prompts, targets);  // (B,C,V)
  const auto target = padded_ids(targets, logits.size(1), ctx.tokenizer->pad_id()).to(logits.device());      // (B,C)
  const auto logp = torch::log_softmax(logits, -1).gather(2, target.unsqueeze(-1)).squeeze(-1);              // (B,C)
  const auto count = mask.sum().to(torch::kFloat32);
  const auto loss = -logp.masked_fill(mask.logical_not(), 0.0).sum() / count;
  const double accuracy = ((logits.argmax(-1) == target) & mask).sum().to(torch::kFloat32).div(count).item<double>();
  StepMetrics out;
  out.finite = std::isfinite(loss.item<double>());
  if (!out.finite) out.nonfinite = "loss";
  double grad_norm = 0;
  if (out.finite) {
    loss.backward();
    grad_norm = clip_gradients(*ctx.pali, c.max_grad_norm);  // the adapters' (frozen weights have no gradient)
    out.finite = std::isfinite(grad_norm);
    if (!out.finite) out.nonfinite = "gradient";
    if (out.finite) optimizer.step();
  }
  out.json = {{"loss", loss.item<double>()},
              {"token_accuracy", accuracy},
              {"grad_norm", grad_norm},
              {"learning_rate", lr},
              {"step_time", seconds_since(t0)}};
  return out;
}

StepMetrics pretrained_grpo_step(Context& ctx, torch::optim::AdamW& optimizer, int step, PreparedBatch prepared,
                                 bool log_completions) {
  const auto t0 = std::chrono::steady_clock::now();
  const auto& g = ctx.config.grpo;
  const int64_t G = g.num_generations;
  EncodedBatch batch = ctx.encode(std::move(prepared));
  const int64_t B = int64_t(batch.items.size()), N = B * G;
  const double lr = lr_at(step, g.steps, g.warmup_steps, g.lr);
  set_lr(optimizer, lr);

  // 1. G completions per prompt from the current adapters, the prompt's KV cache shared by its group.
  ctx.pali->eval();
  auto generator = at::detail::createCPUGenerator(ctx.config.seed * 1000003ull + uint64_t(step));
  IdRows prompts, completions;
  std::vector<int64_t> image_of;
  std::vector<std::string> texts;
  std::vector<text::ParsedCompletion> parsed;
  std::vector<bool> truncated;
  for (int64_t b = 0; b < B; ++b)
    for (auto& c : paligemma_sample_group(*ctx.pali, batch.images.narrow(0, b, 1), batch.prompts[size_t(b)], G,
                                          ctx.config.sampling.max_new_tokens, g.temperature, generator)) {
      truncated.push_back(c.empty() || c.back() != ctx.tokenizer->eos_id());
      texts.push_back(batch.openings[size_t(b)] + decode_ids(ctx, c));
      parsed.push_back(text::parse_completion(texts.back(), ctx.defect_types));
      completions.push_back(std::move(c));
      prompts.push_back(batch.prompts[size_t(b)]);
      image_of.push_back(b);
    }
  const double generate_seconds = seconds_since(t0);

  // 2. The rewards of lriad's own policy. The focal term's belief in the right verdict is the share
  // of the group that gave it (rl::group_beliefs over each row's vote).
  std::vector<std::array<double, 2>> votes;
  for (const auto& p : parsed)
    votes.push_back(p.verdict ? std::array<double, 2>{*p.verdict == 0 ? 1.0 : 0.0, *p.verdict == 1 ? 1.0 : 0.0}
                              : std::array<double, 2>{-1.0, -1.0});
  const auto samples = ctx.group_samples(batch);
  std::vector<bool> anomalous;
  for (const auto& sample : samples) anomalous.push_back(sample.target.anomalous);
  if (ctx.dynamic_weights)  // rarity: once per sample (the weights change at the next recompute)
    for (const auto& item : batch.items) ctx.dynamic_weights->observe_sample(item.cls());
  const auto beliefs = rl::group_beliefs(votes, anomalous);
  const auto breakdown = rl::group_rewards(parsed, samples, beliefs, ctx.config.reward);
  std::vector<double> r;
  for (int64_t n = 0; n < N; ++n) {
    r.push_back(breakdown[size_t(n)].total);
    if (ctx.dynamic_weights)
      ctx.dynamic_weights->observe(batch.items[size_t(n / G)].cls(), breakdown[size_t(n)].correct);
  }
  const auto rewards = torch::tensor(r, torch::kDouble);  // (N)
  rl::GroupStats stats;
  auto advantages = rl::group_advantages(rewards, G, rl::parse_scale_rewards(g.scale_rewards), 1e-4, &stats);
  // Groups whose rewards (nearly) tie carry no signal, as in lriad's own policy's update (train/grpo.h).
  stats.zero_std_mask = stats.zero_std_mask | (stats.std < kTieStd);
  stats.frac_zero_std = stats.zero_std_mask.to(torch::kDouble).mean().item<double>();
  advantages = advantages.masked_fill(stats.zero_std_mask.repeat_interleave(G), 0.0).to(torch::kFloat32);

  // 3. One update on the rows the loss keeps (truncated completions out with mask_truncated_completions).
  std::vector<int64_t> kept;
  for (int64_t n = 0; n < N; ++n)
    if (!(g.mask_truncated_completions && truncated[size_t(n)]) &&
        !(g.drop_zero_std_groups && stats.zero_std_mask[n / G].item<bool>()))
      kept.push_back(n);
  rl::GrpoLossParams params;
  params.epsilon_low = g.epsilon;
  params.epsilon_high = g.epsilon_high > 0 ? g.epsilon_high : g.epsilon;
  params.beta = g.beta;
  params.loss_type = rl::parse_loss_type(g.loss_type);
  params.max_completion_length = ctx.config.sampling.max_new_tokens;
  params.num_rows_in_batch = N;  // grpo's and dr_grpo's row count: the batch's, the rows left out included
  PaliGemmaUpdate u;
  if (!kept.empty()) {
    IdRows kp, kc;
    std::vector<int64_t> images;
    for (int64_t n : kept) {
      kp.push_back(prompts[size_t(n)]);
      kc.push_back(completions[size_t(n)]);
      images.push_back(image_of[size_t(n)]);
    }
    const auto rows = torch::tensor(kept, torch::kInt64);
    ctx.pali->train();
    u = paligemma_grpo_update(*ctx.pali, optimizer,
                              batch.images.index_select(0, torch::tensor(images, torch::kInt64).to(ctx.device)), kp, kc,
                              advantages.index_select(0, rows), params, g.max_grad_norm, g.temperature);
  }

  // 4. The metrics.jsonl line (the names lriad's own policy logs) and the completions' log.
  StepMetrics out;
  out.finite = u.finite;
  out.nonfinite = u.nonfinite;
  int correct = 0, formatted = 0, clipped = 0;
  double length = 0;
  for (int64_t n = 0; n < N; ++n) {
    correct += breakdown[size_t(n)].correct;
    formatted += parsed[size_t(n)].well_formed;
    clipped += truncated[size_t(n)];
    length += double(completions[size_t(n)].size());
  }
  nlohmann::json j = {
      {"loss", u.loss},
      {"reward", rewards.mean().item<double>()},
      {"reward_std", g.scale_rewards == "batch" ? rewards.std().item<double>() : stats.std.mean().item<double>()},
      {"frac_reward_zero_std", stats.frac_zero_std},
      {"kl", u.kl_mean},
      {"grad_norm", u.grad_norm},
      {"updates", kept.empty() || !u.finite ? 0 : 1},
      {"accuracy", double(correct) / double(N)},
      {"format_rate", double(formatted) / double(N)},
      {"completions/mean_length", length / double(N)},
      {"completions/clipped_ratio", double(clipped) / double(N)},
      {"learning_rate", lr},
      {"time/generate", generate_seconds},
      {"step_time", seconds_since(t0)}};
  for (const auto& name : rl::reward_names()) {
    double s = 0;
    for (const auto& b : breakdown) s += b.parts.at(name);
    j["rewards/" + name + "/mean"] = s / double(N);
  }
  out.json = j;
  if (log_completions) {
    const auto adv = advantages.to(torch::kDouble).contiguous();
    write_completions(ctx, step, batch.items, texts, breakdown,
                      std::vector<double>(adv.data_ptr<double>(), adv.data_ptr<double>() + adv.numel()), truncated);
  }
  return out;
}

}  // namespace lriad::train::detail
