#include "lriad/rl/rewards.h"

#include "lriad/rl/focal.h"
#include "lriad/text/prompt.h"

namespace lriad::rl {

double format_reward(const text::ParsedCompletion& c) { return c.well_formed ? 1.0 : 0.0; }

double accuracy_reward(const text::ParsedCompletion& c, const RewardTarget& t) {
  return c.verdict.has_value() && *c.verdict == (t.anomalous ? 1 : 0) ? 1.0 : 0.0;
}

double defect_type_reward(const text::ParsedCompletion& c, const RewardTarget& t) {
  if (!t.anomalous || text::is_unnamed_defect(t.defect_type)) return 0.0;
  if (!c.verdict.has_value() || *c.verdict != 1 || c.defect_type.empty()) return 0.0;
  return text::canonical_defect_type(c.defect_type) == text::canonical_defect_type(t.defect_type) ? 1.0 : 0.0;
}

double consistency_reward(const text::ParsedCompletion& c) { return c.consistent ? 1.0 : 0.0; }

double object_reward(const text::ParsedCompletion& c, const RewardTarget& t) {
  return !t.category.empty() && text::names_category(c.think, t.category) ? 1.0 : 0.0;
}

RewardBreakdown total_reward(const text::ParsedCompletion& c, const RewardTarget& t, double p_correct,
                             double class_weight, const RewardConfig& w) {
  RewardBreakdown r;
  r.parts["format"] = format_reward(c);
  r.parts["accuracy"] = accuracy_reward(c, t);
  r.parts["defect_type"] = defect_type_reward(c, t);
  r.parts["consistency"] = consistency_reward(c);
  r.parts["object"] = object_reward(c, t);
  r.correct = r.parts["accuracy"] > 0;
  r.parts["focal"] = w.focal > 0 ? focal_reward(r.correct, p_correct, w.focal_alpha, w.focal_gamma, class_weight) : 0.0;
  r.total = w.format * r.parts["format"] + w.accuracy * r.parts["accuracy"] + w.defect_type * r.parts["defect_type"] +
            w.consistency * r.parts["consistency"] + w.object * r.parts["object"] + w.focal * r.parts["focal"];
  return r;
}

}  // namespace lriad::rl
