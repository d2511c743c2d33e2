// Batched generation with a KV cache (or without, for checking), prefix-shared group sampling
// for GRPO, and batched per-token log-probabilities of given completions.
// Shapes: B = prompts, G = completions per prompt, N = B*G rows, C = max new tokens.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include <torch/torch.h>

#include "lriad/model/policy.h"
#include "lriad/model/sampling.h"

namespace lriad::model {

struct GenerateOptions {
  int group = 1;  // G completions per prompt
  int max_new_tokens = 48;
  SamplingParams sampling;
  bool use_cache = true;     // false recomputes the whole sequence every step (slow; for tests/bench)
  bool share_prefix = true;  // encode each prompt once and expand its cache to the G completions
  uint64_t seed = 0;
  // A data-parallel rank's share: its rows are rows first_row.. of a batch of rows_total (0 = its own
  // N), and sampling draws the whole batch's random numbers to take its own (model::sample_tokens).
  int64_t rows_total = 0, first_row = 0;
  int64_t eos_id = 2;
  int64_t pad_id = 0;
  // Words lriad writes into a chain instead of the policy (text::FamilySlot): after each token a
  // live row gains, drawn or written, `fill(row, its tokens so far)` may return tokens; they become
  // the row's next tokens, each with the policy's log-probability of it (temperature-scaled, as a
  // drawn one's), before the policy draws again. `row` is 0..N-1 of this call (not with rows_total).
  // Empty (the default): the policy draws every token.
  std::function<std::vector<int64_t>(int64_t row, const std::vector<int64_t>& so_far)> fill;
};

struct Generation {
  torch::Tensor tokens;     // (N,C) int64: row b*G+g is completion g of prompt b; pad after eos
  torch::Tensor mask;       // (N,C) bool: real tokens, the eos included
  torch::Tensor logprobs;   // (N,C) float: log p of each token (temperature-scaled); 0 where masked
  torch::Tensor lengths;    // (N) int64
  torch::Tensor truncated;  // (N) bool: no eos within max_new_tokens
  int64_t steps = 0;        // decoding steps run
};

// Runs without gradients. images (B,3,S,S); prompts: B token lists.
Generation generate(Policy& policy, const torch::Tensor& images, const TokenRows& prompts,
                    const GenerateOptions& options);

// log p(completion token t | prefix, tokens < t) under softmax(logits / temperature), in one
// batched forward pass (with gradients if enabled). tokens/mask (N,C) -> (N,C), 0 where masked.
torch::Tensor completion_logprobs(Policy& policy, const torch::Tensor& images, const TokenRows& prompts,
                                  const torch::Tensor& tokens, const torch::Tensor& mask, double temperature = 1.0);

}  // namespace lriad::model
