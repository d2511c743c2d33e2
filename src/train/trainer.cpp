// `lriad train`: run directory, stages, validation, checkpoints and resume.
#include "lriad/train/trainer.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <sstream>

#include "lriad/data/image_io.h"
#include "lriad/data/image_tensor.h"
#include "lriad/io/error.h"
#include "lriad/io/fs.h"
#include "lriad/io/interrupt.h"
#include "lriad/model/generate.h"
#include "lriad/model/policy_input.h"
#include "lriad/model/precision.h"
#include "lriad/model/verdict.h"
#include "lriad/model/weights.h"
#include "lriad/text/answer.h"
#include "lriad/text/prompt.h"
#include "lriad/train/baseline.h"
#include "lriad/train/evidence_check.h"
#include "lriad/train/prefetch.h"
#include "lriad/train/progress.h"
#include "trainer_internal.h"

namespace fs = std::filesystem;

namespace lriad::train {
namespace detail {

double Context::class_weight(const std::string& cls) const {
  if (dynamic_weights) {
    const auto w = dynamic_weights->weights();
    auto it = w.find(cls);
    return it == w.end() ? 1.0 : it->second;
  }
  auto it = static_weights.find(cls);
  return it == static_weights.end() ? 1.0 : it->second;
}

std::vector<int64_t> Context::prompt(const std::string& text, bool keep) {
  auto it = prompt_cache.find(text);
  if (it != prompt_cache.end()) return it->second;
  std::vector<int64_t> ids;
  for (int id : tokenizer->encode(text)) ids.push_back(id);
  if (keep) prompt_cache[text] = ids;
  return ids;
}

std::optional<double> Context::level(const std::string& category) const {
  if (!normal_reference || !levels) return std::nullopt;
  return levels->level(category);
}

PreparedBatch Context::prepare(std::vector<TrainItem> items) {
  std::vector<torch::Tensor> images;
  for (const auto& it : items) images.push_back(it.input.defined() ? it.input : input_of(it));  // (C,S,S); the gate made some
  PreparedBatch b;
  b.images = torch::stack(images);  // (B,C,S,S), C = model.image_channels()
  for (size_t i = 0; i < items.size(); ++i) {
    const std::string& cat = items[i].category;
    b.facts.push_back(facts_of(images[i], cat));
    // run_training checks first that every category has a level, so an opened chain always has facts.
    if (config.model.opens_chains() && !b.facts.back())
      throw Error("internal: no evidence facts for an opened chain of category '" + cat + "'");
    b.openings.push_back(model::chain_opening(cat, config.model, b.facts.back() ? &*b.facts.back() : nullptr));
  }
  b.items = std::move(items);
  return b;
}

torch::Tensor Context::input_of(const TrainItem& item) {
  std::call_once(inputs_made, [this] { inputs = std::make_unique<InputMaker>(config.model, normal_reference.get()); });
  return (*inputs)(item);
}

EncodedBatch Context::encode(PreparedBatch prepared) {
  EncodedBatch b;
  for (size_t i = 0; i < prepared.items.size(); ++i) {
    const std::string& cat = prepared.items[i].category;
    const auto& f = prepared.facts[i];
    b.prompts.push_back(prompt(model::policy_prompt(cat, config.model, f ? &*f : nullptr), prepared.openings[i].empty()));
  }
  b.images = prepared.images.to(device);
  b.items = std::move(prepared.items);
  b.facts = std::move(prepared.facts);
  b.openings = std::move(prepared.openings);
  return b;
}

std::vector<TrainItem> stage_items(const Context& ctx, const std::string& stage, int step) {
  // Each stage draws from its own stream of (step, index) keys.
  uint64_t base = 0;
  int count = ctx.config.sft.batch_size;
  if (stage == "grpo") {
    base = uint64_t(1) << 40;
    count = ctx.config.grpo.batch_size;
  } else if (stage == "vision") {
    base = uint64_t(2) << 40;
    count = ctx.config.sft.vision_batch_size;
  }
  std::vector<TrainItem> items;
  for (int i = 0; i < count; ++i) items.push_back(ctx.source->draw(base + uint64_t(step), i));
  return items;
}

std::optional<text::EvidenceFacts> Context::facts_of(const torch::Tensor& input, const std::string& category) const {
  const auto at = level(category);
  if (!at || input.size(0) < 4) return std::nullopt;  // no level to state a ratio to: the short template
  return model::input_facts(input, *at);
}

std::vector<int64_t> Context::completion_ids(const TrainItem& item, int variant, const text::EvidenceFacts* facts) const {
  text::CotSpec spec;
  spec.evidence = facts;
  spec.category = item.category;
  spec.anomalous = item.anomalous;
  spec.defect_type = item.anomalous ? item.defect_type : "";
  spec.region = item.region;
  spec.variant = variant;
  std::string target = text::build_completion(spec);
  if (facts && config.model.opens_chains()) {  // the prompt ends with the opening: the policy learns the rest
    spec.variant = 0;
    target = text::build_completion(spec);
    const std::string opening = text::grounded_opening(spec.category, *facts);
    if (target.compare(0, opening.size(), opening) != 0)
      throw Error("internal: a grounded chain does not start with its opening: " + target);
    target.erase(0, opening.size());
  }
  std::vector<int64_t> ids;
  for (int id : tokenizer->encode(target)) ids.push_back(id);
  ids.push_back(tokenizer->eos_id());
  return ids;
}

std::string Context::decode(const torch::Tensor& row, int64_t length) const {
  const auto r = row.to(torch::kCPU, torch::kInt64).contiguous();
  return tokenizer->decode_completion(r.data_ptr<int64_t>(), std::min(length, r.size(0)));
}

void Context::log_metrics(const nlohmann::json& line) {
  metrics << line.dump() << "\n";
  metrics.flush();
}

torch::Tensor verdict_probs(const Context& ctx, const torch::Tensor& logits, const torch::Tensor& tokens,
                            const torch::Tensor& mask, const std::vector<std::string>& categories) {
  return model::decision_probs(logits, tokens, mask, categories, ctx.decisions,
                               model::verdict_probs(logits, tokens, mask, ctx.verdict));
}

void set_lr(torch::optim::AdamW& optimizer, double lr) {
  for (auto& group : optimizer.param_groups()) static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);
}

ValidationResult validate(Context& ctx) {
  const auto& items = ctx.source->validation();
  ValidationResult v;
  v.items = int(items.size());
  if (items.empty()) return v;
  torch::NoGradGuard no_grad;
  ctx.policy->eval();
  int tp = 0, fn = 0, tn = 0, fp = 0, formatted = 0;
  std::map<std::string, std::pair<int, int>> per_class;
  const size_t chunk = 32;
  for (size_t start = 0; start < items.size(); start += chunk) {
    std::vector<TrainItem> part(items.begin() + long(start), items.begin() + long(std::min(items.size(), start + chunk)));
    EncodedBatch b = ctx.encode(ctx.prepare(part));
    model::GenerateOptions go;
    go.max_new_tokens = ctx.config.sampling.max_new_tokens;
    go.sampling.greedy = true;
    go.eos_id = ctx.tokenizer->eos_id();
    go.pad_id = ctx.tokenizer->pad_id();
    model::Generation gen;
    {
      model::AutocastGuard autocast(ctx.device, model::use_bf16(ctx.config));
      gen = model::generate(ctx.policy, b.images, b.prompts, go);
    }
    const auto lengths = gen.lengths.cpu();
    for (size_t i = 0; i < b.items.size(); ++i) {
      const auto p = text::parse_completion(b.openings[i] + ctx.decode(gen.tokens[long(i)], lengths[long(i)].item<int64_t>()),
                                            ctx.defect_types);
      const bool truth = b.items[i].anomalous;
      const bool right = p.verdict.has_value() && *p.verdict == int(truth);
      formatted += p.well_formed;
      if (truth) (right ? tp : fn)++;
      else (right ? tn : fp)++;
      CategoryAnswers& a = v.answers[b.items[i].category];
      const bool said_anomalous = p.verdict == 1, said_normal = p.verdict == 0;
      if (truth) {
        ++a.anomalous_items;
        a.anomalous_said_anomalous += said_anomalous;
        a.anomalous_said_normal += said_normal;
      } else {
        ++a.normal_items;
        a.normal_said_anomalous += said_anomalous;
        a.normal_said_normal += said_normal;
      }
      per_class[b.items[i].cls()].first += right;
      per_class[b.items[i].cls()].second += 1;
    }
  }
  v.recall_anomalous = tp + fn ? double(tp) / (tp + fn) : 0;
  v.recall_normal = tn + fp ? double(tn) / (tn + fp) : 0;
  v.balanced_accuracy = (tp + fn && tn + fp) ? (v.recall_anomalous + v.recall_normal) / 2 : (tp + fn ? v.recall_anomalous : v.recall_normal);
  v.accuracy = double(tp + tn) / v.items;
  v.normal_items = tn + fp;
  v.anomalous_items = tp + fn;
  v.format_rate = double(formatted) / v.items;
  for (const auto& [c, ct] : per_class) v.class_accuracy[c] = double(ct.first) / ct.second;
  return v;
}

}  // namespace detail

