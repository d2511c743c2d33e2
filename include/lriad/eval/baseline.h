// The evidence-only baseline, reported beside the policy: the normal reference alone, an image
// called anomalous when the peak of its deviation map (Prediction::evidence_peak) lies above its
// category's threshold, fitted on normal training images at training time
// (train/baseline.h, baseline.json). The simplest detector the policy must beat.
#pragma once
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lriad/eval/summary.h"
#include "lriad/io/config.h"

namespace lriad::reference {
class NormalReference;
}

namespace lriad::eval {

struct BaselineRule {
  double q = 0.95;                           // the quantile the thresholds are
  std::map<std::string, double> thresholds;  // per category
  double pooled = 0;                         // a category missing from `thresholds`
  bool with_training = true;                 // fitted on every normal training image (false: the held-out ones)
  double threshold(const std::string& category) const;
};

// "peak of the normal reference's deviation map; threshold = 0.95 quantile of ..." for `q`, saying
// which normal training images the thresholds come from.
std::string baseline_method(double q, bool with_training);

// metrics.json's "baseline": method, q, thresholds (of the categories present), accuracy,
// balanced_accuracy, auroc (the peak as score; null with one class), recall_anomalous,
// recall_normal, n, n_normal, n_anomalous, confusion, per_category (the same and its threshold),
// macro (balanced_accuracy and auroc averaged over categories). Anomalous: peak > threshold.
// Throws when a prediction has no evidence_peak.
nlohmann::json summarize_baseline(const std::vector<Prediction>& predictions, const BaselineRule& rule);

// Sets metrics["baseline"] for the run: thresholds from its baseline.json (rebuilt from the
// run's config for a run made before it). Without a normal reference (model.reference=none), or
// when the thresholds cannot be had, "baseline" is null and "baseline_reason" says why.
void add_baseline(nlohmann::json& metrics, const std::string& run_dir, const RunConfig& config,
                  const reference::NormalReference* reference, const std::vector<Prediction>& predictions);

}  // namespace lriad::eval
