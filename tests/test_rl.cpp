// rl/: advantages, k3 KL, GRPO loss types, class weights, focal reward — golden numbers by hand.
// N = completions, T = completion tokens.
#include <gtest/gtest.h>

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

namespace {

const auto kF64 = torch::TensorOptions().dtype(torch::kDouble);

torch::Tensor vec(std::vector<double> v) { return torch::tensor(v, kF64); }
torch::Tensor mat(std::vector<double> v, int64_t rows) { return torch::tensor(v, kF64).view({rows, -1}); }

void expect_near(const torch::Tensor& got, const std::vector<double>& want, double tol = 1e-6) {
  ASSERT_EQ(got.numel(), int64_t(want.size()));
  const torch::Tensor flat = got.detach().to(torch::kDouble).reshape({-1});
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(flat[i].item<double>(), want[i], tol) << "at " << i;
}

// Group 0 {1,0,1,0}: mean 0.5, unbiased std sqrt(4*0.25/3) = 0.57735. Group 1 {.5,.5,.5,.5} ties.
torch::Tensor two_groups() { return vec({1, 0, 1, 0, 0.5, 0.5, 0.5, 0.5}); }

}  // namespace

// --- advantages ----------------------------------------------------------------

TEST(Advantages, GroupScaleWithTiedGroup) {
  GroupStats stats;
  const auto a = group_advantages(two_groups(), 4, ScaleRewards::group, 1e-4, &stats);
  // ±0.5 / (0.57735 + 1e-4) = ±0.865875; tied group: 0, not 0/1e-4 noise nor NaN.
  expect_near(a, {0.865875, -0.865875, 0.865875, -0.865875, 0, 0, 0, 0});
  expect_near(stats.mean, {0.5, 0.5});
  expect_near(stats.std, {0.577350, 0.0});
  EXPECT_TRUE(stats.zero_std_mask.equal(torch::tensor({false, true})));
  EXPECT_DOUBLE_EQ(stats.frac_zero_std, 0.5);  // 1 of 2 groups ties
}

TEST(Advantages, BatchScale) {
  // r - group mean = {±0.5 x4, 0 x4}; std of all 8 rewards: mean 0.5, sum of squared
  // deviations 4*0.25 = 1, unbiased sqrt(1/7) = 0.377964 -> ±0.5 / 0.378064 = ±1.322526.
  const auto a = group_advantages(two_groups(), 4, ScaleRewards::batch);
  expect_near(a, {1.322526, -1.322526, 1.322526, -1.322526, 0, 0, 0, 0});
}

TEST(Advantages, NoScale) {
  // Only centred: ±0.5 and the tied group 0.
  GroupStats stats;
  const auto a = group_advantages(two_groups(), 4, ScaleRewards::none, 1e-4, &stats);
  expect_near(a, {0.5, -0.5, 0.5, -0.5, 0, 0, 0, 0});
  EXPECT_DOUBLE_EQ(stats.frac_zero_std, 0.5);
}

TEST(Advantages, TiesInFloat32AreExactlyZero) {
  // 0.7 x3 in float32: the mean may be off by an ulp; /1e-4 must not turn that into signal.
  const auto r = torch::tensor({0.7f, 0.7f, 0.7f, 0.1f, 0.3f, 0.2f});
  GroupStats stats;
  const auto a = group_advantages(r, 3, ScaleRewards::group, 1e-4, &stats);
  EXPECT_EQ(a.scalar_type(), torch::kFloat);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(a[i].item<float>(), 0.0f);
  // {.1,.3,.2}: mean 0.2, unbiased std sqrt((.01+.01+0)/2) = 0.1 -> {-0.1, 0.1, 0}/0.1001.
  expect_near(a.slice(0, 3), {-0.999001, 0.999001, 0.0}, 1e-5);
  EXPECT_DOUBLE_EQ(stats.frac_zero_std, 0.5);
}

