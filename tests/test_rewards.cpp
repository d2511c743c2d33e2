// rl/rewards.h: the rewards of one completion and of GRPO's groups (one belief per group, the
// sample weights, the region reward) — golden numbers by hand. N = completions.
#include <gtest/gtest.h>

#include <array>
#include <cmath>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "lriad/io/error.h"
#include "lriad/rl/advantages.h"
#include "lriad/rl/class_weights.h"
#include "lriad/rl/focal.h"
#include "lriad/rl/grpo_loss.h"
#include "lriad/rl/rewards.h"
#include "lriad/text/answer.h"

using namespace lriad;
using namespace lriad::rl;

// ---- rewards of one completion (rl/rewards.h) ----

namespace {
text::ParsedCompletion parse(const std::string& s) { return text::parse_completion(s, {"scratch", "missing part"}); }
const std::string kGoodNormal =
    "<think>The screw looks even; nothing is out of place, so it is normal.</think><answer>normal</answer>";
const std::string kScratch =
    "<think>A scratch runs across the top, so it is anomalous.</think><answer>anomalous: scratch</answer>";
}  // namespace

TEST(Rewards, FormatAccuracyTypeConsistencyGolden) {
  const RewardTarget normal{false, "good"}, scratch{true, "scratch"}, unnamed{true, "anomaly"};
  const auto a = parse(kGoodNormal), b = parse(kScratch);
  EXPECT_EQ(format_reward(a), 1.0);
  EXPECT_EQ(accuracy_reward(a, normal), 1.0);
  EXPECT_EQ(accuracy_reward(a, scratch), 0.0);
  EXPECT_EQ(defect_type_reward(a, normal), 0.0);
  EXPECT_EQ(consistency_reward(a), 1.0);
  EXPECT_EQ(accuracy_reward(b, scratch), 1.0);
  EXPECT_EQ(defect_type_reward(b, scratch), 1.0);
  EXPECT_EQ(defect_type_reward(b, RewardTarget{true, "missing_part"}), 0.0);
  EXPECT_EQ(defect_type_reward(b, unnamed), 0.0);  // nothing to name
  // A hedge is wrong; broken tags lose the format reward but keep a readable verdict.
  const auto hedge = parse("<think>hm</think><answer>normal or anomalous</answer>");
  EXPECT_EQ(accuracy_reward(hedge, normal), 0.0);
  EXPECT_EQ(accuracy_reward(hedge, scratch), 0.0);
  const auto no_think = parse("<answer>anomalous: scratch</answer>");
  EXPECT_EQ(format_reward(no_think), 0.0);
  EXPECT_EQ(accuracy_reward(no_think, scratch), 1.0);
  // The object reward: the first sentence names the sample's category (whole words).
  const RewardTarget nut{false, "good", "hex_nut"};
  EXPECT_EQ(object_reward(parse("<think>This is a hex nut sample. I find no defect, so it is normal.</think>"
                                "<answer>normal</answer>"),
                          nut),
            1.0);
  EXPECT_EQ(object_reward(
                parse("<think>I see a HEX-NUT sample. Clean, so it is normal.</think><answer>normal</answer>"), nut),
            1.0);
  EXPECT_EQ(object_reward(parse("<think>This is a screw sample. It looks like a hex nut, so it is normal.</think>"
                                "<answer>normal</answer>"),
                          nut),
            0.0);  // named later, not in the opening
  EXPECT_EQ(
      object_reward(parse("<think>This is a hex nutcracker, so it is normal.</think><answer>normal</answer>"), nut),
      0.0);                               // whole words
  EXPECT_EQ(object_reward(a, nut), 0.0);  // "The screw looks even" of a hex nut
  EXPECT_EQ(object_reward(a, RewardTarget{false, "good", "screw"}), 1.0);
  EXPECT_EQ(object_reward(a, normal), 0.0);  // no category: no reward
  // Reasoning says normal, answer says anomalous: inconsistent.
  EXPECT_EQ(consistency_reward(parse("<think>clean, so it is normal.</think><answer>anomalous</answer>")), 0.0);
}

