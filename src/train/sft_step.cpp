// Stage 1: teacher-forced cross-entropy on templated chains of thought (completion tokens only).
#include <chrono>

#include "lriad/model/precision.h"
#include "lriad/train/schedule.h"
#include "trainer_internal.h"

namespace lriad::train::detail {

StepMetrics sft_step(Context& ctx, torch::optim::AdamW& optimizer, int step) {
  const auto t0 = std::chrono::steady_clock::now();
  const auto& c = ctx.config.sft;
  std::vector<TrainItem> items;
  for (int i = 0; i < c.batch_size; ++i) items.push_back(ctx.source->draw(uint64_t(step), i));
  std::vector<std::vector<int64_t>> targets;
  size_t longest = 0;
  for (size_t i = 0; i < items.size(); ++i) {
    targets.push_back(ctx.completion_ids(items[i], int((uint64_t(step) * 31 + i) % text::kCotVariants)));
    longest = std::max(longest, targets.back().size());
  }
  const int64_t B = int64_t(items.size()), C = int64_t(longest);
  auto tokens = torch::full({B, C}, int64_t(ctx.tokenizer->pad_id()), torch::kInt64);  // (B,C)
  auto mask = torch::zeros({B, C}, torch::kBool);                                        // (B,C)
  for (int64_t b = 0; b < B; ++b)
    for (size_t t = 0; t < targets[size_t(b)].size(); ++t) {
      tokens[b][int64_t(t)] = targets[size_t(b)][t];
      mask[b][int64_t(t)] = true;
    }
  tokens = tokens.to(ctx.device);
  mask = mask.to(ctx.device);
  EncodedBatch batch = ctx.encode(std::move(items));

  const double lr = lr_at(step, c.steps, c.warmup_steps, c.lr);
  set_lr(optimizer, lr);
  ctx.policy->train();
  optimizer.zero_grad();
  torch::Tensor loss, token_acc, answer_acc;
  {
    model::AutocastGuard autocast(ctx.device, ctx.config.use_bf16());
    auto logits = ctx.policy->completion_logits(batch.images, batch.prompts, tokens, mask).to(torch::kFloat);  // (B,C,V)
    auto nll = torch::nn::functional::cross_entropy(
        logits.reshape({B * C, -1}), tokens.reshape({B * C}),
        torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kNone));  // (B*C)
    const auto m = mask.reshape({B * C}).to(torch::kFloat);
    loss = (nll * m).sum() / m.sum().clamp_min(1);
    auto hit = (logits.argmax(-1) == tokens).to(torch::kFloat) * mask.to(torch::kFloat);  // (B,C)
    token_acc = hit.sum() / mask.sum().clamp_min(1);
  }
  StepMetrics out;
  out.finite = std::isfinite(loss.item<double>());
  double grad_norm = 0;
  if (out.finite) {
    loss.backward();
    grad_norm = clip_gradients(*ctx.policy, c.max_grad_norm);
    out.finite = std::isfinite(grad_norm);
    if (out.finite) optimizer.step();
  }
  out.json = {{"loss", loss.item<double>()},
              {"token_accuracy", token_acc.item<double>()},
              {"grad_norm", grad_norm},
              {"learning_rate", lr},
              {"completions/mean_length", double(mask.sum().item<int64_t>()) / double(B)},
              {"step_time", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()}};
  return out;
}

}  // namespace lriad::train::detail
