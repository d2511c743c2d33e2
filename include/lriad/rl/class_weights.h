// Class weights f_c for LR-IAD's imbalance-aware reward: rare or badly handled defect classes
// weigh more. Classes are strings: "good" for normal samples, otherwise the defect type.
// Both kinds of weights are normalised to a plain mean of 1 over the classes, so switching
// weights on does not change the average reward scale.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace lriad::rl {

// Inverse frequency: w_c = (1/n_c)^power / mean_k (1/n_k)^power, so mean_c w_c = 1.
// power 1 = plain inverse frequency, 0.5 = softened, 0 = all ones. Throws lriad::Error on a
// count <= 0 (an absent class has no frequency to invert) or a negative power.
std::map<std::string, double> static_class_weights(const std::map<std::string, int64_t>& counts,
                                                   double power = 1.0);

// Weights that follow the policy: classes it gets wrong weigh more.
// observe() only counts; recompute() folds each observed class's accuracy since the last
// recompute into an EMA (acc <- momentum*acc + (1-momentum)*batch_acc), so every class's EMA
// moves once per recompute however many samples it had, then sets
//   r_c = (1 - acc_c + kAccuracySmoothing)^power
//   w_c = floor + (1 - floor) * r_c / mean_k r_k          (mean 1, every w_c >= floor).
// Classes start at accuracy 0.5 (no evidence either way), so all weights start at 1.
// A class first seen in observe() is added with accuracy 0.5.
class DynamicClassWeights {
 public:
  static constexpr double kInitialAccuracy = 0.5;
  static constexpr double kAccuracySmoothing = 0.01;  // keeps r_c > 0 for a perfect class
  static constexpr int kFormatVersion = 1;

  // momentum in [0,1), power >= 0, floor in [0,1]; otherwise throws lriad::Error.
  DynamicClassWeights(std::vector<std::string> classes, double momentum = 0.9, double power = 1.0,
                      double floor = 0.1);

  void observe(const std::string& cls, bool correct);
  std::map<std::string, double> recompute();  // returns the new weights
  std::map<std::string, double> weights() const { return weights_; }
  std::map<std::string, double> accuracies() const;

  // Exact state (EMA accuracies, pending counts, weights, parameters) for checkpoint resume;
  // doubles survive a JSON dump/parse round trip bit for bit.
  nlohmann::json to_json() const;
  void from_json(const nlohmann::json& j);  // throws lriad::Error on a wrong version or shape

 private:
  struct ClassState {
    double accuracy = kInitialAccuracy;
    int64_t correct = 0;  // since the last recompute()
    int64_t total = 0;
  };
  double momentum_, power_, floor_;
  std::map<std::string, ClassState> state_;
  std::map<std::string, double> weights_;
};

}  // namespace lriad::rl
