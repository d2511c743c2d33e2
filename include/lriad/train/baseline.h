// The evidence-only baseline's decision thresholds (baseline.json): an image's score is the peak of
// the normal reference's deviation map (the 4th channel of the policy input), and a category's
// threshold is the q-quantile of that peak over the held-out normal training images (validation
// normals, in neither reference bank and compared with both, as test images are). Test images
// never set a threshold. A category without held-out normals uses the pooled peaks of all.
#pragma once
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>
#include <torch/types.h>

#include "lriad/reference/reference.h"
#include "lriad/io/config.h"

namespace lriad::train {

class TrainingSource;

inline constexpr const char* kBaselineFormat = "lriad-baseline";
inline constexpr int kBaselineFormatVersion = 1;
// 0.95: about one held-out normal in twenty lies above its category's threshold; fixed so that
// runs compare (written into baseline.json, which eval reads it from).
inline constexpr double kBaselineQuantile = 0.95;

// numpy.quantile(values, q) with its default "linear" method: position h = (n - 1) q in the sorted
// values, interpolated between the order statistics on either side. Throws on an empty list or q
// outside [0, 1].
double quantile(std::vector<double> values, double q);

struct BaselineThresholds {
  double q = kBaselineQuantile;
  struct Category {
    double threshold = 0;
    bool pooled = false;        // no held-out normal of its own: the pooled threshold
    std::vector<double> peaks;  // its held-out normals' peaks
  };
  std::map<std::string, Category> categories;
  double pooled = 0;     // the q-quantile of every held-out peak
  int64_t n_pooled = 0;  // 0: no held-out normal at all, no threshold (usable() is false)
  bool usable() const { return n_pooled > 0; }
  // The category's threshold, the pooled one for a category the run did not train on.
  double threshold(const std::string& category) const;
  // The normal level the evidence facts are stated against: threshold(category) when usable and
  // > 0, else nullopt (no level to state a ratio to).
  std::optional<double> level(const std::string& category) const;
};

// Thresholds from the held-out peaks per category; every name in `categories` gets one.
BaselineThresholds fit_thresholds(const std::map<std::string, std::vector<double>>& peaks,
                                  const std::vector<std::string>& categories, double q = kBaselineQuantile);

nlohmann::json to_json(const BaselineThresholds& t);
// `source` names the file in errors.
BaselineThresholds thresholds_from_json(const nlohmann::json& j, const std::string& source);
void save_baseline(const BaselineThresholds& t, const std::string& path);  // atomic
BaselineThresholds load_baseline(const std::string& path);

// The peak of the deviation map: the max of channel 3 of a policy input (4,S,S).
double evidence_peak(const torch::Tensor& input);

// The source's held-out normal validation images compared with both banks, fitted.
BaselineThresholds fit_baseline(const TrainingSource& source, const reference::NormalReference& reference,
                                double q = kBaselineQuantile);

// The run's baseline.json; a run made before it has none, and then the same held-out set is rebuilt
// from the run's config (a TrainingSource is deterministic in the seed), which the log says.
BaselineThresholds run_baseline(const std::string& run_dir, const RunConfig& config,
                                const reference::NormalReference& reference);

}  // namespace lriad::train
