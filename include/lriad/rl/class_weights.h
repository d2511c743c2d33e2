// Class weights f_c for LR-IAD's imbalance-aware reward, from real frequencies: rare classes
// weigh more. Classes are strings: "good" for normal samples, otherwise the defect type.
//
// Two levels. Normal against anomalous by the real line's share of defective parts, which the
// draws hide (data.anomaly_ratio balances them); then each defect class by its share among the
// defects, so a rare defect pattern weighs more than a common one. A "good" weight is never near 0
// against the defects' (a right "normal" still pays; a false alarm, a wrong verdict, pays nothing).
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace lriad::rl {

inline constexpr const char* kNormalClass = "good";
// The defective share where neither the user nor the dataset gives one: MVTec-AD's (1258 of its
// 5354 images; VisA's is 1200 of 10821, 11.1%).
inline constexpr double kFallbackAnomalyShare = 0.235;

// With u_g = (1/(1 - anomaly_share))^power and u_a = (1/anomaly_share)^power:
//   w_good = 2 u_g / (u_g + u_a),  w_anom = 2 u_a / (u_g + u_a)       (their plain mean is 1)
//   w_c    = w_anom (1/s_c)^power / sum_k s_k (1/s_k)^power           (share-weighted mean w_anom)
// for every defect class c with share s_c (`defect_shares`, normalised to sum 1 here). MVTec-AD's
// share 0.235 at power 1 gives good 0.47 and anomalous 1.53. power 0: all ones. Throws lriad::Error
// on a share outside (0,1), a defect share <= 0, power < 0, or no defect class.
std::map<std::string, double> class_weights(double anomaly_share, const std::map<std::string, double>& defect_shares,
                                            double power = 1.0);

// Weights that follow what training sees (reward.class_weights "dynamic"): each defect class's
// running share among the anomalous samples seen (its rarity: counts since the start, on top of
// `prior_samples` pseudo-samples at the initial shares), fed to class_weights; with difficulty > 0
// each weight is also multiplied by d_c / mean_k d_k, d_c = (1 - acc_c + kAccuracySmoothing)^difficulty
// with acc_c an EMA (momentum) of the class's accuracy, folded once per recompute().
// observe_sample() counts a sample (once per prompt), observe() a judged completion.
class DynamicClassWeights {
 public:
  static constexpr double kInitialAccuracy = 0.5;
  static constexpr double kAccuracySmoothing = 0.01;  // keeps d_c > 0 for a perfect class
  static constexpr int kFormatVersion = 2;

  // anomaly_share in (0,1); initial_shares: the defect classes' shares (not empty, each > 0);
  // momentum in [0,1), power >= 0, difficulty >= 0, prior_samples >= 0; else throws lriad::Error.
  DynamicClassWeights(double anomaly_share, std::map<std::string, double> initial_shares, double momentum = 0.9,
                      double power = 1.0, double difficulty = 0.0, double prior_samples = 64);

  void observe_sample(const std::string& cls);         // a sample drawn: counts towards its rarity
  void observe(const std::string& cls, bool correct);  // a judged completion: counts towards its accuracy
  std::map<std::string, double> recompute();           // returns the new weights
  std::map<std::string, double> weights() const { return weights_; }
  std::map<std::string, double> shares() const;        // the defect classes' running shares (sum 1)
  std::map<std::string, double> difficulties() const;  // d_c / mean d (all 1 when difficulty is 0)
  std::map<std::string, double> accuracies() const;

  // Exact state (counts, EMA accuracies, weights, parameters) for checkpoint resume; doubles
  // survive a JSON dump/parse round trip bit for bit.
  nlohmann::json to_json() const;
  void from_json(const nlohmann::json& j);  // throws lriad::Error on a wrong version or shape

 private:
  struct ClassState {
    double accuracy = kInitialAccuracy;
    int64_t correct = 0;  // since the last recompute()
    int64_t total = 0;
  };
  double anomaly_share_, momentum_, power_, difficulty_, prior_samples_;
  std::map<std::string, double> initial_shares_;  // normalised
  std::map<std::string, int64_t> seen_;           // samples seen per defect class
  std::map<std::string, ClassState> state_;       // accuracy per class ("good" too)
  std::map<std::string, double> weights_;
};

}  // namespace lriad::rl
