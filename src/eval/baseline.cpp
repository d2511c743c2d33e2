// The evidence-only baseline's metrics (see baseline.h).
#include "lriad/eval/baseline.h"

#include <cstdio>

#include "lriad/eval/metrics.h"
#include "lriad/io/error.h"

namespace lriad::eval {
namespace {

nlohmann::json opt(const std::optional<double>& v) { return v ? nlohmann::json(*v) : nlohmann::json(nullptr); }

// The baseline's verdicts on `ps` and the policy's metric functions on them.
nlohmann::json block(const std::vector<const Prediction*>& ps, const BaselineRule& rule) {
  std::vector<int> labels, preds;
  std::vector<double> scores;
  for (const auto* p : ps) {
    labels.push_back(p->label);
    scores.push_back(*p->evidence_peak);
    preds.push_back(*p->evidence_peak > rule.threshold(p->category) ? 1 : 0);
  }
  const BinaryMetrics m = binary_metrics(labels, preds, scores);
  return {{"accuracy", m.accuracy},
          {"balanced_accuracy", m.balanced_accuracy},
          {"auroc", opt(m.auroc)},
          {"recall_anomalous", m.recall},
          {"recall_normal", m.specificity},
          {"n", m.n},
          {"n_normal", m.n_normal},
          {"n_anomalous", m.n_anomalous},
          {"confusion", {{"tp", m.cm.tp}, {"fp", m.cm.fp}, {"tn", m.cm.tn}, {"fn", m.cm.fn}}}};
}

}  // namespace

double BaselineRule::threshold(const std::string& category) const {
  auto it = thresholds.find(category);
  return it == thresholds.end() ? pooled : it->second;
}

std::string baseline_method(double q, bool with_training) {
  char qs[32];
  std::snprintf(qs, sizeof qs, "%g", q);
  return std::string("peak of the normal reference's deviation map; threshold = ") + qs +
         (with_training ? " quantile of normal training images' peaks per category (held-out ones compared with both "
                          "banks, the others with the bank they are not in)"
                        : " quantile of held-out normal training images' peaks per category");
}

nlohmann::json summarize_baseline(const std::vector<Prediction>& predictions, const BaselineRule& rule) {
  std::vector<const Prediction*> all;
  std::map<std::string, std::vector<const Prediction*>> by_category;
  for (const auto& p : predictions) {
    if (!p.evidence_peak)
      throw Error("baseline: " + p.image + " has no evidence_peak", "the run needs model.reference=knn");
    all.push_back(&p);
    by_category[p.category].push_back(&p);
  }
  nlohmann::json out = {{"method", baseline_method(rule.q, rule.with_training)}, {"q", rule.q}};
  out.update(block(all, rule));
  nlohmann::json thresholds = nlohmann::json::object(), per_category = nlohmann::json::object();
  double bacc_sum = 0, auroc_sum = 0;
  int auroc_n = 0;
  for (const auto& [cat, ps] : by_category) {
    thresholds[cat] = rule.threshold(cat);
    nlohmann::json c = block(ps, rule);
    c["threshold"] = rule.threshold(cat);
    bacc_sum += c["balanced_accuracy"].get<double>();
    if (!c["auroc"].is_null()) auroc_sum += c["auroc"].get<double>(), ++auroc_n;
    per_category[cat] = c;
  }
  out["thresholds"] = thresholds;
  out["per_category"] = per_category;
  out["macro"] = {{"balanced_accuracy", by_category.empty() ? nlohmann::json(nullptr)
                                                            : nlohmann::json(bacc_sum / double(by_category.size()))},
                  {"auroc", auroc_n ? nlohmann::json(auroc_sum / auroc_n) : nlohmann::json(nullptr)}};
  return out;
}

}  // namespace lriad::eval