TEST(Rewards, TotalWeighsThePartsAndTheFocalTerm) {
  RewardConfig w;  // format .5, accuracy 1, type .5, consistency .25, focal (alpha) 1, gamma 2
  const auto b = parse(kScratch);
  const RewardTarget scratch{true, "scratch"};
  // p = 0.6 of the right verdict, class weight 2: focal = 1 * 0.4^2 * 2 = 0.32.
  auto r = total_reward(b, scratch, 0.6, 2.0, w);
  EXPECT_TRUE(r.correct);
  EXPECT_NEAR(r.parts.at("focal"), 0.32, 1e-12);
  EXPECT_NEAR(r.total, 0.5 + 1 + 0.5 + 0.25 + 0.32, 1e-12);
  // Naming the category adds its weight (.25): "A scratch runs across the top" names no screw.
  EXPECT_NEAR(total_reward(parse(kGoodNormal), RewardTarget{false, "good", "screw"}, 0.5, 1.0, w).total,
              0.5 + 1 + 0.25 + 0.25 + 0.25, 1e-12);
  EXPECT_EQ(r.parts.at("object"), 0.0);
  // Wrong verdict: no accuracy, no type, no focal.
  r = total_reward(b, RewardTarget{false, "good"}, 0.9, 2.0, w);
  EXPECT_FALSE(r.correct);
  EXPECT_NEAR(r.total, 0.5 + 0.25, 1e-12);
  // focal weight 0 = the plain accuracy reward.
  w.focal = 0;
  r = total_reward(b, scratch, 0.6, 2.0, w);
  EXPECT_EQ(r.parts.at("focal"), 0.0);
  EXPECT_NEAR(r.total, 2.25, 1e-12);
}

// ---- GRPO's groups: one belief per group, the wiring grpo_step uses ----

TEST(Rewards, GroupBeliefIsReadOncePerGroupWhateverThePhrasing) {
  // Group 0 (anomalous): rows read [p(normal), p(anomalous)] at different decision points; one row
  // unread. Normalised p(anomalous): .6/.8 = .75, .2/.4 = .5 -> mean .625. Group 1 (normal): all unread.
  const std::vector<std::array<double, 2>> probs = {{0.2, 0.6}, {0.2, 0.2}, {-1, -1}, {-1, -1}, {-1, -1}, {-1, -1}};
  const auto b = group_beliefs(probs, {true, false});
  ASSERT_EQ(b.size(), 2u);
  EXPECT_NEAR(b[0], 0.625, 1e-12);
  EXPECT_EQ(b[1], -1.0);
  // The label picks the verdict: the same rows for a normal sample read p(normal) .25 and .5.
  EXPECT_NEAR(group_beliefs({{0.2, 0.6}, {0.2, 0.2}, {-1, -1}}, {false})[0], 0.375, 1e-12);
  EXPECT_THROW(group_beliefs(probs, {true, false, true, false}), Error);  // 6 rows, 4 samples
}

TEST(Rewards, GroupRewardsPutEachSamplesWeightOnItsOwnRows) {
  RewardConfig w;
  w.focal_gamma = 1;
  const auto right_anomalous = parse(kScratch), right_normal = parse(kGoodNormal);
  // Sample 0: scratch, weight 3, belief .6; sample 1: good, weight .5, belief .2; sample 2: unread belief.
  const std::vector<GroupSample> samples = {{{true, "scratch"}, 3.0}, {{false, "good"}, 0.5}, {{true, "scratch"}, 3.0}};
  const std::vector<text::ParsedCompletion> rows = {right_anomalous, right_normal,      // group 0: right, wrong
                                                    right_normal,    right_normal,      // group 1: right, right
                                                    right_anomalous, right_anomalous};  // group 2: right, right
  const auto r = group_rewards(rows, samples, {0.6, 0.2, -1.0}, w);
  ASSERT_EQ(r.size(), 6u);
  EXPECT_NEAR(r[0].parts.at("focal"), 0.4 * 3.0, 1e-12);             // (1 - .6) * 3
  EXPECT_EQ(r[1].parts.at("focal"), 0.0);                            // wrong verdict
  EXPECT_NEAR(r[2].parts.at("focal"), 0.8 * 0.5, 1e-12);             // (1 - .2) * .5: the normal sample's own weight
  EXPECT_DOUBLE_EQ(r[2].parts.at("focal"), r[3].parts.at("focal"));  // one bonus per group
  EXPECT_EQ(r[4].parts.at("focal"), 0.0);                            // unread belief: no bonus
  EXPECT_EQ(r[5].parts.at("focal"), 0.0);
  EXPECT_TRUE(r[4].correct);
  EXPECT_THROW(group_rewards(rows, samples, {0.6, 0.2}, w), Error);
  EXPECT_THROW(group_rewards({right_normal, right_normal}, samples, {0.6, 0.2, 0.1}, w), Error);
}

