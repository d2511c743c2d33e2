// rl/: advantages, k3 KL, GRPO loss types, class weights, focal reward — golden numbers by hand.
// N = completions, T = completion tokens.
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
  EXPECT_NEAR(grpo_loss(t2.logp, old, {}, t2.adv, t2.mask, params_for(LossType::grpo)).loss.item<double>(), -0.1625,
              1e-9);
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

TEST(ClassWeights, RealFrequenciesInTwoLevels) {
  // Share 0.2 defective, power 1: u_g = 1/0.8 = 1.25, u_a = 1/0.2 = 5 -> good 2*1.25/6.25 = 0.4,
  // anomalous 2*5/6.25 = 1.6. Defect shares {crack 3, hole 1} -> {0.75, 0.25}: sum s (1/s) = 2,
  // crack 1.6 * (4/3) / 2 = 1.066667, hole 1.6 * 4 / 2 = 3.2.
  auto w = class_weights(0.2, {{"crack", 3}, {"hole", 1}}, 1.0);
  ASSERT_EQ(w.size(), 3u);
  EXPECT_NEAR(w["good"], 0.4, 1e-12);
  EXPECT_NEAR(w["crack"], 1.6 * (4.0 / 3) / 2, 1e-12);
  EXPECT_NEAR(w["hole"], 3.2, 1e-12);
  EXPECT_NEAR(0.75 * w["crack"] + 0.25 * w["hole"], 1.6, 1e-12);  // the share-weighted mean is the anomalous weight
  // The rare defect weighs most, and "good" is not crushed by a mix of many defect classes.
  std::map<std::string, double> nine;
  for (const char* c : {"a", "b", "c", "d", "e", "f", "g", "h"}) nine[c] = 1;
  w = class_weights(0.235, nine, 1.0);
  EXPECT_NEAR(w["good"], 2 * (1 / 0.765) / (1 / 0.765 + 1 / 0.235), 1e-12);  // 0.470
  EXPECT_GT(w["good"], 0.4);
  EXPECT_NEAR(w["a"], 2 - w["good"], 1e-12);  // equal shares: each defect class gets the anomalous weight
  // power 0.5 softens: share 0.2 -> u_g = sqrt(1.25), u_a = sqrt(5): good 2*1.118034/3.354102 = 0.666667.
  w = class_weights(0.2, {{"crack", 3}, {"hole", 1}}, 0.5);
  EXPECT_NEAR(w["good"], 2.0 / 3, 1e-6);
  EXPECT_GT(w["hole"], w["crack"]);
  for (const auto& [cls, v] : class_weights(0.2, {{"crack", 3}, {"hole", 1}}, 0.0)) EXPECT_DOUBLE_EQ(v, 1.0) << cls;
  EXPECT_THROW(class_weights(0.0, {{"crack", 1}}), Error);
  EXPECT_THROW(class_weights(1.0, {{"crack", 1}}), Error);
  EXPECT_THROW(class_weights(0.2, {{"crack", 0}}), Error);
  EXPECT_THROW(class_weights(0.2, {}), Error);
}

TEST(ClassWeights, DynamicFollowsRarityAmongTheSamplesSeen) {
  // Prior: equal shares over crack and hole, 4 pseudo-samples (2 each).
  DynamicClassWeights dyn(0.2, {{"crack", 1}, {"hole", 1}}, /*momentum=*/0.5, /*power=*/1.0, /*difficulty=*/0.0,
                          /*prior_samples=*/4);
  auto w = dyn.weights();
  EXPECT_NEAR(w["good"], 0.4, 1e-12);
  EXPECT_NEAR(w["crack"], 1.6, 1e-12);
  EXPECT_NEAR(w["hole"], 1.6, 1e-12);
  // 6 cracks and no hole seen (and normals, which do not count): shares (2+6)/10 = 0.8, 2/10 = 0.2
  // -> sum s (1/s) = 2: crack 1.6 * 1.25 / 2 = 1.0, hole 1.6 * 5 / 2 = 4.0.
  for (int i = 0; i < 6; ++i) dyn.observe_sample("crack");
  for (int i = 0; i < 9; ++i) dyn.observe_sample("good");
  dyn.observe("crack", false);  // accuracy plays no part without difficulty
  w = dyn.recompute();
  EXPECT_NEAR(dyn.shares().at("crack"), 0.8, 1e-12);
  EXPECT_NEAR(w["crack"], 1.0, 1e-12);
  EXPECT_NEAR(w["hole"], 4.0, 1e-12);
  EXPECT_NEAR(w["good"], 0.4, 1e-12);  // the line's share, not the draws'
  for (const auto& [cls, d] : dyn.difficulties()) EXPECT_DOUBLE_EQ(d, 1.0) << cls;
  // A class first seen later joins the shares.
  dyn.observe_sample("stain");
  w = dyn.recompute();
  EXPECT_EQ(w.size(), 4u);
  EXPECT_GT(w["stain"], w["hole"]);  // 1 sample against 2 pseudo-samples
}

