// `lriad train`: stage 1 (supervised warm start on templated chains of thought), then stage 2
// (GRPO with the class-imbalance focal reward), writing everything into a run directory:
// config.json, tokenizer.model, model.safetensors (latest), sft.safetensors (end of stage 1),
// best.safetensors (best validation), checkpoints/<stage>-<step>/ (weights, optimizer) and
// trainer_state.json naming it (resume),
// metrics.jsonl, completions/step_NNNNN.jsonl, validation.jsonl, train_from_test.csv.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "lriad/io/config.h"
#include "lriad/train/validation.h"

namespace lriad::train {

struct TrainOptions {
  std::string out;
  bool overwrite = false;  // replace the files of an existing run directory
  bool resume = false;     // continue the run in `out` where its last checkpoint stopped
  std::string tokenizer;   // existing sentencepiece .model (empty = config / train one)
  std::string init;        // start from this run directory's model.safetensors (same model config)
  // With `resume`: "key=value" changes to the run's own config.json (e.g. a lower learning rate
  // after non-finite steps), saved into it. Without them the run continues exactly.
  std::vector<std::string> resume_overrides;
};

struct StageSummary {
  std::string stage;  // sft | grpo
  int steps = 0;      // steps run in this call
  double seconds = 0;
  ValidationResult final_validation;
};

struct TrainSummary {
  std::vector<StageSummary> stages;
  double best_balanced_accuracy = -1;  // -1: no validation ran
  std::string best_at;                 // "sft:300"
  bool best_at_chance = false;         // at_chance of the best validation: eval of it is meaningless
  std::string best_answers;            // describe_answers of the best validation when at chance
  std::string run_dir;
};

// Throws lriad::Error (path + hint) on bad input; a failure mid-run leaves the last checkpoint.
TrainSummary run_training(RunConfig config, const TrainOptions& options);

// What a new run does first to its config (and the bench to its own): the fine comparison at no more
// pixels than the images have (model::fitted_fine_size), the largest side among the first 16
// training normals of each category of config.data, read from their headers. Lowers
// config.model.reference_fine_size and logs it; the run's config.json keeps the value used.
void fit_fine_size(RunConfig& config);

}  // namespace lriad::train
