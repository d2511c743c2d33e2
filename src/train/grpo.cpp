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

GrpoUpdate grpo_update(model::Policy& policy, model::Policy* ref_policy, torch::optim::Optimizer& optimizer,
                       const GrpoBatch& b, const GrpoConfig& g, int max_new_tokens, bool bf16,
                       const RewardFn& reward_fn, Distributed* dist) {
  GrpoUpdate u;
  const int world = dist ? dist->world() : 1;
  const auto device = policy->device();
  const int64_t N = b.tokens.size(0);
  const auto parts = micro_batches(N, g.micro_batch);
  const bool split = parts.size() > 1;
  auto rows = [&](const MicroBatch& r) {  // the micro-batch's rows of b
    GrpoBatch s;
    s.images = b.images.narrow(0, r.start, r.rows);
    s.prompts.assign(b.prompts.begin() + r.start, b.prompts.begin() + r.start + r.rows);
    s.tokens = b.tokens.narrow(0, r.start, r.rows);
    s.mask = b.mask.narrow(0, r.start, r.rows);
    return s;
  };
  // log p of the completion tokens of rows r, and their logits: (n,C), (n,C,V).
  auto forward = [&](model::Policy& p, const MicroBatch& r) {
    const GrpoBatch s = rows(r);
    auto logits = p->completion_logits(s.images, s.prompts, s.tokens, s.mask).to(torch::kFloat);
    return std::pair{token_logps(logits, s.tokens.to(logits.device()), g.temperature), logits};
  };
  // The rows' log p without gradient, micro-batch by micro-batch, with the logits when asked: (N,C).
  auto logps_without_grad = [&](model::Policy& p, std::vector<torch::Tensor>* logits) {
    torch::NoGradGuard no_grad;
    std::vector<torch::Tensor> out;
    for (const auto& r : parts) {
      auto [lp, lg] = forward(p, r);
      out.push_back(lp);
      if (logits) logits->push_back(lg);
    }
    return torch::cat(out, 0);
  };
  auto loss_mask = b.mask.clone();  // (N,C)
  if (g.mask_truncated_completions) loss_mask = loss_mask & b.truncated.to(device).logical_not().unsqueeze(1);
  rl::GrpoLossParams params;
  params.epsilon_low = g.epsilon;
  params.epsilon_high = g.epsilon_high > 0 ? g.epsilon_high : g.epsilon;
  params.beta = g.beta;
  params.loss_type = rl::parse_loss_type(g.loss_type);
  params.max_completion_length = max_new_tokens;
  params.num_rows_in_batch = N;
  torch::Tensor old_logp, ref_logp;  // (N,C)
  policy->train();
  Lap lap(device);
  // Several ranks: the gradients are summed while the last micro-batch's backward runs.
  GradientSync* sync = world > 1 ? &dist->gradient_sync(policy->parameters(), /*mean=*/false) : nullptr;
  for (int it = 0; it < std::max(1, g.num_iterations); ++it) {
    optimizer.zero_grad();
    model::AutocastGuard autocast(device, bf16);
    torch::Tensor logp;  // (N,C) with gradient: the whole batch's first pass when it is not split
    if (it == 0) {
      // 1. The first pass gives the rewards' logits and the old log p. Whole, it is also the pass
      //    the loss is taken on; split, it runs without gradient and each micro-batch runs again
      //    with it below (one more forward, activations of a micro-batch only).
      torch::Tensor lg;  // (N,C,V)
      if (split) {
        std::vector<torch::Tensor> logits;
        old_logp = logps_without_grad(policy, &logits);
        lg = torch::cat(logits, 0);
      } else {
        auto [lp, logits] = forward(policy, parts[0]);
        logp = lp;
        lg = logits.detach();
        old_logp = logp.detach();
      }
      u.times.forward += lap();
      torch::NoGradGuard no_grad;
      const auto fm = b.mask.to(device).to(torch::kFloat);
      const auto ent = -(torch::softmax(lg, -1) * torch::log_softmax(lg, -1)).sum(-1);  // (N,C)
      const auto local = reward_fn(lg).to(torch::kFloat).cpu();                         // (N)
      int64_t first = 0;  // this rank's first row among every rank's
      if (world > 1) {
        const auto ent_sums = dist->sum({(ent * fm).sum().item<double>(), fm.sum().item<double>()});
        u.entropy = ent_sums[0] / std::max(ent_sums[1], 1.0);
        const auto all = dist->all_gather(std::vector<double>(local.data_ptr<float>(), local.data_ptr<float>() + N));
        u.rewards = torch::tensor(all, torch::kDouble).to(torch::kFloat);  // (world*N)
        first = dist->rank() * N;
      } else {
        u.entropy = ((ent * fm).sum() / fm.sum().clamp_min(1)).item<double>();
        u.rewards = local;
      }
      u.advantages = rl::group_advantages(u.rewards, b.group, rl::parse_scale_rewards(g.scale_rewards), 1e-4, &u.stats);
      // A continuous term (the focal reward's p) keeps rewards from tying exactly even when every
      // completion of a group is equally right; with scale_rewards=group, dividing by such a tiny
      // std would turn noise into +-1 advantages. Under every scaling, groups whose std is below
      // kTieStd count as tied and carry no signal.
      const auto tied = u.stats.std < kTieStd;  // (B)
      u.stats.zero_std_mask = u.stats.zero_std_mask | tied;
      u.stats.frac_zero_std = u.stats.zero_std_mask.to(torch::kDouble).mean().item<double>();
      u.advantages = u.advantages.masked_fill(u.stats.zero_std_mask.repeat_interleave(b.group), 0.0)
                         .narrow(0, first, N);  // this rank's rows
      if (g.drop_zero_std_groups)
        loss_mask =
            loss_mask &
            u.stats.zero_std_mask.logical_not().repeat_interleave(b.group).narrow(0, first, N).to(device).unsqueeze(1);
      params.num_items_in_batch = loss_mask.sum().item<double>();
      if (world > 1) {  // the whole batch's tokens and rows: each rank's loss is its share of the whole's
        params.num_items_in_batch = dist->sum(params.num_items_in_batch);
        params.num_rows_in_batch = N * world;
      }
      u.times.reward += lap();
      if (g.beta > 0 && ref_policy && *ref_policy) {
        ref_logp = logps_without_grad(*ref_policy, nullptr);
        u.times.ref_policy += lap();
      }
    }
    if (params.num_items_in_batch == 0) break;  // nothing to learn from (all truncated or tied and dropped)
    // 2. The loss, micro-batch by micro-batch, each normalised by the whole batch's rows and
    //    tokens: their gradients add up to the whole batch's.
    const auto advantages = u.advantages.to(device);
    double loss = 0, kl = 0, clip_region = 0, clip_low = 0, clip_high = 0, tokens = 0;
    for (const auto& r : parts) {
      torch::Tensor lp = logp;
      if (!lp.defined()) {
        lp = forward(policy, r).first;
        u.times.forward += lap();
      }
      auto part = [&](const torch::Tensor& t) { return t.defined() && split ? t.narrow(0, r.start, r.rows) : t; };
      const auto m = part(loss_mask);
      const auto res = rl::grpo_loss(lp, part(old_logp), part(ref_logp), part(advantages), m, params);
      const double n = m.sum().item<double>();  // the micro-batch's share of the token means
      loss += res.loss.item<double>();
      kl += res.kl_mean * n;
      clip_region += res.clip_ratio_region * n;
      clip_low += res.clip_ratio_low * n;
      clip_high += res.clip_ratio_high * n;
      tokens += n;
      if (!std::isfinite(loss)) break;
      if (sync && &r == &parts.back()) sync->arm();
      res.loss.backward();
      logp = torch::Tensor();  // the whole batch's graph is freed with its backward
      u.times.backward += lap();
    }
    if (world > 1) {  // the whole batch's figures (a rank that stopped at a non-finite loss still joins)
      const auto s = dist->sum({loss, kl, clip_region, clip_low, clip_high, tokens});
      loss = s[0], kl = s[1], clip_region = s[2], clip_low = s[3], clip_high = s[4], tokens = s[5];
    }
    // Every rank sends every bucket, in order, even when the loss is not finite and the step is dropped.
    if (sync) sync->finish();
    const double t = std::max(tokens, 1.0);
    u.loss = loss;
    u.kl = kl / t;
    u.clip_region = clip_region / t;
    u.clip_low = clip_low / t;
    u.clip_high = clip_high / t;
    if (!std::isfinite(u.loss)) {
      u.finite = false;
      u.nonfinite = "loss";
      optimizer.zero_grad();
      break;
    }
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

std::vector<MicroBatch> micro_batches(int64_t rows, int64_t micro_batch) {
  const int64_t m = micro_batch > 0 ? std::min(micro_batch, rows) : rows;
  std::vector<MicroBatch> out;
  for (int64_t s = 0; s < rows; s += m) out.push_back({s, std::min(m, rows - s)});
  return out;
}

}  // namespace lriad::train
