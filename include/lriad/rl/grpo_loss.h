// The GRPO policy loss as TRL's GRPOTrainer defines it: PPO-style clipped surrogate on the
// per-token probability ratio, optional k3 KL penalty to a reference policy, and the
// grpo | bnpo | dr_grpo | dapo ways of averaging tokens into one scalar.
// Shapes: N = completions (B prompts x G generations), T = completion tokens (padded).
#pragma once
#include <cstdint>
#include <string>

#include <torch/types.h>

namespace lriad::rl {

enum class LossType {
  grpo,     // mean over each sequence's tokens, then mean over the N sequences
  bnpo,     // mean over the tokens of this call (sum / mask.sum())
  dr_grpo,  // sum over tokens / (N * max_completion_length): no length bias
  dapo,     // sum over tokens / tokens of the whole generation batch (token-level mean)
};

// "grpo" | "bnpo" | "dr_grpo" | "dapo"; anything else throws lriad::Error naming the value.
LossType parse_loss_type(const std::string& name);
const char* to_string(LossType type);

struct GrpoLossParams {
  double epsilon_low = 0.2;   // ratio clipped below at 1 - epsilon_low
  double epsilon_high = 0.2;  // ratio clipped above at 1 + epsilon_high; 0 = epsilon_low
  double beta = 0.0;          // KL weight; 0 = no KL term (ref_logp may be undefined)
  LossType loss_type = LossType::dapo;
  int64_t max_completion_length = 0;  // dr_grpo's constant normaliser; 0 = T
  double num_items_in_batch = 0.0;    // dapo's and bnpo's normaliser: completion tokens of the
                                      // whole generation batch (all micro-batches); 0 = mask.sum()
  int64_t num_rows_in_batch = 0;      // grpo's and dr_grpo's row count: completions of the whole
                                      // batch when the loss is taken over a micro-batch; 0 = N
};

struct GrpoLossResult {
  torch::Tensor loss;              // scalar, differentiable w.r.t. logp
  double kl_mean = 0.0;            // masked token mean of kl_k3; 0 when ref_logp is undefined
  double clip_ratio_low = 0.0;     // share of tokens with ratio < 1-eps_low and A < 0 (clip_ratio/low_mean)
  double clip_ratio_high = 0.0;    // share with ratio > 1+eps_high and A > 0 (clip_ratio/high_mean)
  double clip_ratio_region = 0.0;  // low or high (clip_ratio/region_mean)
};

// k3 estimator of KL(pi || pi_ref) per token (Schulman): exp(d) - d - 1 with d = ref_logp - logp.
// Always >= 0, 0 where the two agree. (N,T), (N,T) -> (N,T).
torch::Tensor kl_k3(const torch::Tensor& logp, const torch::Tensor& ref_logp);

// min(ratio*A, clip(ratio, 1-eps_low, 1+eps_high)*A) per token: ratio (N,T), advantages (N)
// -> (N,T). Where the clipped term wins, no gradient flows through the ratio.
torch::Tensor clipped_surrogate(const torch::Tensor& ratio, const torch::Tensor& advantages, double epsilon_low,
                                double epsilon_high);

// Reduces per-token losses (N,T) over the completion mask (N,T) to a scalar as `params`
// says (see LossType). Masked-out rows (e.g. truncated completions zeroed by the caller)
// contribute 0 but still count as sequences for grpo and dr_grpo, as in TRL.
torch::Tensor aggregate_loss(const torch::Tensor& per_token_loss, const torch::Tensor& mask,
                             const GrpoLossParams& params);

// The loss to minimise. logp (N,T): current policy's log-probabilities of the sampled
// tokens (requires grad); old_logp (N,T): the policy that sampled them (logp.detach() when
// num_iterations == 1); ref_logp (N,T) or undefined: reference policy, needed when beta > 0;
// advantages (N); mask (N,T) bool or float, 1 on completion tokens.
//   ratio = exp(logp - old_logp)
//   loss_t = -min(ratio*A, clip(ratio, 1-eps_low, 1+eps_high)*A) + beta * kl_k3(logp, ref_logp)
//   loss = aggregate_loss(loss_t, mask, params)
// TRL further divides grpo/bnpo/dr_grpo by the gradient-accumulation steps; that is the
// caller's business. Throws lriad::Error on mismatched shapes or beta > 0 without ref_logp.
GrpoLossResult grpo_loss(const torch::Tensor& logp, const torch::Tensor& old_logp, const torch::Tensor& ref_logp,
                         const torch::Tensor& advantages, const torch::Tensor& mask, const GrpoLossParams& params);

}  // namespace lriad::rl