TEST(Advantages, SingleGenerationHasNoNaN) {
  // G = 1: every group ties by definition; std 0 instead of torch.std's NaN.
  GroupStats stats;
  const auto a = group_advantages(vec({1, 0, 3}), 1, ScaleRewards::batch, 1e-4, &stats);
  expect_near(a, {0, 0, 0});
  EXPECT_DOUBLE_EQ(stats.frac_zero_std, 1.0);
}

TEST(Advantages, RejectsBadLayoutAndNames) {
  EXPECT_THROW(group_advantages(vec({1, 0, 1}), 2, ScaleRewards::group), Error);  // 3 % 2 != 0
  EXPECT_THROW(group_advantages(mat({1, 0, 1, 0}, 2), 2, ScaleRewards::group), Error);
  EXPECT_EQ(parse_scale_rewards("batch"), ScaleRewards::batch);
  EXPECT_EQ(parse_scale_rewards("none"), ScaleRewards::none);
  EXPECT_THROW(parse_scale_rewards("Group"), Error);
  EXPECT_EQ(parse_loss_type("dr_grpo"), LossType::dr_grpo);
  EXPECT_EQ(std::string(to_string(parse_loss_type("bnpo"))), "bnpo");
  EXPECT_THROW(parse_loss_type("ppo"), Error);
}

// --- KL ------------------------------------------------------------------------

TEST(KlK3, ZeroWhenEqualAndHandValue) {
  const auto lp = mat({-1.0, -2.0, -0.3, -4.0}, 2);
  expect_near(kl_k3(lp, lp), {0, 0, 0, 0}, 1e-12);
  // ref - logp = 0.5: e^0.5 - 0.5 - 1 = 0.148721; ref - logp = -1: e^-1 + 1 - 1 = 0.367879.
  expect_near(kl_k3(vec({-1.0, -1.0}), vec({-0.5, -2.0})), {0.148721, 0.367879});
}

// --- GRPO loss -----------------------------------------------------------------
// Shared example: N = 2, T = 3; row 0 has 3 completion tokens, row 1 has 2 (last is padding).
// A = {+1, -0.5}. Masked token count 5.

namespace {

struct Tiny {
  torch::Tensor logp, mask, adv;
};

Tiny tiny(std::vector<double> logp_values) {
  return {mat(logp_values, 2).requires_grad_(true), mat({1, 1, 1, 1, 1, 0}, 2), vec({1.0, -0.5})};
}

GrpoLossParams params_for(LossType type, int64_t max_len = 0) {
  GrpoLossParams p;
  p.loss_type = type;
  p.max_completion_length = max_len;
  return p;
}

}  // namespace

