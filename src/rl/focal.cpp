// LR-IAD focal reward alpha * (1 - p)^gamma * f_c for correct verdicts.
// N = completions.
#include "lriad/rl/focal.h"

#include <algorithm>
#include <cmath>

#include <torch/torch.h>

#include "lriad/io/error.h"

namespace lriad::rl {

double focal_reward(bool correct, double p_correct, double alpha, double gamma, double class_weight) {
  if (!std::isfinite(p_correct)) throw Error("focal_reward: p_correct is " + std::to_string(p_correct));
  if (!correct || p_correct < 0) return 0.0;  // a wrong verdict, or a belief that could not be read
  const double p = std::clamp(p_correct, 0.0, 1.0);
  return alpha * std::pow(1.0 - p, gamma) * class_weight;
}

torch::Tensor focal_rewards(const torch::Tensor& correct, const torch::Tensor& p_correct, double alpha, double gamma,
                            const torch::Tensor& class_weight) {
  if (p_correct.dim() != 1 || correct.sizes() != p_correct.sizes() || class_weight.sizes() != p_correct.sizes())
    throw Error("focal_rewards: correct, p_correct and class_weight must all be (N), got " + c10::str(correct.sizes()) +
                ", " + c10::str(p_correct.sizes()) + ", " + c10::str(class_weight.sizes()));
  if (!torch::isfinite(p_correct).all().item<bool>()) throw Error("focal_rewards: p_correct holds NaN or inf");
  const auto dtype = p_correct.is_floating_point() ? p_correct.scalar_type() : torch::kFloat;
  const torch::Tensor p = p_correct.to(dtype).clamp(0.0, 1.0);                        // (N)
  const torch::Tensor hit = (correct.to(torch::kBool) & (p_correct >= 0)).to(dtype);  // (N): unread p: no bonus
  return alpha * torch::pow(1.0 - p, gamma) * class_weight.to(dtype) * hit;           // (N)
}

}  // namespace lriad::rl
