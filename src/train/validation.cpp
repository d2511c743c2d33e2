// Validation results and how to read them (see validation.h).
#include "lriad/train/validation.h"

#include <spdlog/fmt/fmt.h>
#include <nlohmann/json.hpp>

#include "lriad/text/answer.h"
#include "lriad/text/defect_family.h"
#include "lriad/text/prompt.h"

#include <algorithm>
#include <vector>

namespace lriad::train {

ValidationResult score_validation(const std::vector<ValidationChain>& chains,
                                  const std::vector<std::string>& defect_types) {
  ValidationResult v;
  v.items = int(chains.size());
  if (chains.empty()) return v;
  int tp = 0, fn = 0, tn = 0, fp = 0, formatted = 0, named = 0;
  std::map<std::string, std::pair<int, int>> per_class;  // right, items
  for (const auto& c : chains) {
    const auto p = text::parse_completion(c.chain, defect_types);
    const bool right = p.verdict.has_value() && *p.verdict == int(c.anomalous);
    const bool said_anomalous = p.verdict == 1, said_normal = p.verdict == 0;
    formatted += p.well_formed;
    CategoryAnswers& a = v.answers[c.category];
    if (c.anomalous) {
      (right ? tp : fn)++;
      ++a.anomalous_items;
      a.anomalous_said_anomalous += said_anomalous;
      a.anomalous_said_normal += said_normal;
      // Does the chain name the type it was taught? Not asked of an unnamed defect (VisA's "anomaly",
      // "" without a type), whose chain is taught to name none.
      if (said_anomalous && !text::is_unnamed_defect(c.taught_type)) {
        ++v.typed_items;
        named += text::same_defect(p.defect_type, c.taught_type);
      }
    } else {
      (right ? tn : fp)++;
      ++a.normal_items;
      a.normal_said_anomalous += said_anomalous;
      a.normal_said_normal += said_normal;
    }
    per_class[c.cls].first += right;
    per_class[c.cls].second += 1;
  }
  v.recall_anomalous = tp + fn ? double(tp) / (tp + fn) : 0;
  v.recall_normal = tn + fp ? double(tn) / (tn + fp) : 0;
  v.balanced_accuracy = (tp + fn && tn + fp) ? (v.recall_anomalous + v.recall_normal) / 2
                                             : (tp + fn ? v.recall_anomalous : v.recall_normal);
  v.accuracy = double(tp + tn) / v.items;
  v.normal_items = tn + fp;
  v.anomalous_items = tp + fn;
  v.format_rate = double(formatted) / v.items;
  v.type_agreement = v.typed_items ? double(named) / v.typed_items : 0;
  for (const auto& [c, ct] : per_class) v.class_accuracy[c] = double(ct.first) / ct.second;
  return v;
}

bool at_chance(const ValidationResult& v) {
  if (v.items == 0) return false;
  if (v.normal_items > 0 && v.recall_normal == 0) return true;
  if (v.anomalous_items > 0 && v.recall_anomalous == 0) return true;
  return v.balanced_accuracy <= 0.55;
}

double selection_score(const ValidationResult& v) {
  return v.balanced_accuracy + (at_chance(v) ? 0.0 : kTypeWeight * v.type_agreement);
}

bool replaces_best(double candidate, double best) { return candidate >= best; }

std::string describe_answers(const ValidationResult& v) {
  auto pct = [](int k, int n) { return fmt::format("{:.0f}%", 100.0 * k / std::max(1, n)); };
  std::string out;
  for (const auto& [cat, a] : v.answers) {
    const int total = a.normal_items + a.anomalous_items;
    const int anomalous = a.normal_said_anomalous + a.anomalous_said_anomalous;
    const int normal = a.normal_said_normal + a.anomalous_said_normal;
    std::string clause;
    if (total == 0) continue;
    if (anomalous == total)
      clause = "'anomalous' to 100% of " + cat + " images";
    else if (normal == total)
      clause = "'normal' to 100% of " + cat + " images";
    else if (anomalous + normal == 0)
      clause = "nothing readable to " + cat + " images";
    else {
      std::vector<std::string> parts;
      if (a.normal_items) parts.push_back(pct(a.normal_said_anomalous, a.normal_items) + " of normal");
      if (a.anomalous_items) parts.push_back(pct(a.anomalous_said_anomalous, a.anomalous_items) + " of anomalous");
      clause = "'anomalous' to " + parts[0] + (parts.size() > 1 ? " and " + parts[1] : "") + " " + cat + " images";
    }
    out += (out.empty() ? "answers " : ", ") + clause;
  }
  return out;
}

nlohmann::json to_json(const ValidationResult& v) {
  nlohmann::json answers = nlohmann::json::object();
  // Per category, the share of its normal and of its anomalous items answered "anomalous": a
  // policy that says one thing to everything shows 0/0 or 1/1 here.
  for (const auto& [cat, a] : v.answers)
    answers[cat] = {{"normal", a.normal_items ? double(a.normal_said_anomalous) / a.normal_items : 0.0},
                    {"anomalous", a.anomalous_items ? double(a.anomalous_said_anomalous) / a.anomalous_items : 0.0},
                    {"normal_items", a.normal_items},
                    {"anomalous_items", a.anomalous_items}};
  return {{"balanced_accuracy", v.balanced_accuracy},
          {"accuracy", v.accuracy},
          {"format_rate", v.format_rate},
          {"recall_anomalous", v.recall_anomalous},
          {"recall_normal", v.recall_normal},
          {"class_accuracy", v.class_accuracy},
          {"items", v.items},
          {"type_agreement", v.type_agreement},
          {"typed_items", v.typed_items},
          {"selection_score", selection_score(v)},
          {"answered_anomalous", answers},
          {"at_chance", at_chance(v)}};
}

}  // namespace lriad::train
