// Mask-free training data: normal training images (preloaded at their model side,
// model::model_side_image: model.work_size() for parts the reference compares finely, image_size
// otherwise), labelled
// anomalies synthesised from them on the fly, and optionally a seeded share of the test split.
// Ground-truth masks are never read here. Every draw is a pure function of (seed, step, index).
#pragma once
#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <utility>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "lriad/reference/reference.h"
#include "lriad/data/dataset.h"
#include "lriad/data/sample.h"
#include "lriad/io/config.h"
#include "lriad/model/policy_input.h"
#include "lriad/text/prompt.h"

namespace lriad::train {

struct TrainItem {
  // CV_32FC3 RGB in [0,1], square, at its model side (model::model_side_image): model.work_size()
  // for parts the reference compares finely, else image_size (the model sees every image at
  // image_size).
  cv::Mat image;
  std::string category;
  bool anomalous = false;
  std::string defect_type = data::kGoodType;  // anomaly type word, the test folder name, or "good"
  std::optional<text::Region> region;         // known for synthetic anomalies only
  cv::Mat footprint;                          // synthetic anomalies: CV_8UC1 1 where the image changed (never
                                              // fed to the model; the evidence gate looks there)
  torch::Tensor input;                        // the policy's input (C,S,S) when the evidence gate made it
  reference::MapPart part = reference::MapPart::Patches;  // with `input`: its map's part largest at the peak
  cv::Mat base;        // synthetic anomalies: the normal image it was made from (same
                       // side), whose cached evidence the map is updated from
  std::string source;  // image path (+ "#kind" when synthesised)
  // Normal-reference bank to compare with (reference/reference.h): 0 or 1, the other half's; kBothBanks
  // for held-out (validation) images, as for test images.
  int reference_bank = 0;
  // The class the imbalance weights are kept for: "good" or the canonical defect type.
  std::string cls() const;
};

// Which test images joined training (data.train_from_test): evaluation must exclude them.
struct TrainFromTest {
  std::vector<data::Sample> samples;
};

// The evidence gate (data.evidence_gate_quantile > 0, model.reference knn): the policy learns to
// read the normal reference's evidence, so a synthetic anomaly that the evidence does not show is a
// label the policy cannot learn from. On busy real textures at 64 px most are (a cut-and-paste of the
// same texture, a faint stain): 70% of the draws on two real textures in one measurement, and
// training stayed at chance. With the gate, a synthetic anomaly counts only when its deviation map
// peaks inside its footprint above the category's normal level; else it is drawn again with another
// seed, stronger each time, and after `attempts` draws the sample is its normal image.
struct EvidenceGate {
  // The policy's input of an item: (4,S,S), and its map's part largest at the peak.
  std::function<torch::Tensor(const TrainItem&, reference::MapPart*)> input;
  std::map<std::string, double> level;  // per category: the normal draws' peak quantile
  int attempts = 4;
};

// True when the deviation map (channel 3 of `input`, (4,S,S)) peaks above `level` inside `footprint`
// (CV_8UC1 of any side, brought to S and grown by one pixel).
bool evidence_shows(const torch::Tensor& input, const cv::Mat& footprint, double level);

// The dataset config.data names (its format, root, categories and folder split), listed: paths and
// labels, no image read. What TrainingSource trains on, and what fit_fine_size (trainer.h) reads the
// sizes of.
data::Dataset list_training_dataset(const DataConfig& data);

class TrainingSource {
 public:
  // Loads the dataset named by config.data, preloads and resizes the images it trains on.
  explicit TrainingSource(const RunConfig& config);

  TrainItem draw(uint64_t step, int index) const;  // deterministic in (config.seed, step, index)
  // Every training normal as a draw would give it (for the gate's levels and evidence caches).
  std::vector<TrainItem> normal_items() const;
  // From now on synthetic anomalies (draws and validation items) pass the gate.
  void set_evidence_gate(EvidenceGate gate);
  // Held-out normal training images, each also used once with a synthetic anomaly (fixed
  // seeds): at most config.train.val_size items, half anomalous. Never the test split.
  const std::vector<TrainItem>& validation() const { return validation_; }

