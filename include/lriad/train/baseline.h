// The evidence-only baseline's decision thresholds (baseline.json): an image's score is the peak of
// the normal reference's deviation map (the 4th channel of the policy input), and a category's
// threshold is the q-quantile of that peak over its normal training images, each compared with a
// bank it is not in, as training compares it: the held-out ones (validation normals, in neither
// bank) with both, as test images are, and the others with the other half's bank (format version
// 2; version 1 used the held-out ones only). Test images never set a threshold. A category without
// peaks of its own uses the pooled peaks of all.
//
// Why every training normal: a run holds out about a tenth of its normals (12 of 120 per category
// on the photo sets), and a 95% quantile of 12 peaks swings from seed to seed (on photo set E, 9-26%
// of the test normals lay above it); over all 120 it is steadier (the README, "Status", has the
// figures). The threshold is also the normal level the chains state ratios to: about one training
// normal in twenty now reads above the level, as the quantile says.
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
inline constexpr int kBaselineFormatVersion = 2;  // 1: held-out normals only (still read)
// 0.95: about one normal training image in twenty lies above its category's threshold; fixed so that
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
    bool pooled = false;        // no normal peak of its own: the pooled threshold
    std::vector<double> peaks;  // its normals' peaks: the held-out ones first, then the training ones
    int64_t held_out = 0;       // how many of `peaks` are held-out normals' (all of them in version 1)
  };
  std::map<std::string, Category> categories;
  double pooled = 0;     // the q-quantile of every peak
  int64_t n_pooled = 0;  // 0: no normal peak at all, no threshold (usable() is false)
  bool with_training = true;  // the peaks include the training normals' (false: a version-1 file)
  bool usable() const { return n_pooled > 0; }
  // The category's threshold, the pooled one for a category the run did not train on.
  double threshold(const std::string& category) const;
  // The normal level the evidence facts are stated against: threshold(category) when usable and
  // > 0, else nullopt (no level to state a ratio to).
  std::optional<double> level(const std::string& category) const;
};

// Thresholds from the peaks per category, held-out normals' then training normals' (either may be
// empty); every name in `categories` gets one.
BaselineThresholds fit_thresholds(const std::map<std::string, std::vector<double>>& held_out,
                                  const std::map<std::string, std::vector<double>>& training,
                                  const std::vector<std::string>& categories, double q = kBaselineQuantile);

nlohmann::json to_json(const BaselineThresholds& t);
// `source` names the file in errors.
BaselineThresholds thresholds_from_json(const nlohmann::json& j, const std::string& source);
void save_baseline(const BaselineThresholds& t, const std::string& path);  // atomic
BaselineThresholds load_baseline(const std::string& path);

// The peak of the deviation map: the max of channel 3 of a policy input (4,S,S).
double evidence_peak(const torch::Tensor& input);

// The source's held-out normal validation images compared with both banks, and its training normals
// (`training`: their peaks when the caller has them, else made as training makes their input:
// TrainingSource::normal_items, the other half's bank), fitted.
BaselineThresholds fit_baseline(const TrainingSource& source, const reference::NormalReference& reference,
                                double q = kBaselineQuantile,
                                const std::map<std::string, std::vector<double>>* training = nullptr);

// The run's baseline.json; a run made before it has none, and then the thresholds are fitted again
// from the normal images of the run's config (a TrainingSource is deterministic in the seed), which
// the log says.
BaselineThresholds run_baseline(const std::string& run_dir, const RunConfig& config,
                                const reference::NormalReference& reference);

}  // namespace lriad::train
