// The state of a run directory that training keeps (trainer_state.json, checkpoints, the best
// weights, the validation log) and how a run resumes from it. Not installed: only src/train uses it.
#pragma once
#include <string>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "lriad/train/checkpoint.h"
#include "lriad/train/validation.h"

namespace lriad::train::detail {

struct Context;

struct TrainerState {
  std::string stage = "vision";  // vision | sft | grpo | done
  int step = 0;                  // completed steps of `stage`
  double best = -1;              // the best checkpoint's validation balanced accuracy
  double best_score = -1;        // and its selection_score (train/validation.h), which chose it
  std::string best_at;           // "sft:300"
  bool best_at_chance = false;   // at_chance of the best validation
  std::string best_answers;      // describe_answers of the best validation
  nlohmann::json dynamic_weights;
  // How the run computes, decided at its start (model::choose_precision): "bf16" or "fp32", and why.
  // A resumed run whose config says "auto" keeps it, so that it goes on as it started.
  std::string precision;
  std::string precision_reason;
  // The checkpoint folder (relative to the run) whose files resume the run; "" = the run's own
  // model.safetensors (a run that has not finished a checkpoint yet).
  std::string checkpoint;
};

// A checkpoint's file `name` (RunFiles::kWeights, kOptimizer, kVisionProbe); before the first
// checkpoint, the run's own.
std::string checkpoint_file(const RunFiles& run, const TrainerState& s, const std::string& name);
void save_state(const RunFiles& run, const TrainerState& s);
// Throws when the run has no trainer_state.json or it is damaged.
TrainerState load_state(const RunFiles& run);
// Resuming replays the steps after the last checkpoint: drops their lines from a log (metrics.jsonl,
// validation.jsonl) first.
void truncate_log(const std::string& path, const TrainerState& s);
// A checkpoint folder written in full, then committed by trainer_state.json naming it (see run_state.cpp).
void save_checkpoint(Context& ctx, torch::optim::AdamW& optimizer, TrainerState& state);
// best.safetensors and the state's best_* when `v` beats the best so far (train/validation.h's rule).
void maybe_keep_best(Context& ctx, TrainerState& state, const ValidationResult& v, const std::string& where);
void log_validation(Context& ctx, const std::string& stage, int step, const ValidationResult& v);
void load_optimizer(torch::optim::AdamW& opt, const std::string& path);

}  // namespace lriad::train::detail