// Focal + batch scaling against the plain accuracy reward on the same completions: a rare class's
// groups (weight 4) and a common class's (weight 0.5), each half right. With the plain reward both
// kinds of group get the same advantages; with the focal term the rare class's right answers get
// larger advantages than the common class's.
TEST(Rewards, FocalWithBatchScalingFavoursRareClassGroups) {
  RewardConfig focal, plain;
  plain.focal = 0;
  const auto right = parse(kScratch), wrong = parse(kGoodNormal);
  const std::vector<GroupSample> samples = {{{true, "hole"}, 4.0},
                                            {{true, "crack"}, 0.5}};  // neither named: no type reward
  const std::vector<text::ParsedCompletion> rows = {right, wrong, right, wrong, right, wrong, right, wrong};
  const std::vector<double> beliefs = {0.5, 0.5};  // the same belief: only the class weight differs
  auto advantages_of = [&](const RewardConfig& c) {
    std::vector<double> r;
    for (const auto& b : group_rewards(rows, samples, beliefs, c)) r.push_back(b.total);
    return group_advantages(torch::tensor(r, torch::kDouble), 4, ScaleRewards::batch);  // (8)
  };
  const auto a_focal = advantages_of(focal), a_plain = advantages_of(plain);
  EXPECT_NEAR(a_plain[0].item<double>(), a_plain[4].item<double>(), 1e-12);  // plain: rare = common
  EXPECT_GT(a_focal[0].item<double>(), a_focal[4].item<double>() + 0.1);     // focal: the rare group's right answer
  EXPECT_GT(a_focal[0].item<double>() - a_focal[1].item<double>(),
            a_focal[4].item<double>() - a_focal[5].item<double>());
}

// The region reward: the stated region is where the evidence peaks (mask-free), on normal and
// anomalous images alike; it counts in the total with reward.region.
TEST(Rewards, RegionRewardChecksTheStatedRegionAgainstTheEvidence) {
  const auto c = parse(
      "<think>This is a wood sample. The largest deviation is at the upper left, 2.0 times the normal level. "
      "There is a small, compact mark, like a hole, so it is anomalous.</think><answer>anomalous: hole</answer>");
  ASSERT_EQ(c.region, text::Region::UpperLeft);
  RewardTarget t{true, "hole", "wood", {text::Region::Top, text::Region::UpperLeft}};  // the peak cell and a second
  EXPECT_EQ(region_reward(c, t), 1.0);
  t.evidence_cells = {text::Region::Top};
  EXPECT_EQ(region_reward(c, t), 0.0);
  t.evidence_cells.clear();  // not known: no reward
  EXPECT_EQ(region_reward(c, t), 0.0);
  EXPECT_EQ(region_reward(parse(kGoodNormal), RewardTarget{false, "good", "screw", {text::Region::Center}}),
            0.0);  // states none
  RewardConfig w;
  t.evidence_cells = {text::Region::UpperLeft};
  const auto with = total_reward(c, t, 0.5, 1.0, w);
  t.evidence_cells = {text::Region::Bottom};
  const auto without = total_reward(c, t, 0.5, 1.0, w);
  EXPECT_NEAR(with.total - without.total, w.region, 1e-12);
  EXPECT_EQ(with.parts.at("region"), 1.0);
}
