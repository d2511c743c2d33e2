// How well the normal reference's evidence separates the training draws: the peak of each draw's
// deviation map (exactly the fourth channel the policy is trained on), normal draws against
// synthetic anomalies, per category and anomaly kind. A policy trained from scratch learns to
// read this evidence; where the synthetic anomalies do not stand out of it, their labels teach
// nothing and training stays at chance, which this check shows before the first step.
#pragma once
#include <array>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <opencv2/core.hpp>
#include <torch/types.h>

#include "lriad/reference/map_part.h"

namespace lriad::train {

class TrainingSource;
struct TrainItem;

struct EvidenceCheck {
  struct Category {
    size_t normals = 0;                                        // normal training images the level is from
    std::map<std::string, std::vector<double>> anomaly_peaks;  // by defect-type word
    double level = 0;  // the `quantile` of the normal images' peaks: "above normal" starts here
    // Share of the synthetic anomalies whose peak is above `level` (all kinds, and by kind).
    double visible = 0;
    std::map<std::string, double> visible_by_kind;
    // The look a chain states (text::looks_text, measured against `level`) of each synthetic anomaly above it, by defect
    // family word (kinds without a family under their own name): family -> look -> count.
    std::map<std::string, std::map<std::string, int>> looks;
    // Share of those anomalies a reader of the look alone names the family of right, at best (each
    // look read as its most frequent family here): how far the stated look tells the kinds apart.
    double look_purity = 0;
  };
  double quantile = 0.95;
  std::map<std::string, Category> categories;
  double visible = 0;  // over every category's synthetic anomalies
};

// Share of `values` strictly above `level` (0 for an empty list).
double share_above(const std::vector<double>& values, double level);

// The synthetic anomalies among the source's draws of SFT steps [0, steps) (every index of a batch
// of `batch`), their inputs made by `input`, against the q-quantile of `normal_peaks` (per category:
// the peaks of its normal training images, each against the bank its draws use). `masks`, when
// given, the draw's absent pixels (NormalReference::absent) and colour novelty
// (NormalReference::colour_novelty) its look is read with, as training reads it (each may be empty).
EvidenceCheck check_evidence(const TrainingSource& source,
                             const std::map<std::string, std::vector<double>>& normal_peaks,
                             const std::function<torch::Tensor(const TrainItem&, reference::MapPart*)>& input,
                             int steps, int batch, double q,
                             const std::function<std::array<cv::Mat, 2>(const TrainItem&)>& masks = nullptr);

// Most frequent family per look, summed over looks, over all anomalies counted (0 when none).
double look_purity(const std::map<std::string, std::map<std::string, int>>& looks);

// Two lines per category: the normal level and the share of synthetic anomalies above it, by kind;
// then each family's most frequent look and the look purity.
std::vector<std::string> describe(const EvidenceCheck& check);

}  // namespace lriad::train
