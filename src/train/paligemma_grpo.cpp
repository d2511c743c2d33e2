// GRPO steps on PaliGemma with LoRA (see paligemma_grpo.h).
#include "lriad/train/paligemma_grpo.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "lriad/io/error.h"
#include "lriad/rl/advantages.h"
#include "lriad/train/grpo.h"

namespace lriad::train {

std::pair<torch::Tensor, torch::Tensor> paligemma_completion_logits(model::PaliGemmaImpl& model,
                                                                    const torch::Tensor& pixel_values,
                                                                    const IdRows& prompts, const IdRows& completions) {
  const int64_t N = int64_t(prompts.size());
  if (N == 0 || completions.size() != prompts.size() || pixel_values.size(0) != N)
    throw Error("paligemma_completion_logits: need one image, prompt and completion per row");
  size_t C = 1, L = 0;
  for (int64_t i = 0; i < N; ++i) {
    C = std::max(C, completions[size_t(i)].size());
    L = std::max(L, prompts[size_t(i)].size() + completions[size_t(i)].size());
  }
  std::vector<int64_t> ids(size_t(N) * L, model.config.pad_id), gather(size_t(N) * C, 0);
  std::vector<uint8_t> valid(size_t(N) * L, 0), prefix(size_t(N) * L, 0), mask(size_t(N) * C, 0);
  for (int64_t i = 0; i < N; ++i) {
    const auto& p = prompts[size_t(i)];
    const auto& c = completions[size_t(i)];
    for (size_t t = 0; t < p.size() + c.size(); ++t) {
      ids[size_t(i) * L + t] = t < p.size() ? p[t] : c[t - p.size()];
      valid[size_t(i) * L + t] = 1;
      prefix[size_t(i) * L + t] = t < p.size();
    }
    for (size_t t = 0; t < c.size(); ++t) {
      gather[size_t(i) * C + t] = int64_t(p.size() + t - 1);  // the logits that predict completion token t
      mask[size_t(i) * C + t] = 1;
    }
  }
  const auto id_t = torch::tensor(ids, torch::kInt64).view({N, int64_t(L)});
  const auto valid_t = torch::tensor(valid, torch::kUInt8).view({N, int64_t(L)}).to(torch::kBool);
  const auto prefix_t = torch::tensor(prefix, torch::kUInt8).view({N, int64_t(L)}).to(torch::kBool);
  const auto at = torch::tensor(gather, torch::kInt64).view({N, int64_t(C)});
  const auto picked =
      model.forward(pixel_values, id_t, valid_t, prefix_t, model::paligemma_positions(valid_t), at);  // (N,C,V)
  const auto dev = picked.device();
  const auto m = torch::tensor(mask, torch::kUInt8).view({N, int64_t(C)}).to(torch::kBool).to(dev);
  return {picked, m};
}

torch::Tensor padded_ids(const IdRows& rows, int64_t C, int64_t pad) {
  const int64_t N = int64_t(rows.size());
  std::vector<int64_t> flat(size_t(N * C), pad);
  for (int64_t i = 0; i < N; ++i) {
    if (int64_t(rows[size_t(i)].size()) > C) throw Error("padded_ids: a row is longer than " + std::to_string(C));
    std::copy(rows[size_t(i)].begin(), rows[size_t(i)].end(), flat.begin() + i * C);
  }
  return torch::tensor(flat, torch::kInt64).view({N, C});
}

std::pair<torch::Tensor, torch::Tensor> paligemma_logprobs(model::PaliGemmaImpl& model,
                                                           const torch::Tensor& pixel_values, const IdRows& prompts,
                                                           const IdRows& completions, double temperature) {
  const auto [logits, mask] = paligemma_completion_logits(model, pixel_values, prompts, completions);      // (N,C,V)
  const auto target_t = padded_ids(completions, logits.size(1), model.config.pad_id).to(logits.device());  // (N,C)
  const auto logp =
      torch::log_softmax(logits / temperature, -1).gather(2, target_t.unsqueeze(-1)).squeeze(-1);  // (N,C)
  return {logp.masked_fill(mask.logical_not(), 0.0), mask};
}

IdRows paligemma_sample_group(model::PaliGemmaImpl& model, const torch::Tensor& pixel_values,
                              const std::vector<int64_t>& prompt, int64_t group, int max_new, double temperature,
                              at::Generator& generator) {
  if (!(temperature > 0)) throw Error("sampling temperature must be > 0");
  torch::NoGradGuard no_grad;
  torch::Tensor logits;  // (G,V)
  model::KVCache cache = model.prefill(pixel_values, prompt, group, max_new, &logits);
  IdRows out(static_cast<size_t>(group), std::vector<int64_t>());
  std::vector<bool> done(size_t(group), false);
  for (int s = 0; s < max_new; ++s) {
    auto scaled = logits.to(torch::kCPU) / temperature;  // (G,V)
    scaled.select(1, model.config.image_token_index)
        .fill_(-std::numeric_limits<float>::infinity());  // the prompt's places
    const auto next = torch::multinomial(torch::softmax(scaled, -1), 1, false, generator).view({group});  // (G)
    bool all_done = true;
    for (int64_t g = 0; g < group; ++g) {
      if (done[size_t(g)]) continue;
      out[size_t(g)].push_back(next[g].item<int64_t>());
      done[size_t(g)] = out[size_t(g)].back() == model.config.eos_id;
      all_done = all_done && done[size_t(g)];
    }
    if (all_done || s + 1 == max_new) break;
    logits = model.step(next, cache);  // rows already done decode on, unread
  }
  return out;
}

PaliGemmaGrpoStats paligemma_grpo_step(model::PaliGemmaImpl& model, torch::optim::Optimizer& optimizer,
                                       const torch::Tensor& pixel_values, const IdRows& prompts,
                                       const std::function<double(size_t, const std::vector<int64_t>&)>& reward,
                                       const PaliGemmaGrpoOptions& options, at::Generator& generator) {
  if (!model.has_lora()) throw Error("GRPO on PaliGemma trains LoRA adapters", "call add_lora first");
  const int64_t B = int64_t(prompts.size()), G = options.group;
  PaliGemmaGrpoStats stats;
  IdRows rows_prompt;
  std::vector<double> rewards;
  std::vector<int64_t> image_of;
  for (int64_t b = 0; b < B; ++b)
    for (auto& c : paligemma_sample_group(model, pixel_values.narrow(0, b, 1), prompts[size_t(b)], G, options.max_new,
                                          options.temperature, generator)) {
      rewards.push_back(reward(size_t(b), c));
      stats.completions.push_back(std::move(c));
      rows_prompt.push_back(prompts[size_t(b)]);
      image_of.push_back(b);
    }
  const auto pixels =
      pixel_values.index_select(0, torch::tensor(image_of, torch::kInt64).to(pixel_values.device()));  // (N,3,S,S)
  const auto r = torch::tensor(rewards, torch::kFloat32);
  const auto advantages = rl::group_advantages(r, G, rl::ScaleRewards::group);  // (N)
  const PaliGemmaUpdate u =
      paligemma_grpo_update(model, optimizer, pixels, rows_prompt, stats.completions, advantages, options.loss, 0);
  stats.loss = u.loss;
  stats.reward_mean = r.mean().item<double>();
  stats.kl_mean = u.kl_mean;
  return stats;
}

PaliGemmaUpdate paligemma_grpo_update(model::PaliGemmaImpl& model, torch::optim::Optimizer& optimizer,
                                      const torch::Tensor& pixel_values, const IdRows& prompts,
                                      const IdRows& completions, const torch::Tensor& advantages,
                                      const rl::GrpoLossParams& loss, double max_grad_norm, double temperature) {
  if (!model.has_lora()) throw Error("GRPO on PaliGemma trains LoRA adapters", "call add_lora first");
  PaliGemmaUpdate u;
  torch::Tensor ref_logp;  // (N,C)
  if (loss.beta > 0) {
    torch::NoGradGuard no_grad;
    model::AdaptersOff off(model);
    ref_logp = paligemma_logprobs(model, pixel_values, prompts, completions, temperature).first;
  }
  auto [logp, mask] = paligemma_logprobs(model, pixel_values, prompts, completions, temperature);  // (N,C)
  const auto result = rl::grpo_loss(logp, logp.detach(), ref_logp, advantages.to(logp.device()), mask, loss);
  optimizer.zero_grad();
  u.loss = result.loss.item<double>();
  u.kl_mean = result.kl_mean;
  u.finite = std::isfinite(u.loss);
  if (!u.finite) {
    u.nonfinite = "loss";
    return u;
  }
  result.loss.backward();
  u.grad_norm = clip_gradients(model, max_grad_norm);  // the adapters' (frozen weights have no gradient)
  u.finite = std::isfinite(u.grad_norm);
  if (!u.finite) {
    u.nonfinite = "gradient";
    optimizer.zero_grad();
    return u;
  }
  optimizer.step();
  return u;
}

}  // namespace lriad::train
