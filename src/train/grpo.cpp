#include "lriad/train/grpo.h"

#include <chrono>
#include <cmath>

#include <torch/cuda.h>

#include "lriad/model/precision.h"
#include "lriad/rl/grpo_loss.h"

namespace lriad::train {

namespace {
// log p of each completion token under softmax(logits / temperature). logits (N,C,V) -> (N,C).
torch::Tensor token_logps(const torch::Tensor& logits, const torch::Tensor& tokens, double temperature) {
  return torch::log_softmax(logits / temperature, -1).gather(-1, tokens.unsqueeze(-1)).squeeze(-1);
}

// Seconds since the last call, with the device's queued work finished first.
class Lap {
 public:
  explicit Lap(const torch::Device& device) : cuda_(device.is_cuda()), last_(std::chrono::steady_clock::now()) {}
  double operator()() {
    if (cuda_) torch::cuda::synchronize();
    const auto now = std::chrono::steady_clock::now();
    const double s = std::chrono::duration<double>(now - last_).count();
    last_ = now;
    return s;
  }

 private:
  bool cuda_;
  std::chrono::steady_clock::time_point last_;
};
}  // namespace

double clip_gradients(torch::nn::Module& module, double max_norm) {
  double total = 0;
  for (const auto& p : module.parameters())
    if (p.grad().defined()) total += p.grad().to(torch::kDouble).pow(2).sum().item<double>();
  total = std::sqrt(total);
  if (max_norm > 0 && std::isfinite(total) && total > max_norm) {
    const double scale = max_norm / (total + 1e-6);
    for (auto& p : module.parameters())
      if (p.grad().defined()) p.grad().mul_(scale);
  }
  return total;
}

GrpoUpdate grpo_update(model::Policy& policy, model::Policy* reference, torch::optim::Optimizer& optimizer,
                       const GrpoBatch& b, const GrpoConfig& g, int max_new_tokens, bool bf16,
                       const RewardFn& reward_fn) {
  GrpoUpdate u;
  const auto device = policy->device();
  auto loss_mask = b.mask.clone();  // (N,C)
  if (g.mask_truncated_completions) loss_mask = loss_mask & b.truncated.to(device).logical_not().unsqueeze(1);
  rl::GrpoLossParams params;
  params.epsilon_low = g.epsilon;
  params.epsilon_high = g.epsilon_high > 0 ? g.epsilon_high : g.epsilon;
  params.beta = g.beta;
  params.loss_type = rl::parse_loss_type(g.loss_type);
  params.max_completion_length = max_new_tokens;
  torch::Tensor old_logp, ref_logp;
  policy->train();
  Lap lap(device);
  for (int it = 0; it < std::max(1, g.num_iterations); ++it) {
    optimizer.zero_grad();
    model::AutocastGuard autocast(device, bf16);
    auto logits = policy->completion_logits(b.images, b.prompts, b.tokens, b.mask).to(torch::kFloat);  // (N,C,V)
    auto logp = token_logps(logits, b.tokens, g.temperature);                                           // (N,C)
    u.times.forward += lap();
    if (it == 0) {
      torch::NoGradGuard no_grad;
      const auto lg = logits.detach();
      const auto fm = b.mask.to(torch::kFloat);
      const auto ent = -(torch::softmax(lg, -1) * torch::log_softmax(lg, -1)).sum(-1);  // (N,C)
      u.entropy = ((ent * fm).sum() / fm.sum().clamp_min(1)).item<double>();
      u.rewards = reward_fn(lg).to(torch::kFloat).cpu();  // (N)
      u.advantages = rl::group_advantages(u.rewards, b.group, rl::parse_scale_rewards(g.scale_rewards), 1e-4, &u.stats);
      // A continuous term (the focal reward's p) keeps rewards from tying exactly even when every
      // completion of a group is equally right; with scale_rewards=group, dividing by such a tiny
      // std would turn noise into +-1 advantages. Under every scaling, groups whose std is below
      // kTieStd count as tied and carry no signal.
      const auto tied = u.stats.std < kTieStd;  // (B)
      u.stats.zero_std_mask = u.stats.zero_std_mask | tied;
      u.stats.frac_zero_std = u.stats.zero_std_mask.to(torch::kDouble).mean().item<double>();
      u.advantages = u.advantages.masked_fill(u.stats.zero_std_mask.repeat_interleave(b.group), 0.0);
      if (g.drop_zero_std_groups)
        loss_mask = loss_mask & u.stats.zero_std_mask.logical_not().repeat_interleave(b.group).to(device).unsqueeze(1);
      old_logp = logp.detach();
      params.num_items_in_batch = loss_mask.sum().item<double>();
      u.times.reward += lap();
      if (g.beta > 0 && reference && *reference) {
        auto ref_logits = (*reference)->completion_logits(b.images, b.prompts, b.tokens, b.mask).to(torch::kFloat);
        ref_logp = token_logps(ref_logits, b.tokens, g.temperature);
        u.times.reference += lap();
      }
    }
    if (loss_mask.sum().item<int64_t>() == 0) break;  // nothing to learn from (all truncated or tied and dropped)
    const auto res = rl::grpo_loss(logp, old_logp, ref_logp, u.advantages.to(device), loss_mask, params);
    u.loss = res.loss.item<double>();
    u.kl = res.kl_mean;
    u.clip_region = res.clip_ratio_region;
    u.clip_low = res.clip_ratio_low;
    u.clip_high = res.clip_ratio_high;
    if (!std::isfinite(u.loss)) {
      u.finite = false;
      u.nonfinite = "loss";
      break;
    }
    res.loss.backward();
    u.grad_norm = clip_gradients(*policy, g.max_grad_norm);
    u.times.backward += lap();
    if (!std::isfinite(u.grad_norm)) {
      u.finite = false;
      u.nonfinite = "gradient";
      optimizer.zero_grad();
      break;
    }
    optimizer.step();
    u.times.optimizer += lap();
    ++u.updates;
  }
  return u;
}

}  // namespace lriad::train
