// The GRPO rewards of one completion, each a pure function of the parsed completion and the
// sample's image-level label (golden tests in tests/test_rl.cpp). The focal/imbalance term is
// in focal.h; total_reward() weighs them all with the config's weights.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "lriad/io/config.h"
#include "lriad/text/answer.h"

namespace lriad::rl {

struct RewardTarget {
  bool anomalous = false;
  std::string defect_type;  // "good" for normal samples; "" or "anomaly" = unnamed defect
  std::string category;     // the sample's category ("" = not known: no object reward)
};

// 1 when the completion is well-formed (tags once each, in order, a parseable verdict), else 0.
double format_reward(const text::ParsedCompletion& c);
// 1 when the verdict is right; a hedge or no verdict is wrong (0).
double accuracy_reward(const text::ParsedCompletion& c, const RewardTarget& t);
// Anomalous samples with a named type: 1 when the verdict is anomalous and the named type
// matches (canonical forms). Normal samples and unnamed defects: 0 (no type to learn).
double defect_type_reward(const text::ParsedCompletion& c, const RewardTarget& t);
// 1 when the reasoning's conclusion agrees with the answer, else 0.
double consistency_reward(const text::ParsedCompletion& c);
// 1 when the reasoning's first sentence names the sample's category (text::names_category), else 0.
// Without it GRPO lets the opening drift ("This is a screw sample." of brushed metal): no reward
// depends on it, and the focal term's decision point, found from the category's templates, is lost.
double object_reward(const text::ParsedCompletion& c, const RewardTarget& t);

// The names as logged: rewards/<name>/mean.
inline const std::vector<std::string>& reward_names() {
  static const std::vector<std::string> names = {"format", "accuracy", "defect_type", "consistency", "object", "focal"};
  return names;
}

struct RewardBreakdown {
  std::map<std::string, double> parts;  // unweighted, by reward_names()
  double total = 0;                     // sum of weight * part
  bool correct = false;                 // verdict right
};

// focal: alpha * (1 - p_correct)^gamma * class_weight for a right verdict, else 0; with
// config.focal == 0 the term is skipped (plain accuracy reward).
RewardBreakdown total_reward(const text::ParsedCompletion& c, const RewardTarget& t, double p_correct,
                             double class_weight, const RewardConfig& config);

}  // namespace lriad::rl