namespace {

using detail::Context;

std::string state_path(const RunFiles& run) { return run.dir + "/trainer_state.json"; }
std::string best_path(const RunFiles& run) { return run.dir + "/best.safetensors"; }
std::string sft_path(const RunFiles& run) { return run.dir + "/sft.safetensors"; }

struct TrainerState {
  std::string stage = "vision";  // vision | sft | grpo | done
  int step = 0;               // completed steps of `stage`
  double best = -1;           // best validation balanced accuracy
  std::string best_at;        // "sft:300"
  bool best_at_chance = false;  // at_chance of the best validation
  std::string best_answers;     // describe_answers of the best validation
  nlohmann::json dynamic_weights;
  // How the run computes, decided at its start (model::choose_precision): "bf16" or "fp32", and why.
  // A resumed run whose config says "auto" keeps it, so that it goes on as it started.
  std::string precision;
  std::string precision_reason;
  // The checkpoint folder (relative to the run) whose files resume the run; "" = the run's own
  // model.safetensors (a run that has not finished a checkpoint yet).
  std::string checkpoint;
};

// A checkpoint's files: weights, optimizer state and the SFT vision probe.
std::string checkpoint_file(const RunFiles& run, const TrainerState& s, const std::string& name) {
  if (s.checkpoint.empty()) return name == "model.safetensors" ? run.weights() : run.dir + "/" + name;
  return run.dir + "/" + s.checkpoint + "/" + name;
}

void save_state(const RunFiles& run, const TrainerState& s) {
  nlohmann::json j = {{"stage", s.stage}, {"step", s.step}, {"best_balanced_accuracy", s.best}, {"best_at", s.best_at},
                      {"checkpoint", s.checkpoint}, {"at_chance", s.best_at_chance}, {"best_answers", s.best_answers}};
  if (!s.precision.empty()) j["precision"] = {{"used", s.precision}, {"reason", s.precision_reason}};
  if (!s.dynamic_weights.is_null()) j["dynamic_class_weights"] = s.dynamic_weights;
  io::write_file_atomic(state_path(run), j.dump(2) + "\n");
}

int stage_rank(const std::string& stage) {
  return stage == "vision" ? 0 : stage == "sft" ? 1 : stage == "grpo" ? 2 : 3;
}

// Resuming replays the steps after the last checkpoint: drop their lines from the logs first.
void truncate_log(const std::string& path, const TrainerState& s) {
  if (!io::is_file(path)) return;
  std::ifstream in(path);
  std::string kept, line;
  size_t dropped = 0;
  while (std::getline(in, line)) {
    bool keep = true;
    try {
      const auto j = nlohmann::json::parse(line);
      const int rank = stage_rank(j.at("stage").get<std::string>()), step = j.at("step").get<int>();
      keep = rank < stage_rank(s.stage) || (rank == stage_rank(s.stage) && step <= s.step);
    } catch (const nlohmann::json::exception&) {
      keep = false;  // a line cut short by the interruption
    }
    if (keep) kept += line + "\n";
    else ++dropped;
  }
  in.close();
  if (dropped) {
    io::write_file_atomic(path, kept);
    spdlog::info("{}: dropped {} lines written after the last checkpoint", path, dropped);
  }
}

TrainerState load_state(const RunFiles& run) {
  TrainerState s;
  if (!io::is_file(state_path(run)))
    throw Error("cannot resume " + run.dir + ": no trainer_state.json", "it has no checkpoint yet; start it again with --overwrite");
  std::ifstream in(state_path(run));
  nlohmann::json j;
  try {
    in >> j;
    s.stage = j.at("stage").get<std::string>();
    s.step = j.at("step").get<int>();
    s.best = j.at("best_balanced_accuracy").get<double>();
    s.best_at = j.at("best_at").get<std::string>();
    if (j.contains("dynamic_class_weights")) s.dynamic_weights = j["dynamic_class_weights"];
    if (j.contains("checkpoint")) s.checkpoint = j["checkpoint"].get<std::string>();
    if (j.contains("at_chance")) s.best_at_chance = j["at_chance"].get<bool>();
    if (j.contains("best_answers")) s.best_answers = j["best_answers"].get<std::string>();
    if (j.contains("precision")) {
      s.precision = j["precision"].at("used").get<std::string>();
      s.precision_reason = j["precision"].at("reason").get<std::string>();
    }
  } catch (const nlohmann::json::exception& e) {
    throw Error(state_path(run) + " is damaged: " + e.what(), "start the run again with --overwrite");
  }
  return s;
}

// A checkpoint is a folder checkpoints/<stage>-<step> written in full, then committed by
// trainer_state.json (renamed into place) naming it; only then do older folders go. A crash at any
// moment leaves the state naming a complete checkpoint.
void save_checkpoint(Context& ctx, torch::optim::AdamW& optimizer, TrainerState& state) {
  if (ctx.dynamic_weights) state.dynamic_weights = ctx.dynamic_weights->to_json();
  char name[64];
  std::snprintf(name, sizeof(name), "%s-%05d", state.stage.c_str(), state.step);
  const std::string rel = std::string("checkpoints/") + name, dir = ctx.run.dir + "/" + rel;
  std::error_code ec;
  fs::remove_all(dir, ec);
  fs::create_directories(dir, ec);
  if (ec) throw Error("cannot create " + dir + ": " + ec.message(), "check permissions and free space");
  const std::map<std::string, std::string> where = {{"stage", state.stage}, {"step", std::to_string(state.step)}};
  save_policy(RunFiles{dir}, *ctx.policy, where);  // dir/model.safetensors with the policy format
  if (ctx.vision_probe && state.stage != "grpo") model::save_weights(*ctx.vision_probe, dir + "/vision_probe.safetensors");
  torch::save(optimizer, dir + "/optimizer.pt.tmp");
  fs::rename(dir + "/optimizer.pt.tmp", dir + "/optimizer.pt");
  TrainerState committed = state;
  committed.checkpoint = rel;
  save_state(ctx.run, committed);  // the commit point
  state = committed;
  save_policy(ctx.run, *ctx.policy, where);  // the run's model.safetensors, for eval
  for (const auto& e : fs::directory_iterator(ctx.run.dir + "/checkpoints", ec))
    if (e.path().filename() != name) fs::remove_all(e.path(), ec);
}

void maybe_keep_best(Context& ctx, TrainerState& state, const ValidationResult& v, const std::string& where) {
  if (v.items == 0 || !replaces_best(v.balanced_accuracy, state.best)) return;
  state.best = v.balanced_accuracy;
  state.best_at = where;
  state.best_at_chance = at_chance(v);
  state.best_answers = describe_answers(v);
  model::save_weights(*ctx.policy, best_path(ctx.run), {{"format", kPolicyFormat}, {"format_version", kPolicyFormatVersion}, {"stage", where}});
}

void log_validation(Context& ctx, const std::string& stage, int step, const ValidationResult& v) {
  nlohmann::json line = to_json(v);
  line["stage"] = stage;
  line["step"] = step;
  std::ofstream out(ctx.run.dir + "/validation.jsonl", std::ios::app);
  out << line.dump() << "\n";
  spdlog::info("validation {} step {}: balanced accuracy {:.3f} (anomalous recall {:.3f}, normal {:.3f}), format {:.3f}",
               stage, step, v.balanced_accuracy, v.recall_anomalous, v.recall_normal, v.format_rate);
}

// A stage that ends at chance has learnt nothing the evidence could tell it: say so loudly, with
// what the policy answers and where to look, instead of letting GRPO and eval run on it unnoticed.
void warn_if_at_chance(const ValidationResult& v, const std::string& what, const RunConfig& config) {
  if (!at_chance(v)) return;
  spdlog::warn("!!! validation after {} is AT CHANCE: balanced accuracy {:.3f} (anomalous recall {:.3f}, normal {:.3f})",
               what, v.balanced_accuracy, v.recall_anomalous, v.recall_normal);
  spdlog::warn("!!! the policy {}", describe_answers(v));
  spdlog::warn("!!! check: the normal reference's evidence on your images (`lriad eval` prints the evidence-only "
               "baseline); the synthetic anomalies' strength (data.anomaly_contrast_min {}, data.anomaly_scale_min {}); "
               "the learning rate (sft.lr {}); more steps (sft.steps {})",
               config.data.anomaly_contrast_min, config.data.anomaly_scale_min, config.sft.lr, config.sft.steps);
}

// Runs `stage` from state.step to `total`; returns what this call ran.
template <class StepFn>
StageSummary run_stage(Context& ctx, torch::optim::AdamW& optimizer, TrainerState& state, const std::string& stage,
                       int total, StepFn step_fn) {
  StageSummary summary;
  summary.stage = stage;
  const auto& tc = ctx.config.train;
  Progress progress(stage, total, tc.log_every);
  int skips = 0;
  const int first = state.step;
  // The next batches are prepared on a background thread (one LibTorch thread) while this one
  // trains (train.prefetch; by default on CUDA only: on a CPU the thread takes cores from the step).
  const int depth = tc.prefetch >= 0 ? tc.prefetch : (ctx.device.is_cuda() ? 2 : 0);
  Prefetcher<detail::PreparedBatch> prefetch(
      [&](int step) { return ctx.prepare(detail::stage_items(ctx, stage, step)); }, first, total, depth,
      [] { torch::set_num_threads(1); });
  for (int step = first; step < total; ++step) {
    detail::PreparedBatch batch = prefetch.take(step);
    const double data_wait = prefetch.last_wait();
    detail::StepMetrics m = step_fn(step, std::move(batch));
    m.json["time/data_wait"] = data_wait;
    m.json["skipped"] = m.finite ? 0 : 1;  // a non-finite update is skipped and counted
    if (!m.finite) {
      ++skips;
      m.json["nonfinite"] = m.nonfinite;
      spdlog::warn("{} step {}: non-finite {}, update skipped ({} in a row)", stage, step + 1, m.nonfinite, skips);
      if (skips >= tc.max_consecutive_skips)
        throw Error(stage + " stopped after " + std::to_string(skips) + " non-finite steps in a row (last: " + m.nonfinite +
                        ") at step " +
                        std::to_string(step + 1) + "; the last checkpoint in " + ctx.run.dir + " is intact",
                    "lower the learning rate (--set " + stage + ".lr=...) or use precision fp32, then --resume");
    } else {
      skips = 0;
    }
    state.step = step + 1;
    nlohmann::json line = m.json;
    line["stage"] = stage;
    line["step"] = state.step;
    if (ctx.dynamic_weights && stage == "grpo" && state.step % std::max(1, ctx.config.reward.dynamic_every) == 0) {
      const auto w = ctx.dynamic_weights->recompute();
      std::string shown;
      for (const auto& [c, x] : w) shown += fmt::format(" {}={:.2f}", c, x);
      spdlog::debug("class weights:{}", shown);
    }
    if (stage == "grpo") {
      for (const auto& [c, _] : ctx.source->class_prior()) line["class_weight/" + c] = ctx.class_weight(c);
      if (ctx.dynamic_weights) {  // the two named parts of the dynamic weights
        for (const auto& [c, v] : ctx.dynamic_weights->shares()) line["class_rarity/" + c] = v;
        for (const auto& [c, v] : ctx.dynamic_weights->difficulties()) line["class_difficulty/" + c] = v;
      }
    }
    ctx.log_metrics(line);
    std::vector<std::pair<std::string, double>> shown;
    if (stage == "vision") {
      shown = {{"loss", line["loss"].get<double>()}, {"acc", line["accuracy"].get<double>()}};
    } else if (stage == "sft") {
      shown = {{"loss", line["loss"].get<double>()}, {"tok_acc", line["token_accuracy"].get<double>()}};
      if (ctx.config.sft.vision_aux > 0) shown.push_back({"aux_acc", line["vision_aux_accuracy"].get<double>()});
    } else {
      shown = {{"reward", line["reward"].get<double>()}, {"acc", line["accuracy"].get<double>()},
               {"kl", line["kl"].get<double>()}};
    }
    shown.push_back({"lr", line["learning_rate"].get<double>()});
    progress.update(state.step, shown);
    ++summary.steps;
    const bool last = state.step == total;
    if (stage != "vision" && ((tc.eval_every > 0 && state.step % tc.eval_every == 0) || last)) {
      const auto v = detail::validate(ctx);
      log_validation(ctx, stage, state.step, v);
      maybe_keep_best(ctx, state, v, stage + ":" + std::to_string(state.step));
      if (last) summary.final_validation = v;
    }
    const bool save = (tc.save_every > 0 && state.step % tc.save_every == 0) || last;
    if (save) save_checkpoint(ctx, optimizer, state);
    if (const int sig = io::interrupt_requested()) {
      if (!save) save_checkpoint(ctx, optimizer, state);
      progress.finish();
      throw io::Interrupted(sig,
                            "interrupted: " + stage + " step " + std::to_string(state.step) + " of " + std::to_string(total) +
                                " is saved in " + ctx.run.dir + "/" + state.checkpoint,
                            "continue the run with: lriad train --resume --out " + ctx.run.dir);
    }
  }
  progress.finish();
  summary.seconds = progress.elapsed_seconds();
  return summary;
}

// The longest prompt and SFT target must fit the model, and GRPO must be able to sample a whole
// completion; otherwise training fails late or (GRPO) silently learns nothing.
void check_lengths(Context& ctx) {
  size_t prompt = 0, completion = 0;
  for (const auto& cat : ctx.source->categories()) {
    prompt = std::max(prompt, ctx.prompt(text::build_prompt(cat)).size());
    for (int v = 0; v < text::kCotVariants; ++v) {
      TrainItem item;
      item.category = cat;
      completion = std::max(completion, ctx.completion_ids(item, v).size());
      item.anomalous = true;
      for (const auto& type : ctx.defect_types) {
        item.defect_type = type;
        for (int r = 0; r < text::kRegionCount; ++r) {
          item.region = text::Region(r);
          completion = std::max(completion, ctx.completion_ids(item, v).size());
        }
      }
      if (ctx.levels) {  // grounded chains: the longest region pair, ratio and descriptions
        text::EvidenceFacts f;
        f.above = true;
        f.where = text::Region::UpperLeft;
        f.also = text::Region::LowerLeft;
        f.ratio = 99;
        for (auto e : {text::EvidenceFacts::Extent::Compact, text::EvidenceFacts::Extent::Thin})
          for (auto t : {text::EvidenceFacts::Tone::Darker, text::EvidenceFacts::Tone::Brighter}) {
            f.extent = e;
            f.tone = t;
            if (ctx.config.model.opens_chains())
              prompt = std::max(prompt, ctx.prompt(model::policy_prompt(cat, ctx.config.model, &f), false).size());
            item.anomalous = false;
            completion = std::max(completion, ctx.completion_ids(item, v, &f).size());
            item.anomalous = true;
            for (const auto& type : ctx.defect_types) {
              item.defect_type = type;
              completion = std::max(completion, ctx.completion_ids(item, v, &f).size());
            }
          }
      }
    }
  }
  const auto& m = ctx.config.model;
  const size_t need = size_t(m.image_tokens()) + prompt + std::max(completion, size_t(ctx.config.sampling.max_new_tokens));
  if (need > size_t(m.max_seq_len))
    throw Error("model.max_seq_len " + std::to_string(m.max_seq_len) + " is too short: " + std::to_string(m.image_tokens()) +
                    " image tokens + " + std::to_string(prompt) + " prompt tokens + " +
                    std::to_string(std::max(completion, size_t(ctx.config.sampling.max_new_tokens))) + " completion tokens",
                "--set model.max_seq_len=" + std::to_string(need));
  if (ctx.config.grpo.steps > 0 && completion > size_t(ctx.config.sampling.max_new_tokens))
    spdlog::warn("sampling.max_new_tokens {} cannot hold the longest chain of thought ({} tokens with eos): GRPO will "
                 "see truncated completions{} (--set sampling.max_new_tokens={})",
                 ctx.config.sampling.max_new_tokens, completion,
                 ctx.config.grpo.mask_truncated_completions ? ", which grpo.mask_truncated_completions excludes from the loss" : "",
                 completion + 4);
  spdlog::debug("longest prompt {} tokens, longest target {} tokens", prompt, completion);
}

// The evidence: every training normal's map against the bank its draws use (kept cached for
// training), and from those the normal level per category. Then, before the first step of a new
// run, the evidence check (is a synthetic anomaly above that level at all? where it is not, its
// label is noise and training stays at chance), and the evidence gate built on the same levels.
void prepare_evidence(Context& ctx, bool log_check) {
  const auto& dc = ctx.config.data;
  const bool gate_on = dc.evidence_gate_quantile > 0 && dc.anomaly_ratio > 0;
  if (!log_check && !gate_on) return;
  // 1. The normal draws' peaks.
  std::map<std::string, std::vector<double>> peaks;
  const auto normals = ctx.source->normal_items();
  for (size_t i = 0; i < normals.size(); i += 32) {
    std::vector<TrainItem> part(normals.begin() + long(i), normals.begin() + long(std::min(normals.size(), i + 32)));
    const auto batch = ctx.prepare(part).images;  // (B,4,S,S), cached by source
    for (size_t k = 0; k < part.size(); ++k) peaks[part[k].category].push_back(evidence_peak(batch[long(k)]));
  }
  const double q = gate_on ? dc.evidence_gate_quantile : kBaselineQuantile;
  Context* c = &ctx;  // the gate keeps it: the context outlives the source's draws
  const auto input = [c](const TrainItem& t) { return c->input_of(t); };
  // 2. The raw synthetic anomalies against those levels (before the gate changes the draws).
  if (log_check) {
    const int steps = std::max(1, std::min(ctx.config.sft.steps, 200 / std::max(1, ctx.config.sft.batch_size)));
    const auto t0 = std::chrono::steady_clock::now();
    const EvidenceCheck check = check_evidence(*ctx.source, peaks, input, steps, ctx.config.sft.batch_size, q);
    spdlog::info("evidence check on the synthetic anomalies of {} training draws ({:.1f} s):",
                 steps * ctx.config.sft.batch_size, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    for (const auto& line : describe(check)) spdlog::info("  {}", line);
  }
  if (!gate_on) return;
  // 3. The gate.
  EvidenceGate gate;
  gate.attempts = dc.evidence_gate_attempts;
  gate.input = input;
  std::string shown;
  for (const auto& [cat, p] : peaks) {
    gate.level[cat] = quantile(p, q);
    shown += fmt::format("{}{} {:.2f}", shown.empty() ? "" : ", ", cat, gate.level[cat]);
  }
  ctx.source->set_evidence_gate(std::move(gate));
  spdlog::info("evidence gate: synthetic anomalies must peak above the normal draws' {:.0f}% level ({}), else are "
               "redrawn up to {} times", 100 * q, shown, dc.evidence_gate_attempts);
}

void load_optimizer(torch::optim::AdamW& opt, const std::string& path) {
  if (!io::is_file(path)) throw Error("cannot resume: " + path + " is missing", "the checkpoint is incomplete; start again with --overwrite");
  try {
    torch::load(opt, path);
  } catch (const c10::Error& e) {
    throw Error("cannot resume: " + path + " is not a readable optimizer state", "start again with --overwrite");
  }
}

torch::optim::AdamW make_optimizer(Context& ctx, double lr, double weight_decay) {
  return torch::optim::AdamW(ctx.policy->parameters(), torch::optim::AdamWOptions(lr).weight_decay(weight_decay));
}

}  // namespace

TrainSummary run_training(RunConfig config, const TrainOptions& o) {
  prepare_run_dir(o.out, o.overwrite, o.resume);
  Context ctx;
  ctx.run = RunFiles{o.out};
  TrainerState state;
  if (o.resume) {
    state = load_state(ctx.run);
    config = load_config(ctx.run.config(), o.resume_overrides);  // the run's own config wins over --config
    if (!o.resume_overrides.empty()) {
      std::string shown;
      for (const auto& s : o.resume_overrides) shown += " " + s;
      spdlog::warn("resuming with changed settings:{} (saved in {})", shown, ctx.run.config());
      save_config(config, ctx.run.config());
    }
    truncate_log(ctx.run.metrics(), state);
    truncate_log(ctx.run.dir + "/validation.jsonl", state);
    spdlog::info("resuming {} at {} step {}", o.out, state.stage, state.step);
  } else {
    if (o.overwrite)
      for (const char* f : {"metrics.jsonl", "validation.jsonl", "trainer_state.json", "optimizer.pt", "best.safetensors",
                            "sft.safetensors", "tokenizer.model", "vision_probe.safetensors", "model.safetensors",
                            "train_from_test.csv", "baseline.json", "policy_input.json"}) {
        std::error_code ec;
        fs::remove(ctx.run.dir + "/" + f, ec);
      }
    if (o.overwrite) {
      std::error_code ec;
      fs::remove_all(ctx.run.dir + "/completions", ec);
      fs::remove_all(ctx.run.dir + "/checkpoints", ec);
    }
    const int vocab = ensure_tokenizer(ctx.run, config, o.tokenizer);
    if (config.model.vocab_size != 0 && config.model.vocab_size != vocab)
      spdlog::warn("model.vocab_size {} replaced by the tokenizer's {}", config.model.vocab_size, vocab);
    config.model.vocab_size = vocab;
    config.validate();
    save_config(config, ctx.run.config());
  }
  // precision "auto": a resumed run computes as it started (this process only: config.json keeps "auto").
  const bool precision_kept = o.resume && config.precision == "auto" && !state.precision.empty();
  if (precision_kept) config.precision = state.precision;
  ctx.config = config;
  ctx.device = torch::Device(config.device);
  ctx.tokenizer = std::make_shared<text::Tokenizer>(ctx.run.tokenizer());
  ctx.verdict = model::verdict_ids(*ctx.tokenizer);
  ctx.source = std::make_unique<TrainingSource>(config);
  ctx.decisions = model::decision_points(*ctx.tokenizer, ctx.source->categories(), config.model.opens_chains());
  spdlog::info("data: {}", ctx.source->describe());
  ctx.source->input_record().save(ctx.run.policy_input());  // eval makes the input training makes
  ctx.defect_types = ctx.source->defect_types();
  if (config.model.reference == "knn") {
    const std::string path = ctx.run.reference();
    if (o.resume && io::is_file(path)) {
      ctx.normal_reference = std::make_unique<data::NormalReference>(data::NormalReference::load(path));
    } else {
      ctx.normal_reference = std::make_unique<data::NormalReference>(build_normal_reference(*ctx.source, config));
      ctx.normal_reference->save(path);
    }
    if (ctx.device.is_cuda()) ctx.normal_reference->to(ctx.device);  // its products on the GPU
    if (!o.resume || !io::is_file(ctx.run.baseline()))  // the evidence-only baseline eval reports
      save_baseline(fit_baseline(*ctx.source, *ctx.normal_reference), ctx.run.baseline());
    ctx.levels = load_baseline(ctx.run.baseline());  // the normal levels the chains state ratios to
    for (const auto& cat : ctx.source->categories())
      if (config.model.opens_chains() && !ctx.level(cat))
        throw Error("model.prompt_evidence: category '" + cat + "' has no normal level in " + ctx.run.baseline(),
                    "the level comes from held-out normal training images: give the category more normal images, or "
                    "--set model.prompt_evidence=false");
  }
  check_lengths(ctx);
  if (ctx.normal_reference) prepare_evidence(ctx, /*log_check=*/!o.resume);
  if (!ctx.source->from_test().samples.empty())
    save_train_from_test(ctx.source->from_test(), ctx.run.dir + "/train_from_test.csv");
  fs::create_directories(ctx.run.dir + "/completions");

  // Policy: resumed, initialised from another run, or fresh.
  ctx.policy = model::make_policy(config.model, config.seed);
  if (o.resume) {
    model::load_weights(*ctx.policy, checkpoint_file(ctx.run, state, "model.safetensors"));
  } else if (!o.init.empty()) {
    const RunFiles from{o.init};
    model::load_weights(*ctx.policy, from.weights());
    spdlog::info("initialised from {}", from.weights());
  }
  ctx.policy->to(ctx.device);
  const auto precision = model::choose_precision(config);
  state.precision = precision.bf16 ? "bf16" : "fp32";
  if (!precision_kept) state.precision_reason = precision.reason;
  if (!o.resume) {  // a run has weights (and a resumable state) from its first moment
    save_policy(ctx.run, *ctx.policy, {{"stage", "init"}, {"step", "0"}});
    save_state(ctx.run, state);
  }
  const auto counts = model::parameter_counts(*ctx.policy);
  spdlog::info("policy: {} parameters on {}, {} ({}{})", counts.back().second, config.device,
               state.precision == "bf16" ? "bf16 autocast" : "fp32", precision_kept ? "kept from the run's start: " : "",
               state.precision_reason);

  // Class weights of the focal reward: real frequencies (rl/class_weights.h).
  const auto& rc = config.reward;
  if (rc.class_weights != "none" && rc.focal > 0) {
    double share = rc.anomaly_share;
    std::string share_from = "reward.anomaly_share";
    if (share <= 0) {
      share = ctx.source->dataset_anomaly_share();
      share_from = "the dataset's defective images";
    }
    if (!(share > 0 && share < 1)) {
      share = rl::kFallbackAnomalyShare;
      share_from = "MVTec-AD's share: the dataset shows no defective image (set reward.anomaly_share)";
    }
    const auto [defects, defects_from] = ctx.source->defect_shares();
    spdlog::info("focal reward: anomalous share {:.3f} from {}; defect classes' shares from {}", share, share_from, defects_from);
    if (rc.class_weights == "static") ctx.static_weights = rl::class_weights(share, defects, rc.weight_power);
    if (rc.class_weights == "dynamic") {
      ctx.dynamic_weights = std::make_unique<rl::DynamicClassWeights>(share, defects, rc.dynamic_momentum, rc.weight_power,
                                                                     rc.dynamic_difficulty);
      if (!state.dynamic_weights.is_null()) {
        try {
          const auto& saved = state.dynamic_weights;
          if (saved.value("anomaly_share", share) != share || saved.value("power", rc.weight_power) != rc.weight_power)
            spdlog::warn("class weights resume with the run's anomalous share {} and weight power {} (the config now says {} "
                         "and {}): start a new run to change them", saved.value("anomaly_share", share),
                         saved.value("power", rc.weight_power), share, rc.weight_power);
          ctx.dynamic_weights->from_json(saved);
        } catch (const Error& e) {  // an older run's accuracy-driven weights: start the rarity counts anew
          spdlog::warn("class weights not resumed ({}): counting rarity from here", e.what());
        }
      }
    }
    std::string shown;
    for (const auto& [c, w] : ctx.dynamic_weights ? ctx.dynamic_weights->weights() : ctx.static_weights)
      shown += fmt::format("{}{} {:.2f}", shown.empty() ? "" : ", ", c, w);
    spdlog::info("class weights ({}): {}", rc.class_weights, shown);
  }
  ctx.metrics.open(ctx.run.metrics(), std::ios::app);
  if (!ctx.metrics) throw Error("cannot write " + ctx.run.metrics(), "check permissions and free space");

  TrainSummary summary;
  summary.run_dir = o.out;
  if (config.sft.vision_aux > 0 || config.sft.vision_steps > 0) {
    torch::manual_seed(config.seed + 17);
    ctx.vision_probe = torch::nn::Linear(config.model.dim, 1);
    ctx.vision_probe->to(ctx.device);
    if (o.resume && io::is_file(checkpoint_file(ctx.run, state, "vision_probe.safetensors")))
      model::load_weights(*ctx.vision_probe, checkpoint_file(ctx.run, state, "vision_probe.safetensors"));
  }
  // Stage 0: vision warm-up.
  if (state.stage == "vision") {
    if (config.sft.vision_steps > state.step) {
      auto params = ctx.policy->vision->parameters();
      for (const auto& p : ctx.vision_probe->parameters()) params.push_back(p);
      torch::optim::AdamW opt(params, torch::optim::AdamWOptions(config.sft.vision_lr).weight_decay(config.sft.weight_decay));
      if (o.resume && state.step > 0) load_optimizer(opt, checkpoint_file(ctx.run, state, "optimizer.pt"));
      summary.stages.push_back(run_stage(ctx, opt, state, "vision", config.sft.vision_steps,
                                         [&](int step, detail::PreparedBatch b) { return detail::vision_step(ctx, opt, step, std::move(b)); }));
    }
    state.stage = "sft";
    state.step = 0;
    save_state(ctx.run, state);
  }
  // Stage 1.
  if (state.stage == "sft") {
    if (config.sft.steps > state.step) {
      auto params = ctx.policy->parameters();
      if (config.sft.vision_aux > 0)
        for (const auto& p : ctx.vision_probe->parameters()) params.push_back(p);
      torch::optim::AdamW opt(params, torch::optim::AdamWOptions(config.sft.lr).weight_decay(config.sft.weight_decay));
      if (o.resume && state.step > 0) load_optimizer(opt, checkpoint_file(ctx.run, state, "optimizer.pt"));
      summary.stages.push_back(run_stage(ctx, opt, state, "sft", config.sft.steps,
                                         [&](int step, detail::PreparedBatch b) { return detail::sft_step(ctx, opt, step, std::move(b)); }));
      warn_if_at_chance(summary.stages.back().final_validation, "the warm start (SFT)", config);
    }
    model::save_weights(*ctx.policy, sft_path(ctx.run), {{"format", kPolicyFormat}, {"format_version", kPolicyFormatVersion}, {"stage", "sft"}});
    state.stage = "grpo";
    state.step = 0;
    save_state(ctx.run, state);
  }
  // Stage 2.
  if (state.stage == "grpo") {
    if (config.grpo.beta > 0) {
      ctx.reference = model::make_policy(config.model, config.seed);
      if (!io::is_file(sft_path(ctx.run)))
        spdlog::warn("{} is missing: the KL reference is the current weights", sft_path(ctx.run));
      model::load_weights(*ctx.reference, io::is_file(sft_path(ctx.run)) ? sft_path(ctx.run) : ctx.run.weights());
      ctx.reference->to(ctx.device);
      ctx.reference->eval();
      for (auto& p : ctx.reference->parameters()) p.set_requires_grad(false);
    }
    if (config.grpo.steps > state.step) {
      auto opt = make_optimizer(ctx, config.grpo.lr, config.grpo.weight_decay);
      if (o.resume && state.step > 0) load_optimizer(opt, checkpoint_file(ctx.run, state, "optimizer.pt"));
      const int every = config.train.log_completions_every;
      summary.stages.push_back(run_stage(ctx, opt, state, "grpo", config.grpo.steps, [&](int step, detail::PreparedBatch b) {
        return detail::grpo_step(ctx, opt, step, std::move(b), every > 0 && (step + 1) % every == 0);
      }));
    }
    state.stage = "done";
    save_state(ctx.run, state);
  }
  if (!io::is_file(ctx.run.weights())) save_policy(ctx.run, *ctx.policy, {{"stage", "done"}});
  summary.best_balanced_accuracy = state.best;
  summary.best_at = state.best_at;
  summary.best_at_chance = state.best_at_chance;
  summary.best_answers = state.best_answers;
  spdlog::info("best validation balanced accuracy {:.3f} at {} -> {}", state.best, state.best_at, best_path(ctx.run));
  if (state.best_at_chance)
    spdlog::warn("FAILED: even the best validation ({:.3f} at {}) is at chance: the policy {}; `lriad eval` of this run "
                 "will be meaningless", state.best, state.best_at, state.best_answers);
  return summary;
}

}  // namespace lriad::train
