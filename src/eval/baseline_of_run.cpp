// metrics.json's "baseline" for a run (see baseline.h): its thresholds from train/baseline.h.
#include <spdlog/spdlog.h>

#include "lriad/eval/baseline.h"
#include "lriad/io/error.h"
#include "lriad/train/baseline.h"

namespace lriad::eval {

void add_baseline(nlohmann::json& metrics, const std::string& run_dir, const RunConfig& config,
                  const reference::NormalReference* reference, const std::vector<Prediction>& predictions) {
  auto none = [&](const std::string& reason) {
    metrics["baseline"] = nullptr;
    metrics["baseline_reason"] = reason;
  };
  if (!reference) return none("model.reference=" + config.model.reference + ": no normal reference to score with");
  train::BaselineThresholds t;
  try {
    t = train::run_baseline(run_dir, config, *reference);
  } catch (const Error& e) {  // e.g. an old run whose training data has moved: the policy's metrics still stand
    spdlog::warn("evidence-only baseline left out: {}", e.what());
    return none(std::string("no thresholds: ") + e.what());
  }
  if (!t.usable())
    return none("the run held out no normal training image to set thresholds on (train.val_size, data.val_fraction)");
  BaselineRule rule;
  rule.q = t.q;
  rule.pooled = t.pooled;
  rule.with_training = t.with_training;
  for (const auto& [cat, c] : t.categories) rule.thresholds[cat] = c.threshold;
  metrics["baseline"] = summarize_baseline(predictions, rule);
}

}  // namespace lriad::eval