TEST(ClassWeights, DynamicDifficultyIsANamedFactor) {
  DynamicClassWeights dyn(0.2, {{"crack", 1}, {"hole", 1}}, 0.5, 1.0, /*difficulty=*/1.0, 4);
  dyn.observe("good", true);
  dyn.observe("crack", false);
  dyn.observe("hole", true);
  dyn.observe("hole", false);
  const auto w = dyn.recompute();
  // EMA (m = .5) from .5: good .75, crack .25, hole .5 -> d = 1 - acc + .01 = {.26, .76, .51}, mean .51.
  const auto d = dyn.difficulties();
  EXPECT_NEAR(d.at("good"), 0.26 / 0.51, 1e-12);
  EXPECT_NEAR(d.at("crack"), 0.76 / 0.51, 1e-12);
  EXPECT_NEAR(w.at("good"), 0.4 * 0.26 / 0.51, 1e-12);
  EXPECT_NEAR(w.at("crack"), 1.6 * 0.76 / 0.51, 1e-12);
  EXPECT_NEAR(w.at("hole"), 1.6 * 1.0, 1e-12);
}

TEST(ClassWeights, DynamicJsonRoundTripIsExact) {
  DynamicClassWeights a(0.11, {{"crack", 2}, {"hole", 1}}, 0.9, 0.7, 0.5, 16);
  a.observe_sample("crack");
  a.observe("good", true);
  a.observe("crack", false);
  a.recompute();
  a.observe("hole", true);  // pending counts must survive too
  a.observe_sample("hole");
  // Through text, as a checkpoint would store it; start from different parameters.
  DynamicClassWeights b(0.5, {{"other", 1}}, 0.1, 2.0, 0.0, 1);
  b.from_json(nlohmann::json::parse(a.to_json().dump()));
  EXPECT_EQ(a.to_json(), b.to_json());
  EXPECT_EQ(a.weights(), b.weights());  // bit-exact doubles
  EXPECT_EQ(a.shares(), b.shares());
  // And both evolve identically afterwards.
  a.observe("crack", true);
  b.observe("crack", true);
  EXPECT_EQ(a.recompute(), b.recompute());
  nlohmann::json bad = a.to_json();
  bad["version"] = 1;  // an older run's accuracy-driven weights
  EXPECT_THROW(b.from_json(bad), Error);
  EXPECT_THROW(b.from_json(nlohmann::json::object()), Error);
  EXPECT_EQ(a.to_json(), b.to_json());  // a failed load leaves the state alone
}

// --- focal reward --------------------------------------------------------------

TEST(Focal, HandValues) {
  EXPECT_NEAR(focal_reward(true, 0.2, 1.0, 2.0, 1.0), 0.64, 1e-12);  // (1-.2)^2 = .64
  EXPECT_NEAR(focal_reward(true, 0.9, 1.0, 2.0, 1.0), 0.01, 1e-12);  // (.1)^2
  EXPECT_NEAR(focal_reward(true, 0.75, 2.0, 0.5, 1.5), 1.5, 1e-12);  // 2 * sqrt(.25) * 1.5
  EXPECT_NEAR(focal_reward(true, 0.3, 0.5, 0.0, 2.0), 1.0, 1e-12);   // gamma 0: alpha * f_c
  EXPECT_NEAR(focal_reward(true, 1.3, 1.0, 2.0, 1.0), 0.0, 1e-12);   // p clamped to 1
  EXPECT_NEAR(focal_reward(true, 0.0, 1.0, 2.0, 3.0), 3.0, 1e-12);   // p 0: the largest bonus, earned
  EXPECT_EQ(focal_reward(true, -1.0, 1.0, 2.0, 3.0), 0.0);           // p unread: no bonus at all
  EXPECT_EQ(focal_reward(true, -0.1, 1.0, 2.0, 3.0), 0.0);
  EXPECT_EQ(focal_reward(false, 0.2, 1.0, 2.0, 5.0), 0.0);  // wrong: nothing
  EXPECT_THROW(focal_reward(true, std::nan(""), 1.0, 2.0, 1.0), Error);
}

TEST(Focal, TensorMatchesScalar) {
  const auto correct = torch::tensor({true, true, false, true, true});
  const auto p = vec({0.2, 0.9, 0.2, 1.3, -1.0});
  const auto w = vec({1.0, 2.0, 5.0, 1.0, 4.0});
  // {.64*1, .01*2, 0 (wrong), 0 (p -> 1), 0 (p unread)}
  expect_near(focal_rewards(correct, p, 1.0, 2.0, w), {0.64, 0.02, 0.0, 0.0, 0.0}, 1e-12);
  for (int64_t n = 0; n < 5; ++n)
    EXPECT_DOUBLE_EQ(focal_rewards(correct, p, 1.0, 2.0, w)[n].item<double>(),
                     focal_reward(correct[n].item<bool>(), p[n].item<double>(), 1.0, 2.0, w[n].item<double>()));
  EXPECT_THROW(focal_rewards(correct, vec({0.1, 0.2}), 1.0, 2.0, w), Error);
}
