// The vision-language policy (PaliGemma-like prefix LM): image tokens and the prompt form a
// prefix with full attention; the completion is causal. Rows are left-padded inside the prompt,
// so a padded batch gives the logits of its rows run one at a time.
// Shapes: B = batch, N = image tokens, P = prompt tokens, Lp = N + P, C = completion tokens,
// D = width, V = vocabulary.
#pragma once
#include <vector>

#include <torch/torch.h>

#include "lriad/io/config.h"
#include "lriad/model/decoder.h"
#include "lriad/model/vision_encoder.h"

namespace lriad::model {

using TokenRows = std::vector<std::vector<int64_t>>;

struct PrefixBatch {
  torch::Tensor embeds;  // (B,Lp,D)
  torch::Tensor valid;   // (B,Lp) bool; false on padding
};

struct PolicyImpl : torch::nn::Module {
  explicit PolicyImpl(const ModelConfig& config);  // config.vocab_size must be > 0

  // [image tokens][left padding][prompt ids] for each row. images (B,3,S,S).
  PrefixBatch prefix(const torch::Tensor& images, const TokenRows& prompts);
  // Logits predicting each completion token from the prefix and the tokens before it.
  // completion (B,C) int64, right-padded; completion_mask (B,C) bool -> (B,C,V).
  torch::Tensor completion_logits(const torch::Tensor& images, const TokenRows& prompts,
                                  const torch::Tensor& completion, const torch::Tensor& completion_mask);
  torch::Device device() const;

  ModelConfig config;
  VisionEncoder vision{nullptr};
  Decoder decoder{nullptr};
};
TORCH_MODULE(Policy);

// Builds a policy with seeded initialisation: normal(0, init_std) weights, zero biases, and
// residual output projections scaled by 1/sqrt(2 * layers).
Policy make_policy(const ModelConfig& config, uint64_t seed);

// Rotary positions that skip padding: (cumsum(valid) - 1) clamped at 0. valid (B,T) -> (B,T).
torch::Tensor positions_from_valid(const torch::Tensor& valid);
// Prefix-LM mask: key j is visible from query i if valid[j] and (j < prefix_len or j <= i).
// valid (B,T) -> (B,1,T,T) bool.
torch::Tensor prefix_lm_mask(const torch::Tensor& valid, int64_t prefix_len);

// Parameter counts per component ("vision", "decoder", "total").
std::vector<std::pair<std::string, int64_t>> parameter_counts(PolicyImpl& policy);

}  // namespace lriad::model
