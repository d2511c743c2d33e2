// Image-level anomaly metrics with scikit-learn's definitions: confusion counts, accuracy,
// balanced accuracy, precision, recall, specificity, F1, ROC/AUROC (ties as half), average precision.
// Labels and predictions are 0 = normal, 1 = anomalous; scores are "higher = more anomalous".
#pragma once
#include <cstdint>
#include <optional>
#include <vector>

namespace lriad::eval {

struct Confusion {
  int64_t tp = 0, fp = 0, tn = 0, fn = 0;
  int64_t n() const { return tp + fp + tn + fn; }
};

struct BinaryMetrics {
  Confusion cm;
  double accuracy = 0, balanced_accuracy = 0, precision = 0, recall = 0, specificity = 0, f1 = 0;
  std::optional<double> auroc;              // nullopt when only one class is present
  std::optional<double> average_precision;  // nullopt without anomalous samples
  int64_t n = 0, n_normal = 0, n_anomalous = 0;
};

Confusion confusion(const std::vector<int>& labels, const std::vector<int>& preds);

// Zero divisions give 0 (sklearn's zero_division=0). Balanced accuracy averages the recall of
// the classes present (sklearn's balanced_accuracy_score).
BinaryMetrics binary_metrics(const std::vector<int>& labels, const std::vector<int>& preds,
                             const std::vector<double>& scores);

// Area under the ROC curve = P(score of a random anomaly > score of a random normal), ties 1/2.
std::optional<double> auroc(const std::vector<int>& labels, const std::vector<double>& scores);

// sum_k (R_k - R_{k-1}) P_k over decreasing distinct thresholds (sklearn's average_precision_score).
std::optional<double> average_precision(const std::vector<int>& labels, const std::vector<double>& scores);

struct RocPoint {
  double fpr = 0, tpr = 0, threshold = 0;
};
// One point per distinct score (decreasing), starting at (0, 0) with threshold +inf.
std::vector<RocPoint> roc_curve(const std::vector<int>& labels, const std::vector<double>& scores);

}  // namespace lriad::eval