TEST(GrpoLoss, OnPolicyValueAndGradientPerLossType) {
  // old = logp.detach() -> ratio 1 -> per-token loss -A: row 0 {-1,-1,-1}, row 1 {.5,.5,pad}.
  // Masked sum = -3 + 1 = -2. d loss / d logp = -A * mask / normaliser.
  struct Case {
    LossType type;
    int64_t max_len;
    double loss;
    std::vector<double> grad;
  };
  const std::vector<Case> cases = {
      // grpo: row means -1 and 0.5, mean -0.25; grad row 0 -1/(3*2), row 1 0.5/(2*2).
      {LossType::grpo, 0, -0.25, {-1.0 / 6, -1.0 / 6, -1.0 / 6, 0.125, 0.125, 0}},
      // bnpo: -2 / 5 tokens = -0.4; grad -A/5.
      {LossType::bnpo, 0, -0.4, {-0.2, -0.2, -0.2, 0.1, 0.1, 0}},
      // dapo (num_items_in_batch unset -> this batch's 5 tokens): same as bnpo here.
      {LossType::dapo, 0, -0.4, {-0.2, -0.2, -0.2, 0.1, 0.1, 0}},
      // dr_grpo, max_completion_length 5: -2 / (2*5) = -0.2; grad -A/10.
      {LossType::dr_grpo, 5, -0.2, {-0.1, -0.1, -0.1, 0.05, 0.05, 0}},
      // dr_grpo, max_completion_length unset -> T = 3: -2 / 6; grad -A/6.
      {LossType::dr_grpo, 0, -1.0 / 3, {-1.0 / 6, -1.0 / 6, -1.0 / 6, 0.5 / 6, 0.5 / 6, 0}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(to_string(c.type));
    auto t = tiny({-1.0, -2.0, -0.5, -0.7, -1.2, -3.0});
    const auto r = grpo_loss(t.logp, t.logp.detach(), {}, t.adv, t.mask, params_for(c.type, c.max_len));
    EXPECT_NEAR(r.loss.item<double>(), c.loss, 1e-9);
    r.loss.backward();
    expect_near(t.logp.grad(), c.grad, 1e-9);
    EXPECT_EQ(r.clip_ratio_region, 0.0);
    EXPECT_EQ(r.kl_mean, 0.0);  // no ref_logp
  }
}

TEST(GrpoLoss, DapoUsesTheWholeBatchTokenCount) {
  // Same masked sum -2, but the generation batch had 8 tokens: -2 / 8 = -0.25.
  auto t = tiny({-1.0, -2.0, -0.5, -0.7, -1.2, -3.0});
  auto p = params_for(LossType::dapo);
  p.num_items_in_batch = 8;
  EXPECT_NEAR(grpo_loss(t.logp, t.logp.detach(), {}, t.adv, t.mask, p).loss.item<double>(), -0.25, 1e-9);
}

TEST(GrpoLoss, ClippingValuesGradientsAndRatios) {
  // old_logp = 0, so ratio = exp(logp); eps = 0.2 -> clip range [0.8, 1.2].
  //  row 0 (A = +1): ratio 1.5 -> min(1.5, 1.2) = 1.2 clipped high, no gradient
  //                  ratio 1   -> 1
  //                  ratio 0.5 -> min(0.5, 0.8) = 0.5 unclipped (A > 0 is not clipped below)
  //  row 1 (A = -.5): ratio 0.5 -> min(-0.25, -0.4) = -0.4 clipped low, no gradient
  //                   ratio 1.5 -> min(-0.75, -0.6) = -0.75 unclipped
  //                   ratio 0.25 (padding; would be clipped low) -> not counted
  // per-token loss: {-1.2, -1, -0.5, 0.4, 0.75}; sum -1.55.
  auto t = tiny({std::log(1.5), 0.0, std::log(0.5), std::log(0.5), std::log(1.5), std::log(0.25)});
  const auto old = torch::zeros({2, 3}, kF64);
  const auto r = grpo_loss(t.logp, old, {}, t.adv, t.mask, params_for(LossType::dapo));
  EXPECT_NEAR(r.loss.item<double>(), -1.55 / 5, 1e-9);  // -0.31
  r.loss.backward();
  // Unclipped tokens: d(-ratio*A)/dlogp = -ratio*A / 5: -1/5, -0.5/5, and 0.75/5 for row 1.
  expect_near(t.logp.grad(), {0.0, -0.2, -0.1, 0.0, 0.15, 0.0}, 1e-9);
  EXPECT_NEAR(r.clip_ratio_low, 0.2, 1e-12);     // 1 of 5 tokens
  EXPECT_NEAR(r.clip_ratio_high, 0.2, 1e-12);    // 1 of 5
  EXPECT_NEAR(r.clip_ratio_region, 0.4, 1e-12);  // 2 of 5

  // grpo on the same tokens: row means -2.7/3 = -0.9 and 1.15/2 = 0.575 -> -0.1625.
  auto t2 = tiny({std::log(1.5), 0.0, std::log(0.5), std::log(0.5), std::log(1.5), std::log(0.25)});
  EXPECT_NEAR(grpo_loss(t2.logp, old, {}, t2.adv, t2.mask, params_for(LossType::grpo)).loss.item<double>(),
              -0.1625, 1e-9);
}

TEST(GrpoLoss, AsymmetricClipRange) {
  // epsilon_high 0.6: ratio 1.5 on row 0 is now inside [0.8, 1.6] -> unclipped, loss -1.5;
  // row 1's ratio 0.5 still clipped low (-0.4 -> 0.4). Sum -1.5 - 1 - 0.5 + 0.4 + 0.75 = -1.85.
  auto t = tiny({std::log(1.5), 0.0, std::log(0.5), std::log(0.5), std::log(1.5), std::log(0.25)});
  auto p = params_for(LossType::dapo);
  p.epsilon_high = 0.6;
  const auto r = grpo_loss(t.logp, torch::zeros({2, 3}, kF64), {}, t.adv, t.mask, p);
  EXPECT_NEAR(r.loss.item<double>(), -1.85 / 5, 1e-9);
  EXPECT_EQ(r.clip_ratio_high, 0.0);
  EXPECT_NEAR(r.clip_ratio_low, 0.2, 1e-12);
}

TEST(GrpoLoss, KlPenaltyAddsBetaTimesMeanKl) {
  // ref - logp = 0.5 on every token -> kl 0.148721 everywhere; beta 0.1.
  //  dapo: -0.4 + 0.1 * 0.148721 = -0.385128; grpo: -0.25 + 0.0148721 = -0.235128.
  for (auto [type, want] : {std::pair{LossType::dapo, -0.385128}, std::pair{LossType::grpo, -0.235128}}) {
    SCOPED_TRACE(to_string(type));
    auto t = tiny({-1.0, -2.0, -0.5, -0.7, -1.2, -3.0});
    auto p = params_for(type);
    p.beta = 0.1;
    const auto r = grpo_loss(t.logp, t.logp.detach(), t.logp.detach() + 0.5, t.adv, t.mask, p);
    EXPECT_NEAR(r.loss.item<double>(), want, 1e-6);
    EXPECT_NEAR(r.kl_mean, 0.148721, 1e-6);
  }
  // beta 0 with a ref: KL is logged, not added.
  auto t = tiny({-1.0, -2.0, -0.5, -0.7, -1.2, -3.0});
  const auto r = grpo_loss(t.logp, t.logp.detach(), t.logp.detach() + 0.5, t.adv, t.mask, params_for(LossType::dapo));
  EXPECT_NEAR(r.loss.item<double>(), -0.4, 1e-9);
  EXPECT_NEAR(r.kl_mean, 0.148721, 1e-6);
}

TEST(GrpoLoss, RejectsMismatchedInputs) {
  auto t = tiny({-1.0, -2.0, -0.5, -0.7, -1.2, -3.0});
  auto p = params_for(LossType::grpo);
  EXPECT_THROW(grpo_loss(t.logp, t.logp.detach(), {}, vec({1, 2, 3}), t.mask, p), Error);
  EXPECT_THROW(grpo_loss(t.logp, t.logp.detach().slice(1, 0, 2), {}, t.adv, t.mask, p), Error);
  p.beta = 0.04;
  EXPECT_THROW(grpo_loss(t.logp, t.logp.detach(), {}, t.adv, t.mask, p), Error);  // no ref_logp
}

// --- class weights -------------------------------------------------------------

TEST(ClassWeights, StaticInverseFrequency) {
  const std::map<std::string, int64_t> counts = {{"good", 80}, {"crack", 15}, {"hole", 5}};
  // power 1: 1/n = {1/80, 1/15, 1/5} = {3, 16, 48}/240, mean 67/720 -> w = 3*{3,16,48}/67
  //          = {9/67, 48/67, 144/67} = {0.134328, 0.716418, 2.149254}, mean 1.
  auto w = static_class_weights(counts, 1.0);
  EXPECT_NEAR(w["good"], 9.0 / 67, 1e-12);
  EXPECT_NEAR(w["crack"], 48.0 / 67, 1e-12);
  EXPECT_NEAR(w["hole"], 144.0 / 67, 1e-12);
  // power 0.5: 1/sqrt(n) = {0.111803, 0.258199, 0.447214}, mean 0.272405
  //            -> {0.410430, 0.947848, 1.641721}.
  w = static_class_weights(counts, 0.5);
  EXPECT_NEAR(w["good"], 0.410430, 1e-6);
  EXPECT_NEAR(w["crack"], 0.947848, 1e-6);
  EXPECT_NEAR(w["hole"], 1.641721, 1e-6);
  EXPECT_NEAR((w["good"] + w["crack"] + w["hole"]) / 3, 1.0, 1e-12);
  // power 0: all ones.
  for (const auto& [cls, v] : static_class_weights(counts, 0.0)) EXPECT_DOUBLE_EQ(v, 1.0) << cls;
  EXPECT_THROW(static_class_weights({{"good", 10}, {"scratch", 0}}), Error);
}

TEST(ClassWeights, DynamicMovesTowardsWrongClassesAndStaysNormalised) {
  DynamicClassWeights dyn({"good", "crack", "hole"}, /*momentum=*/0.5, /*power=*/1.0, /*floor=*/0.1);
  for (const auto& [cls, v] : dyn.weights()) EXPECT_DOUBLE_EQ(v, 1.0) << cls;  // all start at acc 0.5
  for (int i = 0; i < 4; ++i) dyn.observe("good", true);  // batch accuracy 1
  dyn.observe("crack", false);                            // batch accuracy 0
  dyn.observe("crack", false);
  dyn.observe("hole", true);  // batch accuracy 0.5
  dyn.observe("hole", false);
  auto w = dyn.recompute();
  // EMA (m = 0.5): good .5*.5+.5*1 = .75, crack .25, hole .5.
  // r = 1 - acc + 0.01 = {.26, .76, .51}, mean .51 -> r/mean = {.509804, 1.490196, 1}
  // w = 0.1 + 0.9 * r/mean = {0.558824, 1.441176, 1.0}.
  EXPECT_NEAR(w["good"], 0.558824, 1e-6);
  EXPECT_NEAR(w["crack"], 1.441176, 1e-6);
  EXPECT_NEAR(w["hole"], 1.0, 1e-9);
  EXPECT_NEAR((w["good"] + w["crack"] + w["hole"]) / 3, 1.0, 1e-12);
  // Keep getting crack wrong and good right: crack rises, good sinks but never below the floor.
  for (int step = 0; step < 30; ++step) {
    dyn.observe("crack", false);
    dyn.observe("good", true);
    const auto next = dyn.recompute();
    EXPECT_GE(next.at("crack"), w.at("crack"));
    EXPECT_GE(next.at("good"), 0.1);
    EXPECT_NEAR((next.at("good") + next.at("crack") + next.at("hole")) / 3, 1.0, 1e-12);
    w = next;
  }
  // A class seen for the first time joins at accuracy 0.5.
  dyn.observe("scratch", true);
  EXPECT_DOUBLE_EQ(dyn.weights().at("scratch"), 1.0);
  EXPECT_EQ(dyn.recompute().size(), 4u);
}

TEST(ClassWeights, DynamicJsonRoundTripIsExact) {
  DynamicClassWeights a({"good", "crack", "hole"}, 0.9, 0.7, 0.05);
  a.observe("good", true);
  a.observe("crack", false);
  a.recompute();
  a.observe("hole", true);  // pending counts must survive too
  // Through text, as a checkpoint would store it; start from different parameters.
  DynamicClassWeights b({"other"}, 0.1, 2.0, 0.5);
  b.from_json(nlohmann::json::parse(a.to_json().dump()));
  EXPECT_EQ(a.to_json(), b.to_json());
  EXPECT_EQ(a.weights(), b.weights());  // bit-exact doubles
  EXPECT_EQ(a.accuracies(), b.accuracies());
  // And both evolve identically afterwards.
  a.observe("crack", true);
  b.observe("crack", true);
  EXPECT_EQ(a.recompute(), b.recompute());
  nlohmann::json bad = a.to_json();
  bad["version"] = 99;
  EXPECT_THROW(b.from_json(bad), Error);
  EXPECT_THROW(b.from_json(nlohmann::json::object()), Error);
  EXPECT_EQ(a.to_json(), b.to_json());  // a failed load leaves the state alone
}

// --- focal reward --------------------------------------------------------------

TEST(Focal, HandValues) {
  EXPECT_NEAR(focal_reward(true, 0.2, 1.0, 2.0, 1.0), 0.64, 1e-12);    // (1-.2)^2 = .64
  EXPECT_NEAR(focal_reward(true, 0.9, 1.0, 2.0, 1.0), 0.01, 1e-12);    // (.1)^2
  EXPECT_NEAR(focal_reward(true, 0.75, 2.0, 0.5, 1.5), 1.5, 1e-12);    // 2 * sqrt(.25) * 1.5
  EXPECT_NEAR(focal_reward(true, 0.3, 0.5, 0.0, 2.0), 1.0, 1e-12);     // gamma 0: alpha * f_c
  EXPECT_NEAR(focal_reward(true, 1.3, 1.0, 2.0, 1.0), 0.0, 1e-12);     // p clamped to 1
  EXPECT_NEAR(focal_reward(true, -0.1, 1.0, 2.0, 3.0), 3.0, 1e-12);    // p clamped to 0
  EXPECT_EQ(focal_reward(false, 0.2, 1.0, 2.0, 5.0), 0.0);             // wrong: nothing
  EXPECT_THROW(focal_reward(true, std::nan(""), 1.0, 2.0, 1.0), Error);
}

TEST(Focal, TensorMatchesScalar) {
  const auto correct = torch::tensor({true, true, false, true});
  const auto p = vec({0.2, 0.9, 0.2, 1.3});
  const auto w = vec({1.0, 2.0, 5.0, 1.0});
  // {.64*1, .01*2, 0 (wrong), 0 (p -> 1)}
  expect_near(focal_rewards(correct, p, 1.0, 2.0, w), {0.64, 0.02, 0.0, 0.0}, 1e-12);
  EXPECT_THROW(focal_rewards(correct, vec({0.1, 0.2}), 1.0, 2.0, w), Error);
}

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
                                "<answer>normal</answer>"), nut), 1.0);
  EXPECT_EQ(object_reward(parse("<think>I see a HEX-NUT sample. Clean, so it is normal.</think><answer>normal</answer>"),
                          nut), 1.0);
  EXPECT_EQ(object_reward(parse("<think>This is a screw sample. It looks like a hex nut, so it is normal.</think>"
                                "<answer>normal</answer>"), nut), 0.0);  // named later, not in the opening
  EXPECT_EQ(object_reward(parse("<think>This is a hex nutcracker, so it is normal.</think><answer>normal</answer>"), nut),
            0.0);  // whole words
  EXPECT_EQ(object_reward(a, nut), 0.0);                      // "The screw looks even" of a hex nut
  EXPECT_EQ(object_reward(a, RewardTarget{false, "good", "screw"}), 1.0);
  EXPECT_EQ(object_reward(a, normal), 0.0);                   // no category: no reward
  // Reasoning says normal, answer says anomalous: inconsistent.
  EXPECT_EQ(consistency_reward(parse("<think>clean, so it is normal.</think><answer>anomalous</answer>")), 0.0);
}

TEST(Rewards, TotalWeighsThePartsAndTheFocalTerm) {
  RewardConfig w;  // format .5, accuracy 1, type .5, consistency .25, focal 1, alpha 1, gamma 2
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
