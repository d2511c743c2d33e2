// GRPO loss (TRL GRPOTrainer._compute_loss): clipped surrogate, k3 KL, loss-type aggregation.
// N = completions, T = completion tokens.
#include "lriad/rl/grpo_loss.h"

#include <torch/torch.h>

#include "lriad/io/error.h"

namespace lriad::rl {

LossType parse_loss_type(const std::string& name) {
  if (name == "grpo") return LossType::grpo;
  if (name == "bnpo") return LossType::bnpo;
  if (name == "dr_grpo") return LossType::dr_grpo;
  if (name == "dapo") return LossType::dapo;
  throw Error("unknown loss_type '" + name + "'", "use grpo, bnpo, dr_grpo or dapo");
}

const char* to_string(LossType type) {
  switch (type) {
    case LossType::grpo:
      return "grpo";
    case LossType::bnpo:
      return "bnpo";
    case LossType::dr_grpo:
      return "dr_grpo";
    case LossType::dapo:
      return "dapo";
  }
  return "?";
}

torch::Tensor kl_k3(const torch::Tensor& logp, const torch::Tensor& ref_logp) {
  const torch::Tensor d = ref_logp - logp;  // (N,T)
  return torch::exp(d) - d - 1.0;           // (N,T)
}

torch::Tensor clipped_surrogate(const torch::Tensor& ratio, const torch::Tensor& advantages, double epsilon_low,
                                double epsilon_high) {
  const torch::Tensor a = advantages.unsqueeze(1);                                           // (N,1)
  const torch::Tensor clipped = torch::clamp(ratio, 1.0 - epsilon_low, 1.0 + epsilon_high);  // (N,T)
  return torch::min(ratio * a, clipped * a);                                                 // (N,T)
}

torch::Tensor aggregate_loss(const torch::Tensor& per_token_loss, const torch::Tensor& mask,
                             const GrpoLossParams& params) {
  const torch::Tensor m = mask.to(per_token_loss.scalar_type());  // (N,T)
  const torch::Tensor masked = per_token_loss * m;                // (N,T)
  // Over a micro-batch the normalisers are the whole batch's, so that the micro-batches' losses
  // sum to the whole batch's.
  const int64_t rows = params.num_rows_in_batch > 0 ? params.num_rows_in_batch : per_token_loss.size(0);
  switch (params.loss_type) {
    case LossType::grpo:
      return (masked.sum(1) / m.sum(1).clamp_min(1.0)).sum() / double(rows);
    case LossType::bnpo:
    case LossType::dapo:
      if (params.num_items_in_batch > 0) return masked.sum() / params.num_items_in_batch;
      return masked.sum() / m.sum().clamp_min(1.0);
    case LossType::dr_grpo: {
      const int64_t L = params.max_completion_length > 0 ? params.max_completion_length : mask.size(1);
      return masked.sum() / double(rows * L);
    }
  }
  throw Error("aggregate_loss: unhandled loss type");
}

namespace {

void check_shapes(const torch::Tensor& logp, const torch::Tensor& old_logp, const torch::Tensor& ref_logp,
                  const torch::Tensor& advantages, const torch::Tensor& mask, const GrpoLossParams& params) {
  auto shape = [](const torch::Tensor& t) { return t.defined() ? c10::str(t.sizes()) : std::string("undefined"); };
  auto fail = [&](const std::string& what) {
    throw Error("grpo_loss: " + what + " (logp " + shape(logp) + ", old_logp " + shape(old_logp) + ", ref_logp " +
                shape(ref_logp) + ", advantages " + shape(advantages) + ", mask " + shape(mask) + ")");
  };
  if (!logp.defined() || logp.dim() != 2) fail("logp must be (N,T)");
  if (!old_logp.defined() || old_logp.sizes() != logp.sizes()) fail("old_logp must match logp");
  if (!mask.defined() || mask.sizes() != logp.sizes()) fail("mask must match logp");
  if (!advantages.defined() || advantages.dim() != 1 || advantages.size(0) != logp.size(0))
    fail("advantages must be (N)");
  if (ref_logp.defined() && ref_logp.sizes() != logp.sizes()) fail("ref_logp must match logp");
  if (params.beta > 0 && !ref_logp.defined()) fail("beta > 0 needs ref_logp");
}

}  // namespace

GrpoLossResult grpo_loss(const torch::Tensor& logp, const torch::Tensor& old_logp, const torch::Tensor& ref_logp,
                         const torch::Tensor& advantages, const torch::Tensor& mask, const GrpoLossParams& params) {
  check_shapes(logp, old_logp, ref_logp, advantages, mask, params);
  const double eps_low = params.epsilon_low;
  const double eps_high = params.epsilon_high > 0 ? params.epsilon_high : params.epsilon_low;
  const torch::Tensor adv = advantages.to(logp.scalar_type());  // (N)
  const torch::Tensor m = mask.to(logp.scalar_type());          // (N,T)

  // 1. Per-token loss: clipped surrogate, plus the KL penalty.
  const torch::Tensor ratio = torch::exp(logp - old_logp);                      // (N,T)
  torch::Tensor per_token = -clipped_surrogate(ratio, adv, eps_low, eps_high);  // (N,T)
  torch::Tensor kl;                                                             // (N,T)
  if (ref_logp.defined()) kl = kl_k3(logp, ref_logp);
  if (params.beta > 0) per_token = per_token + params.beta * kl;

  // 2. One scalar.
  GrpoLossResult out;
  out.loss = aggregate_loss(per_token, m, params);

  // 3. Metrics over completion tokens (TRL's masked batch means), without gradient.
  torch::NoGradGuard no_grad;
  const torch::Tensor tokens = m.sum().clamp_min(1.0);
  auto token_share = [&](const torch::Tensor& flag) {
    return ((flag.to(m.scalar_type()) * m).sum() / tokens).item<double>();
  };
  if (kl.defined()) out.kl_mean = ((kl.detach() * m).sum() / tokens).item<double>();
  const torch::Tensor a = adv.unsqueeze(1);                                         // (N,1)
  const torch::Tensor low = (ratio.detach() < 1.0 - eps_low).logical_and(a < 0);    // (N,T)
  const torch::Tensor high = (ratio.detach() > 1.0 + eps_high).logical_and(a > 0);  // (N,T)
  out.clip_ratio_low = token_share(low);
  out.clip_ratio_high = token_share(high);
  out.clip_ratio_region = token_share(low.logical_or(high));
  return out;
}

}  // namespace lriad::rl
