// One GRPO update on sampled completions: rewards -> group advantages -> num_iterations
// clipped-surrogate steps (with the k3 KL to the reference policy, ref_policy, when beta > 0). The trainer supplies
// the rewards through a callback that sees the first forward pass's logits (for the focal
// term's verdict probability); tests supply their own.
// Shapes: B prompts, G completions each, N = B*G rows, C completion tokens, V vocabulary.
#pragma once
#include <functional>
#include <vector>

#include <torch/torch.h>

#include "lriad/io/config.h"
#include "lriad/model/policy.h"
#include "lriad/rl/advantages.h"
#include "lriad/train/distributed.h"

namespace lriad::train {

struct GrpoBatch {
  torch::Tensor images;      // (N,3,S,S): each prompt's image repeated G times
  model::TokenRows prompts;  // N rows
  torch::Tensor tokens;      // (N,C) int64 sampled completions
  torch::Tensor mask;        // (N,C) bool real tokens (eos included)
  torch::Tensor truncated;   // (N) bool: no eos
  int64_t group = 1;         // G
};

// Where an update's time went, seconds (summed over num_iterations; the device is synchronised
// at each boundary, so on CUDA the figures are honest but a little slower than unmeasured).
struct GrpoTimes {
  double forward = 0;     // policy forward (logits, log-probs)
  double reward = 0;      // reward callback, advantages, entropy
  double ref_policy = 0;  // the KL reference policy's forward pass (beta > 0)
  double backward = 0;    // loss, backward, gradient clipping
  double optimizer = 0;   // optimizer step
};

struct GrpoUpdate {
  torch::Tensor rewards;     // (N) float; with several ranks, every rank's rows (rank order)
  torch::Tensor advantages;  // (N) float
  rl::GroupStats stats;
  double loss = 0, kl = 0, clip_region = 0, clip_low = 0, clip_high = 0, entropy = 0, grad_norm = 0;
  int updates = 0;  // optimizer steps taken (0 when every row was masked out)
  bool finite = true;
  std::string nonfinite;  // "loss" or "gradient" when the update was skipped
  GrpoTimes times;
};

// Groups whose reward std is below this count as tied (frac_reward_zero_std) and get zero
// advantages: differences that small come from the focal term's probability, not from a
// better completion.
inline constexpr double kTieStd = 1e-3;

// logits (N,C,V) of the first forward pass, detached -> rewards (N).
using RewardFn = std::function<torch::Tensor(const torch::Tensor& logits)>;

// `ref_policy` may be null when g.beta == 0. The optimizer's learning rate is left as set.
// With `dist` (several ranks, each with its share of the batch's groups): the rewards are gathered so
// that advantages and group statistics are the whole batch's, the loss is normalised by the whole
// batch's tokens and rows, gradients are summed over the ranks before clipping, and the logged
// figures (loss, kl, clip ratios, entropy) are the whole batch's; every rank gets the same update.
// With g.micro_batch below N the forward and backward passes run micro_batch rows at a time, the
// gradients accumulated: the same update up to float rounding, with the activations of
// micro_batch rows instead of N, at the cost of one more forward pass (without gradient) per step.
GrpoUpdate grpo_update(model::Policy& policy, model::Policy* ref_policy, torch::optim::Optimizer& optimizer,
                       const GrpoBatch& batch, const GrpoConfig& g, int max_new_tokens, bool bf16,
                       const RewardFn& reward_fn, Distributed* dist = nullptr);

// A micro-batch: rows start .. start+rows-1 of the batch.
struct MicroBatch {
  int64_t start = 0, rows = 0;
};

// The batch's rows in micro-batches of at most micro_batch rows (0 = one micro-batch of all), in order.
std::vector<MicroBatch> micro_batches(int64_t rows, int64_t micro_batch);

// Pre-clip global gradient norm; scales the gradients down to max_norm when above (0 = off).
double clip_gradients(torch::nn::Module& module, double max_norm);

}  // namespace lriad::train