  const std::vector<std::string>& categories() const { return categories_; }
  const RunConfig& config() const { return config_; }
  // Every class a draw can produce ("good" first), and its expected share of draws.
  const std::map<std::string, double>& class_prior() const { return prior_; }
  // The real line's share of defective parts as the dataset shows it: its defective images over
  // all its images of the categories trained on (MVTec-AD 23.5%, VisA 11.1%); 0 when it has none.
  double dataset_anomaly_share() const { return anomaly_share_; }
  // Each defect class's weight among the defects (any scale), for the focal reward: counted over the
  // labelled test images training takes (data.train_from_test) when there are any (a synthetic kind
  // no label names, drawn too, at their average count), else the synthetic mix's weights, a
  // fallback (that mix is made up, not measured). Second: where from.
  std::pair<std::map<std::string, double>, std::string> defect_shares() const;
  // Defect-type names the policy may write (for parsing answers).
  std::vector<std::string> defect_types() const;
  const TrainFromTest& from_test() const { return from_test_; }
  size_t normal_images() const { return normals_.size(); }
  std::string describe() const;
  // Training normals per category in two halves (by position): the normal reference's banks.
  std::map<std::string, std::array<std::vector<cv::Mat>, 2>> reference_halves() const;
  // Per category, the width over the height of its normal photographs before they were stretched
  // square (the median over the first 16, as decoded): the reference poses parts in that
  // undistorted frame (reference/pose.h, "Stretched frames").
  std::map<std::string, double> photo_aspects() const;
  // What eval needs to make the input training makes (policy_input.json): the categories kept at
  // model.work_size(), and the bank each normal training image is compared with (the other half's
  // for the images training draws, both for the validation normals).
  model::InputRecord input_record() const;
  // Whether `category`'s images are kept at model.work_size() (model::keeps_work_side), else at
  // image_size.
  bool keeps_work_side(const std::string& category) const { return work_side_.count(category) > 0; }

 private:
  struct Normal {
    cv::Mat image;
    std::string category, path;
    int half = 0;    // which reference bank holds its patches; it is compared with the other one
    cv::Size photo;  // the decoded file's size, before it was stretched square (photo_aspects)
  };
  TrainItem with_anomaly(const Normal& base, uint64_t seed, int attempt = 0) const;
  // with_anomaly() through the gate: the first attempt the evidence shows, else the normal image.
  TrainItem gated(const Normal& base, uint64_t seed, int bank) const;
  TrainItem as_item(const Normal& n) const;
  // The constructor's steps (source.cpp).
  void read_anomaly_settings();
  std::vector<std::vector<Normal>> read_normals(const data::Dataset& ds, size_t per_category);
  void take_from_test(const data::Dataset& ds);
  void make_validation(const std::vector<std::vector<Normal>>& held_out, size_t per_category);
  void estimate_prior();

  RunConfig config_;
  std::vector<std::string> categories_;
  std::vector<Normal> normals_;        // training normals (validation ones removed)
  std::vector<TrainItem> test_items_;  // data.train_from_test share, preloaded
  std::vector<TrainItem> validation_;
  std::vector<std::pair<Normal, uint64_t>> validation_anomalies_;  // (base, seed) of each synthetic one, in order
  std::optional<EvidenceGate> gate_;
  std::map<std::string, std::vector<size_t>> by_category_;
  std::set<std::string> work_side_;  // categories kept at model.work_size()
  std::map<std::string, double> prior_;
  double anomaly_share_ = 0;
  TrainFromTest from_test_;
  std::vector<std::pair<int, double>> mix_;  // (AnomalyKind, weight)
};

// The normal reference (model.reference "knn") from the source's training normals, with the
// model's patch and bank sizes; logs its build time.
reference::NormalReference build_normal_reference(const TrainingSource& source, const RunConfig& config);

// Writes the test images used for training (category,label,defect_type,image) as CSV.
void save_train_from_test(const TrainFromTest& t, const std::string& path);

}  // namespace lriad::train
