// Run directories: config.json, tokenizer.model, model.safetensors (weights), and the trainer
// state; creating them safely, saving atomically, loading with strict checks.
#pragma once
#include <map>
#include <memory>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "lriad/io/config.h"
#include "lriad/model/policy.h"
#include "lriad/text/tokenizer.h"

namespace lriad::train {

inline constexpr const char* kPolicyFormat = "lriad-policy";
inline constexpr const char* kPolicyFormatVersion = "1";

struct RunFiles {
  std::string dir;
  std::string config() const { return dir + "/config.json"; }
  std::string tokenizer() const { return dir + "/tokenizer.model"; }
  std::string weights() const { return dir + "/model.safetensors"; }
  std::string trainer_state() const { return dir + "/trainer_state.safetensors"; }
  std::string metrics() const { return dir + "/metrics.jsonl"; }
  std::string reference() const { return dir + "/reference.safetensors"; }  // model.reference "knn"
  std::string baseline() const { return dir + "/baseline.json"; }  // train/baseline.h, with the reference
  std::string policy_input() const { return dir + "/policy_input.json"; }   // model/policy_input.h
};

// Creates `dir`; an existing non-empty directory is refused unless `overwrite` (kept as is,
// files replaced as they are written) or `resume`.
void prepare_run_dir(const std::string& dir, bool overwrite, bool resume);

// Writes the weights (atomically) with format metadata; `extra` joins the metadata.
void save_policy(const RunFiles& run, model::PolicyImpl& policy, const std::map<std::string, std::string>& extra = {});

struct LoadedPolicy {
  RunConfig config;
  model::Policy policy{nullptr};
  std::shared_ptr<text::Tokenizer> tokenizer;
  std::map<std::string, std::string> metadata;  // from the weights file
};

// Loads config.json, tokenizer.model and `weights` (default model.safetensors) from `dir` and
// moves the policy to `device` ("" = the config's). Errors name the run directory and file.
LoadedPolicy load_policy(const std::string& dir, const std::string& device = "", const std::string& weights = "");

// Everything `lriad model info` prints: parameter counts per component (from the weights
// header, without building the model), vocabulary, config, metadata.
nlohmann::json run_info(const std::string& dir);

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
