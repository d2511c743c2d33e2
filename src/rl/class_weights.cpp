// Static (inverse-frequency) and dynamic (accuracy-driven) class weights, both mean 1.
#include "lriad/rl/class_weights.h"

#include <cmath>

#include <nlohmann/json.hpp>

#include "lriad/io/error.h"

namespace lriad::rl {

namespace {

// Divides every value by the plain mean over the map's entries.
std::map<std::string, double> normalise_to_mean_one(std::map<std::string, double> w) {
  double sum = 0.0;
  for (const auto& [cls, v] : w) sum += v;
  const double mean = sum / double(w.size());
  for (auto& [cls, v] : w) v /= mean;
  return w;
}

}  // namespace

std::map<std::string, double> static_class_weights(const std::map<std::string, int64_t>& counts, double power) {
  if (power < 0) throw Error("static_class_weights: power must be >= 0, got " + std::to_string(power));
  std::map<std::string, double> w;
  for (const auto& [cls, n] : counts) {
    if (n <= 0)
      throw Error("static_class_weights: class '" + cls + "' has count " + std::to_string(n),
                  "leave classes absent from the training set out of the counts");
    w[cls] = std::pow(1.0 / double(n), power);
  }
  if (w.empty()) return w;
  return normalise_to_mean_one(std::move(w));
}

DynamicClassWeights::DynamicClassWeights(std::vector<std::string> classes, double momentum, double power,
                                         double floor)
    : momentum_(momentum), power_(power), floor_(floor) {
  if (!(momentum >= 0 && momentum < 1))
    throw Error("DynamicClassWeights: momentum must be in [0,1), got " + std::to_string(momentum));
  if (!(power >= 0)) throw Error("DynamicClassWeights: power must be >= 0, got " + std::to_string(power));
  if (!(floor >= 0 && floor <= 1))
    throw Error("DynamicClassWeights: floor must be in [0,1], got " + std::to_string(floor));
  for (const auto& cls : classes) {
    state_[cls] = ClassState{};
    weights_[cls] = 1.0;  // every class at the initial accuracy: equal weights
  }
}

void DynamicClassWeights::observe(const std::string& cls, bool correct) {
  auto [it, added] = state_.try_emplace(cls);
  if (added) weights_[cls] = 1.0;  // no evidence yet: an average class
  it->second.total += 1;
  it->second.correct += correct ? 1 : 0;
}

std::map<std::string, double> DynamicClassWeights::recompute() {
  // 1. Fold each observed class's accuracy since the last call into its EMA.
  for (auto& [cls, s] : state_) {
    if (s.total == 0) continue;
    const double batch_acc = double(s.correct) / double(s.total);
    s.accuracy = momentum_ * s.accuracy + (1.0 - momentum_) * batch_acc;
    s.correct = s.total = 0;
  }
  if (state_.empty()) return weights_;
  // 2. r_c = (1 - acc_c + smoothing)^power, normalised to mean 1.
  std::map<std::string, double> r;
  for (const auto& [cls, s] : state_) r[cls] = std::pow(1.0 - s.accuracy + kAccuracySmoothing, power_);
  r = normalise_to_mean_one(std::move(r));
  // 3. Mix with the floor: w = floor + (1 - floor) r keeps mean 1 and w >= floor.
  for (auto& [cls, v] : r) v = floor_ + (1.0 - floor_) * v;
  weights_ = std::move(r);
  return weights_;
}

std::map<std::string, double> DynamicClassWeights::accuracies() const {
  std::map<std::string, double> acc;
  for (const auto& [cls, s] : state_) acc[cls] = s.accuracy;
  return acc;
}

nlohmann::json DynamicClassWeights::to_json() const {
  nlohmann::json classes = nlohmann::json::object();
  for (const auto& [cls, s] : state_)
    classes[cls] = {{"accuracy", s.accuracy}, {"correct", s.correct}, {"total", s.total},
                    {"weight", weights_.at(cls)}};
  return {{"version", kFormatVersion}, {"momentum", momentum_}, {"power", power_}, {"floor", floor_},
          {"classes", classes}};
}

void DynamicClassWeights::from_json(const nlohmann::json& j) {
  try {
    const int version = j.at("version").get<int>();
    if (version != kFormatVersion)
      throw Error("dynamic class weights: format version " + std::to_string(version) + ", expected " +
                  std::to_string(kFormatVersion));
    DynamicClassWeights loaded({}, j.at("momentum").get<double>(), j.at("power").get<double>(),
                               j.at("floor").get<double>());
    for (const auto& [cls, c] : j.at("classes").items()) {
      loaded.state_[cls] = ClassState{c.at("accuracy").get<double>(), c.at("correct").get<int64_t>(),
                                      c.at("total").get<int64_t>()};
      loaded.weights_[cls] = c.at("weight").get<double>();
    }
    *this = std::move(loaded);  // all or nothing
  } catch (const nlohmann::json::exception& e) {
    throw Error(std::string("dynamic class weights: malformed state: ") + e.what(),
                "the checkpoint's class_weights entry is damaged or from another version");
  }
}

}  // namespace lriad::rl
