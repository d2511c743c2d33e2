// GRPO on a pretrained PaliGemma (model/paligemma.h) with LoRA adapters: the pieces of one step,
// made of lriad's GRPO loss (rl/grpo_loss.h) and group advantages (rl/advantages.h). The KL
// reference is the same model with its adapters off (no second copy of the base weights).
// A group's completions share one pass over the prompt (the KV cache, repeated per completion).
// Shapes: B = prompts, G = completions per prompt, N = B*G, C = completion tokens (padded),
// S = image side, V = vocabulary.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "lriad/model/paligemma.h"
#include "lriad/rl/grpo_loss.h"

namespace lriad::train {

using IdRows = std::vector<std::vector<int64_t>>;

// The logits predicting each completion token after its prompt (the prompt as the prefix, the
// completion causal): pixel_values (N,3,S,S), prompts and completions N rows each ->
// {logits (N,C,V) float32, mask (N,C) bool}; completions right-padded to the longest.
std::pair<torch::Tensor, torch::Tensor> paligemma_completion_logits(model::PaliGemmaImpl& model,
                                                                    const torch::Tensor& pixel_values,
                                                                    const IdRows& prompts, const IdRows& completions);

// Completions as one right-padded id matrix: N rows -> (N,C) int64, `pad` past each row's end
// (C at least the longest row).
torch::Tensor padded_ids(const IdRows& rows, int64_t C, int64_t pad);

// Log-probabilities of each completion token after its prompt (the prompt as the prefix, the
// completion causal), from the logits divided by `temperature` (the sampling's, as TRL's):
// pixel_values (N,3,S,S), prompts and completions N rows each -> {logp (N,C) float32, mask (N,C)
// bool}; completions right-padded to the longest.
std::pair<torch::Tensor, torch::Tensor> paligemma_logprobs(model::PaliGemmaImpl& model,
                                                           const torch::Tensor& pixel_values, const IdRows& prompts,
                                                           const IdRows& completions, double temperature = 1.0);

// `group` completions of up to `max_new` tokens after `prompt` at `temperature` (> 0), each
// stopping after EOS; never the <image> token (the image's places are the prompt's). The prompt
// runs once and its KV cache serves the whole group (PaliGemmaImpl::prefill). pixel_values (1,3,S,S).
IdRows paligemma_sample_group(model::PaliGemmaImpl& model, const torch::Tensor& pixel_values,
                              const std::vector<int64_t>& prompt, int64_t group, int max_new, double temperature,
                              at::Generator& generator);

struct PaliGemmaUpdate {
  double loss = 0, kl_mean = 0, grad_norm = 0;
  bool finite = true;
  std::string nonfinite;  // "loss" or "gradient" when the update was skipped
};

// One clipped-surrogate update of the adapters on sampled completions: their log-probabilities now
// (the sampling policy's, detached, as the old ones: one update per generation batch) and, with
// loss.beta > 0, the base's (adapters off) for the KL term; gradients clipped to max_grad_norm
// (0 = off); a non-finite loss or gradient skips the step. pixel_values (N,3,S,S), prompts and
// completions N rows, advantages (N).
PaliGemmaUpdate paligemma_grpo_update(model::PaliGemmaImpl& model, torch::optim::Optimizer& optimizer,
                                      const torch::Tensor& pixel_values, const IdRows& prompts,
                                      const IdRows& completions, const torch::Tensor& advantages,
                                      const rl::GrpoLossParams& loss, double max_grad_norm, double temperature = 1.0);

struct PaliGemmaGrpoOptions {
  int64_t group = 4;  // G
  int max_new = 16;
  double temperature = 1.0;
  rl::GrpoLossParams loss;  // loss.beta > 0: the KL to the base (adapters off)
  uint64_t seed = 0;
};

struct PaliGemmaGrpoStats {
  double loss = 0, reward_mean = 0, kl_mean = 0;
  IdRows completions;  // N rows, grouped by prompt
};

// One GRPO step with one update: G completions per prompt sampled from the policy, scored by
// `reward(prompt_index, completion)`, group advantages, the loss against the policy that sampled
// them and the base, a step of `optimizer` (which should hold the adapters' parameters only).
// pixel_values (B,3,S,S), prompts B rows. The model must have adapters (add_lora).
PaliGemmaGrpoStats paligemma_grpo_step(model::PaliGemmaImpl& model, torch::optim::Optimizer& optimizer,
                                       const torch::Tensor& pixel_values, const IdRows& prompts,
                                       const std::function<double(size_t, const std::vector<int64_t>&)>& reward,
                                       const PaliGemmaGrpoOptions& options, at::Generator& generator);

}  // namespace lriad::train
