// `lriad eval` and `lriad predict`: run a trained policy on images (greedy, or N sampled chains
// with a majority vote), read its chain of thought and verdict, score the anomaly, and
// summarise a dataset split, beside the evidence-only baseline (eval/baseline.h).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>

#include "lriad/eval/summary.h"
#include "lriad/io/config.h"

namespace lriad::reference {
class NormalReference;
}

namespace lriad::eval {

struct InspectOptions {
  int samples = 1;           // 1 = greedy; N > 1 = N sampled chains and a majority vote
  double temperature = 1.0;  // for samples > 1
  uint64_t seed = 0;
};

// best.safetensors (the best validation checkpoint) when the run has one, else model.safetensors.
std::string default_weights(const std::string& run_dir);

// A loaded policy that inspects images.
class Inspector {
 public:
  // Loads `run_dir` (config, tokenizer, weights: a file name in the run such as
  // sft.safetensors, or a path; "" = default_weights) onto `device` ("" = the run's config).
  Inspector(const std::string& run_dir, const std::string& device = "", const std::string& weights = "");
  ~Inspector();

  struct Input {
    cv::Mat image;  // CV_32FC3 RGB [0,1], any size (resized to the model's)
    std::string category;
    std::string path;
    // The normal reference's bank to compare with: both (reference::NormalReference::kBothBanks) for an
    // image in neither bank; a normal training image's own (InputRecord::bank_of) for --split train.
    int reference_bank = -1;
  };
  // Fills image, category, pred, parsed, score, pred_defect_type, region, completion,
  // well_formed, consistent, truncated, length and votes (samples > 1). `known_defect_types`
  // are matched as spelled when parsing answers.
  std::vector<Prediction> inspect(const std::vector<Input>& inputs, const InspectOptions& options,
                                  const std::vector<std::string>& known_defect_types = {});

  const RunConfig& config() const;                      // the run's config (device as loaded)
  const reference::NormalReference* reference() const;  // the run's normal reference; null without one
  // The reference bank training compared the image at `path` with (the run's policy_input.json);
  // reference::NormalReference::kBothBanks for any image training did not draw.
  int training_bank(const std::string& path) const;

 private:
  struct State;
  std::unique_ptr<State> s_;
};

struct EvalOptions {
  std::string run_dir;
  std::string weights;                  // "" = default_weights(run_dir)
  std::string format, root;             // "" = the run config's dataset
  std::vector<std::string> categories;  // empty = every category found
  std::string split = "test";           // test | train
  std::string device;
  int batch_size = 16;
  bool skip_bad_images = false;  // unreadable images: a warning each, listed in the metrics
  std::string defect_map;        // CSV name,family for defect names no published table maps ("" = none)
  InspectOptions inspect;
};

struct EvalResult {
  nlohmann::json metrics;               // metrics.json
  std::vector<Prediction> predictions;  // predictions.jsonl
  int64_t excluded = 0;                 // test images training used (data.train_from_test)
  std::vector<std::string> skipped;     // unreadable images left out (skip_bad_images)
};

// Evaluates the split, shows progress, and returns the metrics with run, dataset, split and
// timestamp filled in. Images listed in <run>/train_from_test.csv are left out.
EvalResult evaluate(const EvalOptions& options);

}  // namespace lriad::eval
