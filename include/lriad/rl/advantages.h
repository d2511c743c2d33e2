// Group-relative advantages for GRPO: each completion's reward minus its group's mean, scaled
// as TRL's GRPOTrainer does (scale_rewards = group | batch | none).
// Shapes: B = prompts, G = group size (completions per prompt), N = B*G completions.
#pragma once
#include <cstdint>
#include <string>

#include <torch/types.h>

namespace lriad::rl {

enum class ScaleRewards {
  group,  // divide by the group's std (GRPO)
  batch,  // divide by the std of all N rewards (more robust with few, tied groups)
  none,   // no division (Dr. GRPO: keeps the reward scale, no per-question weighting)
};

// "group" | "batch" | "none"; anything else throws lriad::Error naming the value.
ScaleRewards parse_scale_rewards(const std::string& name);
const char* to_string(ScaleRewards scale);

struct GroupStats {
  torch::Tensor mean;           // (B) group mean reward
  torch::Tensor std;            // (B) group std (unbiased), whatever `scale` is; 0 for G = 1
  torch::Tensor zero_std_mask;  // (B) bool: every reward of the group ties
  double frac_zero_std = 0.0;   // share of groups whose rewards all tie (TRL: frac_reward_zero_std)
};

// rewards (N), groups laid out contiguously ([p0g0, p0g1, ..., p1g0, ...]) -> advantages (N):
//   A = r - mean_group                       for every scale,
//   A /= std_group + eps                     for ScaleRewards::group,
//   A /= std_batch + eps                     for ScaleRewards::batch.
// Both stds are unbiased (Bessel, divide by n-1), as torch.std defaults to in TRL; a single
// value has std 0. Groups whose rewards all tie get A exactly 0 (no float residue from the
// mean amplified by 1/eps). The result keeps the rewards' floating dtype (integers -> float32).
// Throws lriad::Error unless rewards is 1-D with N a positive multiple of G.
torch::Tensor group_advantages(const torch::Tensor& rewards, int64_t G, ScaleRewards scale, double eps = 1e-4,
                               GroupStats* stats = nullptr);

}  // namespace lriad::rl
