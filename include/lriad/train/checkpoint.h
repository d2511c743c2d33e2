// Run directories: config.json, tokenizer.model, model.safetensors (weights), and the trainer
// state; creating them safely, saving atomically, loading with strict checks.
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "lriad/io/config.h"
#include "lriad/model/paligemma.h"
#include "lriad/model/policy.h"
#include "lriad/text/tokenizer.h"

namespace lriad::train {

inline constexpr const char* kPolicyFormat = "lriad-policy";
inline constexpr const char* kPolicyFormatVersion = "1";

// Every name in a run directory, spelled here once (train writes them, eval and predict read them).
struct RunFiles {
  std::string dir;
  std::string path(const std::string& name) const { return dir + "/" + name; }
  std::string config() const { return path("config.json"); }
  std::string tokenizer() const { return path("tokenizer.model"); }
  std::string weights() const { return path(kWeights); }                    // the last step's weights
  std::string best() const { return path(kBest); }                          // the best validation's weights
  std::string sft() const { return path("sft.safetensors"); }               // the SFT stage's end (GRPO's KL reference)
  std::string trainer_state() const { return path("trainer_state.json"); }  // resume: stage, step, checkpoint
  std::string metrics() const { return path("metrics.jsonl"); }
  std::string validation() const { return path("validation.jsonl"); }
  std::string reference() const { return path("reference.safetensors"); }      // model.reference "knn"
  std::string baseline() const { return path("baseline.json"); }               // train/baseline.h, with the reference
  std::string policy_input() const { return path("policy_input.json"); }       // model/policy_input.h
  std::string train_from_test() const { return path("train_from_test.csv"); }  // data.train_from_test's images
  std::string completions() const { return path("completions"); }  // GRPO's sampled completions, a file per step
  std::string checkpoints() const {
    return path("checkpoints");
  }  // <stage>-<step>/ (kWeights, kOptimizer, kVisionProbe)
  // File names inside a checkpoint folder (and the run's own weights).
  static constexpr const char* kWeights = "model.safetensors";
  static constexpr const char* kBest = "best.safetensors";
  static constexpr const char* kOptimizer = "optimizer.pt";
  static constexpr const char* kVisionProbe = "vision_probe.safetensors";
  // What `--overwrite` removes before a new run: every file and folder above but config.json.
  std::vector<std::string> written_by_training() const;
};

// Creates `dir`; an existing non-empty directory is refused unless `overwrite` (kept as is,
// files replaced as they are written) or `resume`.
void prepare_run_dir(const std::string& dir, bool overwrite, bool resume);

// Writes the weights (atomically) with format metadata; `extra` joins the metadata.
void save_policy(const RunFiles& run, model::PolicyImpl& policy, const std::map<std::string, std::string>& extra = {});

struct LoadedPolicy {
  RunConfig config;
  model::Policy policy{nullptr};  // null when `pali` holds the policy
  // A run trained on a pretrained PaliGemma (config.pretrained.base), its adapters from the weights
  // file; or an imported PaliGemma run itself (`lriad model import`: no adapters trained, no
  // normal reference, the default config).
  model::PaliGemma pali{nullptr};
  std::shared_ptr<text::Tokenizer> tokenizer;
  std::map<std::string, std::string> metadata;  // from the weights file
};

// Loads config.json, tokenizer.model and `weights` (default model.safetensors) from `dir` and
// moves the policy to `device` ("" = the config's). Errors name the run directory and file.
LoadedPolicy load_policy(const std::string& dir, const std::string& device = "", const std::string& weights = "");

// Everything `lriad model info` prints: parameter counts per component (from the weights
// header, without building the model), vocabulary, config, metadata.
nlohmann::json run_info(const std::string& dir);
// The part of it read from a weights file's header: "parameters" per component (the first part of
// each name) and "total", "buffer_values" (tensors `is_buffer` names: stored, not trained, left out
// of the components), "tensors", "dtypes" (values per dtype), "weights_bytes", "metadata".
nlohmann::json weights_info(const std::string& path, const std::function<bool(const std::string&)>& is_buffer);

struct InitOptions {
  std::string out;
  std::string tokenizer;  // existing .model to copy; empty = config.tokenizer.model or train one
  bool overwrite = false;
};

// Creates a run directory with a tokenizer (trained on the dataset's names when the dataset is
// present, else the demo's) and freshly initialised weights. Returns the resolved config.
RunConfig init_run(RunConfig config, const InitOptions& options);

// Ensures `run` has a tokenizer: copies `external` if given, else trains one from the names of
// `config.data` (or the demo's). Returns the vocabulary size.
int ensure_tokenizer(const RunFiles& run, const RunConfig& config, const std::string& external);

}  // namespace lriad::train
