// Group-relative advantages (TRL GRPOTrainer._generate_and_score_completions semantics).
// B = prompts, G = group size, N = B*G completions.
#include "lriad/rl/advantages.h"

#include <torch/torch.h>

#include "lriad/io/error.h"

namespace lriad::rl {

ScaleRewards parse_scale_rewards(const std::string& name) {
  if (name == "group") return ScaleRewards::group;
  if (name == "batch") return ScaleRewards::batch;
  if (name == "none") return ScaleRewards::none;
  throw Error("unknown scale_rewards '" + name + "'", "use group, batch or none");
}

const char* to_string(ScaleRewards scale) {
  switch (scale) {
    case ScaleRewards::group:
      return "group";
    case ScaleRewards::batch:
      return "batch";
    case ScaleRewards::none:
      return "none";
  }
  return "?";
}

namespace {

// Unbiased std along `dim`, 0 where there is a single value (torch.std would give NaN).
torch::Tensor unbiased_std(const torch::Tensor& x, int64_t dim) {
  if (x.size(dim) < 2) return torch::zeros_like(x.select(dim, 0));
  return x.std(dim, /*unbiased=*/true);
}

}  // namespace

torch::Tensor group_advantages(const torch::Tensor& rewards, int64_t G, ScaleRewards scale, double eps,
                               GroupStats* stats) {
  // 1. Check the layout.
  if (rewards.dim() != 1)
    throw Error("group_advantages: rewards must be 1-D (N), got " + std::to_string(rewards.dim()) + "-D");
  const int64_t N = rewards.size(0);
  if (G < 1 || N == 0 || N % G != 0)
    throw Error("group_advantages: " + std::to_string(N) + " rewards do not split into groups of " + std::to_string(G),
                "rewards hold num_generations completions per prompt, laid out contiguously");
  const int64_t B = N / G;
  const torch::Tensor r = rewards.is_floating_point() ? rewards : rewards.to(torch::kFloat);

  // 2. Group statistics. A tie is exact equality, not a small std: a std of ~1e-8 from
  //    rounding in the mean must not count as signal.
  const torch::Tensor grouped = r.view({B, G});                                          // (B,G)
  const torch::Tensor mean = grouped.mean(1);                                            // (B)
  const torch::Tensor tie = std::get<0>(grouped.max(1)) == std::get<0>(grouped.min(1));  // (B)
  const torch::Tensor std = unbiased_std(grouped, 1).masked_fill(tie, 0.0);              // (B)

  // 3. Centre, zero the tied groups exactly, then scale.
  torch::Tensor adv = (grouped - mean.unsqueeze(1)).masked_fill(tie.unsqueeze(1), 0.0);  // (B,G)
  if (scale == ScaleRewards::group) adv = adv / (std.unsqueeze(1) + eps);
  if (scale == ScaleRewards::batch) adv = adv / (unbiased_std(r, 0) + eps);

  if (stats) {
    stats->mean = mean;
    stats->std = std;
    stats->zero_std_mask = tie;
    stats->frac_zero_std = tie.to(torch::kDouble).mean().item<double>();
  }
  return adv.reshape({N});  // (N)
}

}  // namespace lriad::rl
