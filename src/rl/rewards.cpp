#include "lriad/rl/rewards.h"

#include <string>

#include "lriad/io/error.h"
#include "lriad/rl/focal.h"
#include "lriad/text/defect_family.h"
#include "lriad/text/prompt.h"

namespace lriad::rl {

double format_reward(const text::ParsedCompletion& c) { return c.well_formed ? 1.0 : 0.0; }

double accuracy_reward(const text::ParsedCompletion& c, const RewardTarget& t) {
  return c.verdict.has_value() && *c.verdict == (t.anomalous ? 1 : 0) ? 1.0 : 0.0;
}

double defect_type_reward(const text::ParsedCompletion& c, const RewardTarget& t) {
  if (!t.anomalous || text::is_unnamed_defect(t.defect_type)) return 0.0;
  if (!c.verdict.has_value() || *c.verdict != 1 || c.defect_type.empty()) return 0.0;
  return text::same_defect(c.defect_type, t.defect_type) ? 1.0 : 0.0;  // the dataset's word or its family
}

double consistency_reward(const text::ParsedCompletion& c) { return c.consistent ? 1.0 : 0.0; }

double object_reward(const text::ParsedCompletion& c, const RewardTarget& t) {
  return !t.category.empty() && text::names_category(c.think, t.category) ? 1.0 : 0.0;
}

double region_reward(const text::ParsedCompletion& c, const RewardTarget& t) {
  if (!c.region) return 0.0;
  for (auto r : t.evidence_cells)
    if (r == *c.region) return 1.0;
  return 0.0;
}

RewardBreakdown total_reward(const text::ParsedCompletion& c, const RewardTarget& t, double p_correct,
                             double class_weight, const RewardConfig& w) {
  RewardBreakdown r;
  r.parts["format"] = format_reward(c);
  r.parts["accuracy"] = accuracy_reward(c, t);
  r.parts["defect_type"] = defect_type_reward(c, t);
  r.parts["consistency"] = consistency_reward(c);
  r.parts["object"] = object_reward(c, t);
  r.parts["region"] = region_reward(c, t);
  r.correct = r.parts["accuracy"] > 0;
  r.parts["focal"] = w.focal > 0 ? focal_reward(r.correct, p_correct, 1.0, w.focal_gamma, class_weight) : 0.0;
  r.total = w.format * r.parts["format"] + w.accuracy * r.parts["accuracy"] + w.defect_type * r.parts["defect_type"] +
            w.consistency * r.parts["consistency"] + w.object * r.parts["object"] + w.region * r.parts["region"] +
            w.focal * r.parts["focal"];
  return r;
}

std::vector<double> group_beliefs(const std::vector<std::array<double, 2>>& probs, const std::vector<bool>& anomalous) {
  const size_t B = anomalous.size();
  if (B == 0 || probs.size() % B != 0)
    throw Error("group_beliefs: " + std::to_string(probs.size()) + " rows do not make groups of " + std::to_string(B) +
                " samples");
  const size_t G = probs.size() / B;
  std::vector<double> out(B, -1.0);
  for (size_t b = 0; b < B; ++b) {
    double sum = 0;
    int read = 0;
    for (size_t g = 0; g < G; ++g) {
      const auto& p = probs[b * G + g];
      if (!(p[0] >= 0 && p[1] >= 0 && p[0] + p[1] > 0)) continue;  // unread (or NaN)
      sum += p[anomalous[b] ? 1 : 0] / (p[0] + p[1]);
      ++read;
    }
    if (read > 0) out[b] = sum / read;
  }
  return out;
}

std::vector<RewardBreakdown> group_rewards(const std::vector<text::ParsedCompletion>& completions,
                                           const std::vector<GroupSample>& samples, const std::vector<double>& beliefs,
                                           const RewardConfig& config) {
  if (samples.empty() || completions.empty() || completions.size() % samples.size() != 0 ||
      beliefs.size() != samples.size())
    throw Error("group_rewards: " + std::to_string(completions.size()) + " completions, " +
                std::to_string(samples.size()) + " samples and " + std::to_string(beliefs.size()) +
                " beliefs do not make whole groups");
  const size_t G = completions.size() / samples.size();
  std::vector<RewardBreakdown> out;
  out.reserve(completions.size());
  for (size_t n = 0; n < completions.size(); ++n) {
    const auto& s = samples[n / G];
    out.push_back(total_reward(completions[n], s.target, beliefs[n / G], s.class_weight, config));
  }
  return out;
}

}  // namespace lriad::rl
