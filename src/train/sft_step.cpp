// Stage 1: teacher-forced cross-entropy on templated chains of thought (completion tokens only).
#include <chrono>

#include "lriad/model/precision.h"
#include "lriad/train/schedule.h"
#include "trainer_internal.h"

namespace lriad::train::detail {

torch::Tensor probe_logits(torch::nn::Linear& probe, const torch::Tensor& tokens) {
  const auto z = probe->forward(tokens.to(torch::kFloat)).squeeze(-1);  // (B,N)
  return torch::logsumexp(z, 1) - std::log(double(z.size(1)));          // (B)
}

namespace {

std::vector<torch::Tensor> both(std::vector<torch::Tensor> a, const std::vector<torch::Tensor>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// loss.backward(); with several ranks, `parameters`' gradients summed (or averaged) over them while
// it runs (GradientSync).
void backward_summed(Context& ctx, const torch::Tensor& loss, const std::vector<torch::Tensor>& parameters, bool mean) {
  GradientSync* sync = ctx.world() > 1 ? &ctx.dist->gradient_sync(parameters, mean) : nullptr;
  if (sync) sync->arm();
  loss.backward();
  if (sync) sync->finish();
}

}  // namespace

StepMetrics vision_step(Context& ctx, torch::optim::AdamW& optimizer, int step, PreparedBatch prepared) {
  const auto t0 = std::chrono::steady_clock::now();
  const auto& w = ctx.config.vision_warmup;
  std::vector<float> y;
  for (const auto& it : prepared.items) y.push_back(it.anomalous ? 1.f : 0.f);
  EncodedBatch batch = ctx.encode(std::move(prepared));
  const auto target = torch::tensor(y).to(ctx.device);  // (B)
  const double lr = lr_at(step, w.steps, std::min(ctx.config.sft.warmup_steps, w.steps / 10), w.lr);
  set_lr(optimizer, lr);
  ctx.policy->train();
  optimizer.zero_grad();
  torch::Tensor loss, acc;
  {
    model::AutocastGuard autocast(ctx.device, model::use_bf16(ctx.config));
    const auto logit = probe_logits(ctx.vision_probe, ctx.policy->vision->forward(batch.images));  // (B)
    loss = torch::binary_cross_entropy_with_logits(logit, target);
    acc = ((logit > 0).to(torch::kFloat) == target).to(torch::kFloat).mean();
  }
  // Several ranks: equal shares of the batch, so the whole batch's mean is the mean of the ranks'.
  const double world = ctx.world();
  const auto figures = ctx.world() > 1 ? ctx.dist->sum({loss.item<double>() / world, acc.item<double>() / world})
                                       : std::vector<double>{loss.item<double>(), acc.item<double>()};
  StepMetrics out;
  out.finite = std::isfinite(figures[0]);
  if (!out.finite) out.nonfinite = "loss";
  double grad_norm = 0;
  if (out.finite) {
    backward_summed(ctx, loss, both(ctx.policy->vision->parameters(), ctx.vision_probe->parameters()), /*mean=*/true);
    grad_norm = clip_gradients(*ctx.policy->vision, ctx.config.sft.max_grad_norm);
    const double probe_norm = clip_gradients(*ctx.vision_probe, ctx.config.sft.max_grad_norm);
    out.finite = std::isfinite(grad_norm) && std::isfinite(probe_norm);
    if (!out.finite) out.nonfinite = "gradient";
    if (out.finite) optimizer.step();
  }
  out.json = {{"loss", figures[0]},
              {"accuracy", figures[1]},
              {"grad_norm", grad_norm},
              {"learning_rate", lr},
              {"step_time", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()}};
  return out;
}

StepMetrics sft_step(Context& ctx, torch::optim::AdamW& optimizer, int step, PreparedBatch prepared) {
  const auto t0 = std::chrono::steady_clock::now();
  const auto& c = ctx.config.sft;
  const std::vector<TrainItem>& items = prepared.items;
  std::vector<std::vector<int64_t>> targets;
  size_t longest = 0;
  for (size_t i = 0; i < items.size(); ++i) {
    const auto& facts = prepared.facts[i];  // the chain states the evidence
    targets.push_back(
        ctx.completion_ids(items[i], int((uint64_t(step) * 31 + i) % text::kCotVariants), facts ? &*facts : nullptr));
    longest = std::max(longest, targets.back().size());
  }
  const int64_t B = int64_t(items.size()), C = int64_t(longest);
  auto tokens = torch::full({B, C}, int64_t(ctx.tokenizer->pad_id()), torch::kInt64);  // (B,C)
  auto mask = torch::zeros({B, C}, torch::kBool);                                      // (B,C)
  for (int64_t b = 0; b < B; ++b)
    for (size_t t = 0; t < targets[size_t(b)].size(); ++t) {
      tokens[b][int64_t(t)] = targets[size_t(b)][t];
      mask[b][int64_t(t)] = true;
    }
  tokens = tokens.to(ctx.device);
  mask = mask.to(ctx.device);
  EncodedBatch batch = ctx.encode(std::move(prepared));

  const double lr = lr_at(step, c.steps, c.warmup_steps, c.lr);
  set_lr(optimizer, lr);
  ctx.policy->train();
  optimizer.zero_grad();
  torch::Tensor loss, token_acc, aux = torch::zeros({}), aux_acc = torch::zeros({});
  {
    model::AutocastGuard autocast(ctx.device, model::use_bf16(ctx.config));
    auto logits =
        ctx.policy->completion_logits(batch.images, batch.prompts, tokens, mask).to(torch::kFloat);  // (B,C,V)
    auto nll = torch::nn::functional::cross_entropy(
        logits.reshape({B * C, -1}), tokens.reshape({B * C}),
        torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kNone));  // (B*C)
    const auto m = mask.reshape({B * C}).to(torch::kFloat);
    // Normalised by the whole batch's tokens (every rank's): the ranks' gradients then add up to it.
    const double count =
        std::max(ctx.world() > 1 ? ctx.dist->sum(m.sum().item<double>()) : m.sum().item<double>(), 1.0);
    loss = (nll * m).sum() / count;
    auto hit = (logits.argmax(-1) == tokens).to(torch::kFloat) * mask.to(torch::kFloat);  // (B,C)
    token_acc = hit.sum() / count;
    if (c.vision_aux > 0 && ctx.vision_probe) {
      std::vector<float> y;
      for (const auto& it : batch.items) y.push_back(it.anomalous ? 1.f : 0.f);
      const auto target = torch::tensor(y).to(ctx.device);  // (B)
      const auto logit = probe_logits(ctx.vision_probe, ctx.policy->vision->forward(batch.images));
      aux = torch::binary_cross_entropy_with_logits(logit, target);
      aux_acc = ((logit > 0).to(torch::kFloat) == target).to(torch::kFloat).mean();
      loss = loss + c.vision_aux * aux / double(ctx.world());  // equal shares: the ranks' means sum to the whole's
    }
  }
  // The whole batch's figures: each rank's loss and token hits are its share of the whole's sums.
  const double world = ctx.world();
  std::vector<double> figures = {loss.item<double>(), token_acc.item<double>(), aux.item<double>() / world,
                                 aux_acc.item<double>() / world, double(mask.sum().item<int64_t>())};
  if (ctx.world() > 1) figures = ctx.dist->sum(figures);
  StepMetrics out;
  out.finite = std::isfinite(figures[0]);
  if (!out.finite) out.nonfinite = "loss";
  double grad_norm = 0;
  if (out.finite) {
    backward_summed(
        ctx, loss,
        both(ctx.policy->parameters(),
             // the probe is in the loss (and the optimizer) only with vision_aux
             c.vision_aux > 0 && ctx.vision_probe ? ctx.vision_probe->parameters() : std::vector<torch::Tensor>{}),
        /*mean=*/false);
    grad_norm = clip_gradients(*ctx.policy, c.max_grad_norm);
    const double probe_norm = ctx.vision_probe ? clip_gradients(*ctx.vision_probe, c.max_grad_norm) : 0.0;
    out.finite = std::isfinite(grad_norm) && std::isfinite(probe_norm);
    if (!out.finite) out.nonfinite = "gradient";
    if (out.finite) optimizer.step();
  }
  out.json = {{"loss", figures[0]},
              {"token_accuracy", figures[1]},
              {"vision_aux_loss", figures[2]},
              {"vision_aux_accuracy", figures[3]},
              {"grad_norm", grad_norm},
              {"learning_rate", lr},
              {"completions/mean_length", figures[4] / (double(B) * world)},
              {"step_time", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()}};
  return out;
}

}  // namespace lriad::train::detail
