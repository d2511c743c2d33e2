// The GRPO rewards of one completion, each a pure function of the parsed completion and the
// sample's image-level label (golden tests in tests/test_rl.cpp). The focal/imbalance term is
// in focal.h; total_reward() weighs them all with the config's weights.
#pragma once
#include <array>
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
  // Where the normal reference's deviation map peaks: its cell, and a second cell an elongated area
  // spans (text::EvidenceFacts); empty = not known (no region reward). Mask-free.
  std::vector<text::Region> evidence_cells;
};

// 1 when the completion is well-formed (tags once each, in order, a parseable verdict), else 0.
double format_reward(const text::ParsedCompletion& c);
// 1 when the verdict is right; a hedge or no verdict is wrong (0).
double accuracy_reward(const text::ParsedCompletion& c, const RewardTarget& t);
// Anomalous samples with a named type: 1 when the verdict is anomalous and the named type
// matches (the same canonical form, or the same family: text::same_defect). Normal samples and
// unnamed defects: 0 (no type to learn).
double defect_type_reward(const text::ParsedCompletion& c, const RewardTarget& t);
// 1 when the reasoning agrees with the answer (text::ParsedCompletion::consistent: its conclusion,
// its finding and the type it names), else 0.
double consistency_reward(const text::ParsedCompletion& c);
// 1 when the reasoning's first sentence names the sample's category (text::names_category), else 0.
// Without it GRPO lets the opening drift ("This is a screw sample." of brushed metal): no reward
// depends on it, and the focal term's decision point, found from the category's templates, is lost.
double object_reward(const text::ParsedCompletion& c, const RewardTarget& t);
// 1 when the region the reasoning states is one of t.evidence_cells, else 0 (and 0 when they are
// not known): the chain says where the evidence is, on normal and anomalous images alike.
double region_reward(const text::ParsedCompletion& c, const RewardTarget& t);

// The names as logged: rewards/<name>/mean.
inline const std::vector<std::string>& reward_names() {
  static const std::vector<std::string> names = {"format", "accuracy", "defect_type", "consistency",
                                                 "object", "region",   "focal"};
  return names;
}

struct RewardBreakdown {
  std::map<std::string, double> parts;  // unweighted, by reward_names()
  double total = 0;                     // sum of weight * part
  bool correct = false;                 // verdict right
};

// focal part: (1 - p_correct)^gamma * class_weight for a right verdict, else 0 (and 0 for an
// unread p_correct < 0), weighed by config.focal (LR-IAD's alpha); with config.focal == 0 the term
// is skipped (plain accuracy reward).
RewardBreakdown total_reward(const text::ParsedCompletion& c, const RewardTarget& t, double p_correct,
                             double class_weight, const RewardConfig& config);

// GRPO's groups: B samples (one image and prompt each), G completions each, N = B*G rows laid out
// group by group ([s0c0, s0c1, ..., s1c0, ...]).
struct GroupSample {
  RewardTarget target;
  double class_weight = 1.0;  // f_c of the sample's class
};

// The policy's belief in each sample's right verdict, read once per group so that every right
// answer of a group gets the same focal bonus whatever its phrasing: the mean, over the group's
// rows whose verdict probabilities were read (both >= 0, sum > 0), of p(right) / (p(normal) +
// p(anomalous)); -1 (unread) when no row was. probs: N rows [p(normal), p(anomalous)], -1 where
// unread (model::decision_probs); anomalous: B labels -> B beliefs.
std::vector<double> group_beliefs(const std::vector<std::array<double, 2>>& probs, const std::vector<bool>& anomalous);

// Every row's rewards: row n judged against samples[n / G] with beliefs[n / G] (total_reward).
// Throws lriad::Error unless completions.size() is a positive multiple of samples.size() and
// beliefs has one entry per sample.
std::vector<RewardBreakdown> group_rewards(const std::vector<text::ParsedCompletion>& completions,
                                           const std::vector<GroupSample>& samples, const std::vector<double>& beliefs,
                                           const RewardConfig& config);

}  // namespace lriad::rl
