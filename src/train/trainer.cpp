// `lriad train`: run directory, stages, validation, checkpoints and resume.
#include "lriad/train/trainer.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdlib>
#include <csignal>
#include <cmath>
#include <filesystem>
#include <functional>
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
#include "lriad/train/distributed.h"
#include "lriad/train/evidence_check.h"
#include "lriad/train/paligemma_run.h"
#include "lriad/train/prefetch.h"
#include "lriad/train/progress.h"
#include "run_state.h"
#include "trainer_internal.h"

namespace fs = std::filesystem;

namespace lriad::train {
namespace {

using detail::check_lengths;
using detail::checkpoint_file;
using detail::Context;
using detail::load_optimizer;
using detail::load_state;
using detail::log_validation;
using detail::maybe_keep_best;
using detail::prepare_evidence;
using detail::save_checkpoint;
using detail::save_state;
using detail::TrainerState;
using detail::truncate_log;

// How long the other ranks wait for rank 0's share of the setup (the tokenizer, the normal reference
// and its baseline, the evidence check): it can take far longer than a collective should.
constexpr double kSetupTimeout = 6 * 3600;

// A stage that ends at chance has learnt nothing the evidence could tell it: say so loudly, with
// what the policy answers and where to look, instead of letting GRPO and eval run on it unnoticed.
void warn_if_at_chance(const ValidationResult& v, const std::string& what, const RunConfig& config) {
  if (!at_chance(v)) return;
  spdlog::warn(
      "!!! validation after {} is AT CHANCE: balanced accuracy {:.3f} (anomalous recall {:.3f}, normal {:.3f})", what,
      v.balanced_accuracy, v.recall_anomalous, v.recall_normal);
  spdlog::warn("!!! the policy {}", describe_answers(v));
  spdlog::warn(
      "!!! check: the normal reference's evidence on your images (`lriad eval` prints the evidence-only "
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
        throw Error(stage + " stopped after " + std::to_string(skips) +
                        " non-finite steps in a row (last: " + m.nonfinite + ") at step " + std::to_string(step + 1) +
                        "; the last checkpoint in " + ctx.run.dir + " is intact",
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
      shown = {{"reward", line["reward"].get<double>()},
               {"acc", line["accuracy"].get<double>()},
               {"kl", line["kl"].get<double>()}};
    }
    shown.push_back({"lr", line["learning_rate"].get<double>()});
    if (ctx.writer()) progress.update(state.step, shown);
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
    // Every rank stops at the same step: one that saw Ctrl-C stops them all (rank 0 saves).
    int sig = io::interrupt_requested();
    if (ctx.world() > 1 && ctx.dist->sum(sig ? 1.0 : 0.0) > 0 && !sig) sig = SIGINT;
    if (sig) {
      if (!save) save_checkpoint(ctx, optimizer, state);
      progress.finish();
      throw io::Interrupted(sig,
                            "interrupted: " + stage + " step " + std::to_string(state.step) + " of " +
                                std::to_string(total) + " is saved in " + ctx.run.path(state.checkpoint),
                            "continue the run with: lriad train --resume --out " + ctx.run.dir);
    }
  }
  progress.finish();
  summary.seconds = progress.elapsed_seconds();
  return summary;
}

torch::optim::AdamW make_optimizer(Context& ctx, double lr, double weight_decay) {
  return torch::optim::AdamW(ctx.trainable(), torch::optim::AdamWOptions(lr).weight_decay(weight_decay));
}

// Several ranks: lriad's own policy only, and every batch in equal shares. Throws naming the setting.
void check_ranks(const RunConfig& config, const Distributed& dist) {
  const int world = dist.world();
  if (world <= 1) return;
  if (!config.pretrained.base.empty())
    throw Error("WORLD_SIZE=" + std::to_string(world) + ": a PaliGemma (pretrained.base) trains as one process for now",
                "start lriad train once, without --nproc or torchrun");
  for (const auto& [key, batch] :
       {std::pair<std::string, int>{"sft.batch_size", config.sft.batch_size},
        {"grpo.batch_size", config.grpo.batch_size},
        {"vision_warmup.batch_size", config.vision_warmup.steps > 0 ? config.vision_warmup.batch_size : 0}})
    if (batch % world != 0)
      throw Error(key + " " + std::to_string(batch) + " does not divide among " + std::to_string(world) + " ranks",
                  "each rank takes an equal share of every batch: --set " + key + "=" +
                      std::to_string((batch / world + 1) * world));
}

// 1. The run directory: a resumed run's state and own config, or a new run's tokenizer and config.
RunConfig open_run(Context& ctx, RunConfig config, const TrainOptions& o, TrainerState& state) {
  if (o.resume) {
    state = load_state(ctx.run);
    config = load_config(ctx.run.config(), o.resume_overrides);  // the run's own config wins over --config
    check_ranks(config, *ctx.dist);                              // before anything is written
    if (!ctx.writer()) return config;                            // rank 0 keeps the run directory
    if (!o.resume_overrides.empty()) {
      std::string shown;
      for (const auto& s : o.resume_overrides) shown += " " + s;
      spdlog::warn("resuming with changed settings:{} (saved in {})", shown, ctx.run.config());
      save_config(config, ctx.run.config());
    }
    truncate_log(ctx.run.metrics(), state);
    truncate_log(ctx.run.validation(), state);
    spdlog::info("resuming {} at {} step {}", o.out, state.stage, state.step);
    return config;
  }
  if (!ctx.writer()) {  // rank 0 writes the tokenizer and the resolved config; the others read them
    ctx.dist->barrier(kSetupTimeout);
    return load_config(ctx.run.config());
  }
  if (o.overwrite)
    for (const auto& path : ctx.run.written_by_training()) {
      std::error_code ec;
      fs::remove_all(path, ec);
    }
  // A pretrained PaliGemma reads with its own tokenizer.
  const int vocab = ensure_tokenizer(
      ctx.run, config, config.pretrained.base.empty() ? o.tokenizer : RunFiles{config.pretrained.base}.tokenizer());
  if (config.model.vocab_size != 0 && config.model.vocab_size != vocab)
    spdlog::warn("model.vocab_size {} replaced by the tokenizer's {}", config.model.vocab_size, vocab);
  config.model.vocab_size = vocab;
  fit_fine_size(config);
  config.validate();
  save_config(config, ctx.run.config());
  ctx.dist->barrier(kSetupTimeout);
  return config;
}

// 2. The data, the normal reference (built, or loaded on resume), its evidence-only baseline and the
// normal levels the chains state ratios to.
void load_data(Context& ctx, const TrainOptions& o) {
  const RunConfig& config = ctx.config;
  ctx.tokenizer = std::make_shared<text::Tokenizer>(ctx.run.tokenizer());
  ctx.verdict = model::verdict_ids(*ctx.tokenizer);
  ctx.source = std::make_unique<TrainingSource>(config);
  ctx.decisions = model::decision_points(*ctx.tokenizer, ctx.source->categories(), config.model.opens_chains());
  spdlog::info("data: {}", ctx.source->describe());
  // Eval makes the input training makes. A resumed run keeps how its chains read the evidence: one
  // begun before a reading was added goes on without it, as its earlier checkpoints were trained.
  // (Rank 0 writes the same flags it read, atomically, so no rank needs to wait for another here.)
  ctx.record = ctx.source->input_record();
  if (o.resume && io::is_file(ctx.run.policy_input())) {
    const auto before = model::InputRecord::load(ctx.run.policy_input());
    ctx.record.states_parts = before.states_parts;
    ctx.record.reads_lines = before.reads_lines;
    ctx.record.reads_absence = before.reads_absence;
    ctx.record.reads_colour = before.reads_colour;
  }
  if (ctx.writer()) ctx.record.save(ctx.run.policy_input());
  ctx.defect_types = ctx.source->defect_types();
  std::optional<std::map<std::string, std::vector<double>>> normal_peaks;  // per category, made once
  if (config.model.reference == "knn") {
    // Built once: rank 0 builds and saves the reference and its baseline, the other ranks load them.
    const std::string path = ctx.run.reference();
    auto load_reference = [&] {
      ctx.normal_reference = std::make_unique<reference::NormalReference>(reference::NormalReference::load(path));
      if (ctx.device.is_cuda()) ctx.normal_reference->to(ctx.device);  // its products on the GPU
    };
    if (ctx.writer()) {
      if (o.resume && io::is_file(path)) {
        load_reference();
      } else {
        ctx.normal_reference =
            std::make_unique<reference::NormalReference>(build_normal_reference(*ctx.source, config));
        ctx.normal_reference->save(path);
        if (ctx.device.is_cuda()) ctx.normal_reference->to(ctx.device);
      }
      if (!o.resume || !io::is_file(ctx.run.baseline())) {  // the evidence-only baseline eval reports
        normal_peaks = detail::normal_draw_peaks(ctx);      // its training normals' part, kept for the evidence check
        save_baseline(fit_baseline(*ctx.source, *ctx.normal_reference, kBaselineQuantile, &*normal_peaks),
                      ctx.run.baseline());
      }
    }
    ctx.dist->barrier(kSetupTimeout);
    if (!ctx.writer()) load_reference();
    ctx.levels = load_baseline(ctx.run.baseline());  // the normal levels the chains state ratios to
    for (const auto& cat : ctx.source->categories())
      if (config.model.opens_chains() && !ctx.level(cat))
        throw Error("model.prompt_evidence: category '" + cat + "' has no normal level in " + ctx.run.baseline(),
                    "the level comes from the normal training images: give the category more normal images, or "
                    "--set model.prompt_evidence=false");
  }
  check_lengths(ctx);
  if (ctx.normal_reference)
    prepare_evidence(ctx, /*log_check=*/!o.resume && ctx.writer(), normal_peaks ? &*normal_peaks : nullptr);
  ctx.dist->barrier(kSetupTimeout);  // rank 0's evidence check is work the others do not do
  if (!ctx.writer()) return;
  if (!ctx.source->from_test().samples.empty())
    save_train_from_test(ctx.source->from_test(), ctx.run.train_from_test());
  fs::create_directories(ctx.run.completions());
}

// 3. The policy: resumed, initialised from another run, or fresh; and how it computes.
void make_run_policy(Context& ctx, const TrainOptions& o, TrainerState& state, bool precision_kept) {
  const RunConfig& config = ctx.config;
  if (!config.pretrained.base.empty()) {
    state.precision = config.pretrained.dtype;
    state.precision_reason = "pretrained.dtype";
    detail::make_pretrained_policy(ctx, o, state);
    if (!o.resume && ctx.writer()) {  // a run has weights (and a resumable state) from its first moment
      ctx.save_weights(ctx.run.weights(), {{"stage", "init"}, {"step", "0"}});
      save_state(ctx.run, state);
    }
    return;
  }
  ctx.policy = model::make_policy(config.model, config.seed);
  if (o.resume) {
    model::load_weights(*ctx.policy, checkpoint_file(ctx.run, state, RunFiles::kWeights));
  } else if (!o.init.empty()) {
    const RunFiles from{o.init};
    model::load_weights(*ctx.policy, from.weights());
    spdlog::info("initialised from {}", from.weights());
  }
  ctx.policy->to(ctx.device);
  const auto precision = model::choose_precision(config);
  state.precision = precision.bf16 ? "bf16" : "fp32";
  if (!precision_kept) state.precision_reason = precision.reason;
  if (!o.resume && ctx.writer()) {  // a run has weights (and a resumable state) from its first moment
    save_policy(ctx.run, *ctx.policy, {{"stage", "init"}, {"step", "0"}});
    save_state(ctx.run, state);
  }
  const auto counts = model::parameter_counts(*ctx.policy);
  spdlog::info("policy: {} parameters on {}, {} ({}{})", counts.back().second, config.device,
               state.precision == "bf16" ? "bf16 autocast" : "fp32",
               precision_kept ? "kept from the run's start: " : "", state.precision_reason);
  if (config.sft.vision_aux > 0 || config.vision_warmup.steps > 0) {  // SFT's image-level probe
    torch::manual_seed(config.seed + 17);
    ctx.vision_probe = torch::nn::Linear(config.model.dim, 1);
    ctx.vision_probe->to(ctx.device);
    const std::string probe = checkpoint_file(ctx.run, state, RunFiles::kVisionProbe);
    if (o.resume && io::is_file(probe)) model::load_weights(*ctx.vision_probe, probe);
  }
}

// 4. Class weights of the focal reward: real frequencies (rl/class_weights.h).
void set_class_weights(Context& ctx, const TrainerState& state) {
  const auto& rc = ctx.config.reward;
  if (rc.class_weights == "none" || rc.focal <= 0) return;
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
  spdlog::info("focal reward: anomalous share {:.3f} from {}; defect classes' shares from {}", share, share_from,
               defects_from);
  if (rc.class_weights == "static") ctx.static_weights = rl::class_weights(share, defects, rc.weight_power);
  if (rc.class_weights == "dynamic") {
    ctx.dynamic_weights = std::make_unique<rl::DynamicClassWeights>(share, defects, rc.dynamic_momentum,
                                                                    rc.weight_power, rc.dynamic_difficulty);
    if (!state.dynamic_weights.is_null()) {
      try {
        const auto& saved = state.dynamic_weights;
        if (saved.value("anomaly_share", share) != share || saved.value("power", rc.weight_power) != rc.weight_power)
          spdlog::warn(
              "class weights resume with the run's anomalous share {} and weight power {} (the config now says {} "
              "and {}): start a new run to change them",
              saved.value("anomaly_share", share), saved.value("power", rc.weight_power), share, rc.weight_power);
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

// One training stage: its length, the stage after it, its optimizer and step, and what happens
// before it starts (even when resumed at its end) and after it ends.
struct Stage {
  std::string name, next;
  int steps = 0;
  std::function<torch::optim::AdamW()> optimizer;
  std::function<detail::StepMetrics(torch::optim::AdamW&, int, detail::PreparedBatch)> step;
  std::function<void()> before;
  std::function<void(const StageSummary* ran)> after;  // ran: null when no step was left to run
};

// 5. The stages in order: vision warm-up (stage 0), SFT, GRPO.
std::vector<Stage> stages_of(Context& ctx) {
  const RunConfig& config = ctx.config;  // the stages' lengths; the lambdas read ctx.config
  auto save_as = [&ctx](const std::string& path, const std::string& stage) {
    ctx.save_weights(path, {{"stage", stage}});
  };
  Stage vision{"vision", "sft", config.vision_warmup.steps};
  vision.optimizer = [&ctx] {
    auto params = ctx.policy->vision->parameters();
    for (const auto& p : ctx.vision_probe->parameters()) params.push_back(p);
    return torch::optim::AdamW(
        params, torch::optim::AdamWOptions(ctx.config.vision_warmup.lr).weight_decay(ctx.config.sft.weight_decay));
  };
  vision.step = [&ctx](torch::optim::AdamW& opt, int step, detail::PreparedBatch b) {
    return detail::vision_step(ctx, opt, step, std::move(b));
  };

  Stage sft{"sft", "grpo", config.sft.steps};
  sft.optimizer = [&ctx] {
    auto params = ctx.trainable();
    if (ctx.config.sft.vision_aux > 0 && ctx.vision_probe)
      for (const auto& p : ctx.vision_probe->parameters()) params.push_back(p);
    return torch::optim::AdamW(params,
                               torch::optim::AdamWOptions(ctx.config.sft.lr).weight_decay(ctx.config.sft.weight_decay));
  };
  sft.step = [&ctx](torch::optim::AdamW& opt, int step, detail::PreparedBatch b) {
    if (ctx.pretrained()) return detail::pretrained_sft_step(ctx, opt, step, std::move(b));
    return detail::sft_step(ctx, opt, step, std::move(b));
  };
  sft.after = [&ctx, save_as](const StageSummary* ran) {
    if (ran) warn_if_at_chance(ran->final_validation, "the warm start (SFT)", ctx.config);
    if (ctx.writer()) save_as(ctx.run.sft(), "sft");  // GRPO's KL reference policy
  };

  Stage grpo{"grpo", "done", config.grpo.steps};
  grpo.before = [&ctx] {
    if (ctx.config.grpo.beta <= 0 || ctx.pretrained()) return;  // a PaliGemma's reference: its adapters off
    const std::string sft = ctx.run.sft();
    ctx.ref_policy = model::make_policy(ctx.config.model, ctx.config.seed);
    if (!io::is_file(sft)) spdlog::warn("{} is missing: the KL reference policy is the current weights", sft);
    model::load_weights(*ctx.ref_policy, io::is_file(sft) ? sft : ctx.run.weights());
    ctx.ref_policy->to(ctx.device);
    ctx.ref_policy->eval();
    for (auto& p : ctx.ref_policy->parameters()) p.set_requires_grad(false);
  };
  grpo.optimizer = [&ctx] { return make_optimizer(ctx, ctx.config.grpo.lr, ctx.config.grpo.weight_decay); };
  grpo.step = [&ctx, every = config.train.log_completions_every](torch::optim::AdamW& opt, int step,
                                                                 detail::PreparedBatch b) {
    const bool log = every > 0 && (step + 1) % every == 0;
    if (ctx.pretrained()) return detail::pretrained_grpo_step(ctx, opt, step, std::move(b), log);
    return detail::grpo_step(ctx, opt, step, std::move(b), log);
  };
  return {vision, sft, grpo};
}

}  // namespace

TrainSummary run_training(RunConfig config, const TrainOptions& options) {
  TrainOptions o = options;
  // Several processes (`lriad train --nproc N`, or torchrun's variables): data-parallel ranks.
  const DistConfig dist = dist_from_env();
  if (!o.resume && !o.init.empty() && is_paligemma_run(o.init)) {  // --init of a `lriad model import` run
    if (!config.pretrained.base.empty() && config.pretrained.base != o.init)
      spdlog::warn("--init {} replaces the config's pretrained.base {}", o.init, config.pretrained.base);
    config.pretrained.base = o.init;
    o.init.clear();
  }
  if (!o.resume && !config.pretrained.base.empty() && !o.tokenizer.empty())
    spdlog::warn("--tokenizer {} is not used: a pretrained PaliGemma reads with its own tokenizer", o.tokenizer);
  if (!o.resume && !config.pretrained.base.empty()) {
    if (!is_paligemma_run(config.pretrained.base))
      throw Error("pretrained.base " + config.pretrained.base + " is not an imported PaliGemma run (no " +
                      kPaliGemmaConfig + ")",
                  "make one with `lriad model import --hf DIR --out RUN`, then train --init RUN");
    config.pretrained.base = fs::weakly_canonical(fs::absolute(config.pretrained.base)).string();
  }
  Context ctx;
  ctx.dist = std::make_unique<Distributed>(dist);
  if (!o.resume) check_ranks(config, *ctx.dist);             // before anything is written
  if (!ctx.writer()) spdlog::set_level(spdlog::level::err);  // rank 0 speaks for the run; the others, errors only
  if (dist.world > 1)
    spdlog::info("rank {} of {}: each rank trains on 1/{} of every batch, rank 0 writes {}", dist.rank, dist.world,
                 dist.world, o.out);
  prepare_run_dir(o.out, o.overwrite, o.resume);  // every rank checks; the directory is made empty
  ctx.dist->barrier();
  ctx.run = RunFiles{o.out};
  TrainerState state;
  config = open_run(ctx, std::move(config), o, state);
  // precision "auto": a resumed run computes as it started (this process only: config.json keeps "auto").
  const bool precision_kept = o.resume && config.precision == "auto" && !state.precision.empty();
  if (precision_kept) config.precision = state.precision;
  if (dist.world > 1 && config.precision == "auto") {  // rank 0's choice for all: each CPU probe could differ
    auto bf16 = torch::zeros({1}, torch::kFloat64);
    if (ctx.writer()) bf16[0] = model::choose_precision(config).bf16 ? 1.0 : 0.0;
    ctx.dist->broadcast(bf16);
    config.precision = bf16[0].item<double>() > 0.5 ? "bf16" : "fp32";
  }
  ctx.config = config;
  ctx.device = torch::Device(config.device);
  if (dist.world > 1 && ctx.device.is_cuda() && torch::cuda::device_count() > 0) {  // a GPU a rank on each machine
    const char* local = std::getenv("LOCAL_RANK");
    const int index = (local && *local ? std::atoi(local) : dist.rank) % int(torch::cuda::device_count());
    ctx.device = torch::Device(torch::kCUDA, c10::DeviceIndex(index));
  }
  load_data(ctx, o);
  make_run_policy(ctx, o, state, precision_kept);
  set_class_weights(ctx, state);
  if (ctx.writer()) {
    ctx.metrics.open(ctx.run.metrics(), std::ios::app);
    if (!ctx.metrics) throw Error("cannot write " + ctx.run.metrics(), "check permissions and free space");
  }

  // The stages from where the state stands: each runs its steps left, then hands over to the next.
  TrainSummary summary;
  summary.run_dir = o.out;
  for (const Stage& stage : stages_of(ctx)) {
    if (state.stage != stage.name) continue;
    if (stage.before) stage.before();
    const StageSummary* ran = nullptr;
    if (stage.steps > state.step) {
      auto opt = stage.optimizer();
      if (o.resume && state.step > 0) load_optimizer(opt, checkpoint_file(ctx.run, state, RunFiles::kOptimizer));
      summary.stages.push_back(
          run_stage(ctx, opt, state, stage.name, stage.steps,
                    [&](int step, detail::PreparedBatch b) { return stage.step(opt, step, std::move(b)); }));
      ran = &summary.stages.back();
    }
    if (stage.after) stage.after(ran);
    state.stage = stage.next;
    if (stage.next != "done") state.step = 0;
    if (ctx.writer()) save_state(ctx.run, state);
    ctx.dist->barrier();  // the next stage may read what this one wrote (GRPO's reference: sft.safetensors)
  }
  if (ctx.writer() && !io::is_file(ctx.run.weights())) ctx.save_weights(ctx.run.weights(), {{"stage", "done"}});

  // 6. The closing summary: the best validation, and loudly when even that is at chance.
  summary.best_balanced_accuracy = state.best;
  summary.best_at = state.best_at;
  summary.best_at_chance = state.best_at_chance;
  summary.best_answers = state.best_answers;
  spdlog::info("best validation balanced accuracy {:.3f} at {} -> {}", state.best, state.best_at, ctx.run.best());
  if (state.best_at_chance)
    spdlog::warn(
        "FAILED: even the best validation ({:.3f} at {}) is at chance: the policy {}; `lriad eval` of this run "
        "will be meaningless",
        state.best, state.best_at, state.best_answers);
  return summary;
}

}  // namespace lriad::train
