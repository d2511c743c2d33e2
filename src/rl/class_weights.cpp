// Class weights from real frequencies (static) and from the running shares of what training sees
// (dynamic); see class_weights.h.
#include "lriad/rl/class_weights.h"

#include <cmath>

#include <nlohmann/json.hpp>

#include "lriad/io/error.h"

namespace lriad::rl {

namespace {

std::map<std::string, double> normalised_shares(const std::map<std::string, double>& shares, const char* who) {
  if (shares.empty()) throw Error(std::string(who) + ": no defect class to weigh", "pass each defect class's share");
  double sum = 0;
  for (const auto& [cls, s] : shares) {
    if (!(s > 0) || !std::isfinite(s))
      throw Error(std::string(who) + ": defect class '" + cls + "' has share " + std::to_string(s),
                  "leave classes training never sees out");
    sum += s;
  }
  std::map<std::string, double> out;
  for (const auto& [cls, s] : shares) out[cls] = s / sum;
  return out;
}

}  // namespace

std::map<std::string, double> class_weights(double anomaly_share, const std::map<std::string, double>& defect_shares,
                                            double power) {
  if (!(anomaly_share > 0 && anomaly_share < 1))
    throw Error("class_weights: the anomalous share must be in (0, 1), got " + std::to_string(anomaly_share),
                "set reward.anomaly_share to the line's share of defective parts");
  if (!(power >= 0)) throw Error("class_weights: power must be >= 0, got " + std::to_string(power));
  const auto s = normalised_shares(defect_shares, "class_weights");
  const double ug = std::pow(1.0 / (1.0 - anomaly_share), power), ua = std::pow(1.0 / anomaly_share, power);
  std::map<std::string, double> w;
  w[kNormalClass] = 2 * ug / (ug + ua);
  const double anomalous = 2 * ua / (ug + ua);
  double mean = 0;  // sum_k s_k (1/s_k)^power
  for (const auto& [cls, v] : s) mean += v * std::pow(1.0 / v, power);
  for (const auto& [cls, v] : s)
    if (cls != kNormalClass) w[cls] = anomalous * std::pow(1.0 / v, power) / mean;
  return w;
}

DynamicClassWeights::DynamicClassWeights(double anomaly_share, std::map<std::string, double> initial_shares,
                                         double momentum, double power, double difficulty, double prior_samples)
    : anomaly_share_(anomaly_share),
      momentum_(momentum),
      power_(power),
      difficulty_(difficulty),
      prior_samples_(prior_samples) {
  if (!(momentum >= 0 && momentum < 1))
    throw Error("DynamicClassWeights: momentum must be in [0,1), got " + std::to_string(momentum));
  if (!(difficulty >= 0))
    throw Error("DynamicClassWeights: difficulty must be >= 0, got " + std::to_string(difficulty));
  if (!(prior_samples >= 0)) throw Error("DynamicClassWeights: prior_samples must be >= 0");
  initial_shares_ = normalised_shares(initial_shares, "DynamicClassWeights");
  weights_ = class_weights(anomaly_share, initial_shares_, power);  // checks the share and the power too
  for (const auto& [cls, _] : weights_) state_[cls] = ClassState{};
}

void DynamicClassWeights::observe_sample(const std::string& cls) {
  if (cls == kNormalClass) return;  // the normal share is the line's, not the draws'
  ++seen_[cls];
}

void DynamicClassWeights::observe(const std::string& cls, bool correct) {
  auto& s = state_[cls];
  s.total += 1;
  s.correct += correct ? 1 : 0;
}

std::map<std::string, double> DynamicClassWeights::shares() const {
  std::map<std::string, double> pseudo;
  for (const auto& [cls, s] : initial_shares_) pseudo[cls] = prior_samples_ * s;
  for (const auto& [cls, n] : seen_) pseudo[cls] += double(n);
  double sum = 0;
  for (auto& [cls, v] : pseudo) sum += v;
  std::map<std::string, double> out;
  for (const auto& [cls, v] : pseudo)
    if (v > 0) out[cls] = v / sum;
  return out;
}

std::map<std::string, double> DynamicClassWeights::difficulties() const {
  std::map<std::string, double> d;
  double mean = 0;
  for (const auto& [cls, s] : state_) mean += d[cls] = std::pow(1.0 - s.accuracy + kAccuracySmoothing, difficulty_);
  mean /= double(std::max<size_t>(1, d.size()));
  for (auto& [cls, v] : d) v /= mean;
  return d;
}

std::map<std::string, double> DynamicClassWeights::recompute() {
  for (auto& [cls, s] : state_) {  // fold each judged class's accuracy since the last call into its EMA
    if (s.total == 0) continue;
    s.accuracy = momentum_ * s.accuracy + (1.0 - momentum_) * double(s.correct) / double(s.total);
    s.correct = s.total = 0;
  }
  auto w = class_weights(anomaly_share_, shares(), power_);
  if (difficulty_ > 0) {
    const auto d = difficulties();
    for (auto& [cls, v] : w) {
      auto it = d.find(cls);
      if (it != d.end()) v *= it->second;
    }
  }
  for (const auto& [cls, _] : w) state_.try_emplace(cls);
  weights_ = std::move(w);
  return weights_;
}

std::map<std::string, double> DynamicClassWeights::accuracies() const {
  std::map<std::string, double> acc;
  for (const auto& [cls, s] : state_) acc[cls] = s.accuracy;
  return acc;
}

nlohmann::json DynamicClassWeights::to_json() const {
  nlohmann::json classes = nlohmann::json::object();
  for (const auto& [cls, s] : state_) {
    auto seen = seen_.find(cls);
    auto w = weights_.find(cls);
    classes[cls] = {{"accuracy", s.accuracy},
                    {"correct", s.correct},
                    {"total", s.total},
                    {"seen", seen == seen_.end() ? 0 : seen->second},
                    {"weight", w == weights_.end() ? 1.0 : w->second}};
  }
  return {{"version", kFormatVersion},
          {"anomaly_share", anomaly_share_},
          {"momentum", momentum_},
          {"power", power_},
          {"difficulty", difficulty_},
          {"prior_samples", prior_samples_},
          {"initial_shares", initial_shares_},
          {"classes", classes}};
}

void DynamicClassWeights::from_json(const nlohmann::json& j) {
  try {
    const int version = j.at("version").get<int>();
    if (version != kFormatVersion)
      throw Error("dynamic class weights: format version " + std::to_string(version) + ", expected " +
                      std::to_string(kFormatVersion),
                  "the checkpoint was written by an lriad whose weights followed accuracy, not rarity");
    DynamicClassWeights loaded(j.at("anomaly_share").get<double>(),
                               j.at("initial_shares").get<std::map<std::string, double>>(),
                               j.at("momentum").get<double>(), j.at("power").get<double>(),
                               j.at("difficulty").get<double>(), j.at("prior_samples").get<double>());
    loaded.weights_.clear();
    for (const auto& [cls, c] : j.at("classes").items()) {
      loaded.state_[cls] =
          ClassState{c.at("accuracy").get<double>(), c.at("correct").get<int64_t>(), c.at("total").get<int64_t>()};
      if (const auto n = c.at("seen").get<int64_t>(); n > 0) loaded.seen_[cls] = n;
      loaded.weights_[cls] = c.at("weight").get<double>();
    }
    *this = std::move(loaded);  // all or nothing
  } catch (const nlohmann::json::exception& e) {
    throw Error(std::string("dynamic class weights: malformed state: ") + e.what(),
                "the checkpoint's class_weights entry is damaged or from another version");
  }
}

}  // namespace lriad::rl
