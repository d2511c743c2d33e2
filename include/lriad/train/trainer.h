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

struct ValidationResult {
  double balanced_accuracy = 0, accuracy = 0, format_rate = 0;
  double recall_anomalous = 0, recall_normal = 0;
  std::map<std::string, double> class_accuracy;  // per "good" / defect type
  int items = 0;
};

struct StageSummary {
  std::string stage;  // sft | grpo
  int steps = 0;      // steps run in this call
  double seconds = 0;
  ValidationResult final_validation;
};

struct TrainSummary {
  std::vector<StageSummary> stages;
  double best_balanced_accuracy = -1;
  std::string run_dir;
};

// Throws lriad::Error (path + hint) on bad input; a failure mid-run leaves the last checkpoint.
TrainSummary run_training(RunConfig config, const TrainOptions& options);

}  // namespace lriad::train
