// Token selection: temperature, top-k, top-p (nucleus), greedy; seeded and device-independent.
// Shapes: N = rows, V = vocabulary.
#pragma once
#include <cstdint>

#include <ATen/core/Generator.h>
#include <torch/torch.h>

namespace lriad::model {

struct SamplingParams {
  bool greedy = false;
  double temperature = 1.0;
  int top_k = 0;       // 0 = off
  double top_p = 1.0;  // 1 = off
};

// A CPU generator seeded with `seed`: uniform draws are made on the CPU and moved to the
// device, so a seed gives the same completions on every device and thread count.
at::Generator make_generator(uint64_t seed);

// Keeps the top_k largest logits and the smallest set whose probability reaches top_p;
// the rest become -inf. logits (N,V) -> (N,V).
torch::Tensor filter_logits(const torch::Tensor& logits, int top_k, double top_p);

struct Draw {
  torch::Tensor tokens;    // (N) int64
  torch::Tensor logprobs;  // (N) float: log softmax(logits / temperature) at the token (unfiltered)
};

// Greedy: argmax. Otherwise inverse-CDF sampling of softmax(filter(logits / temperature)).
// With rows_total > N, the generator draws rows_total uniforms a step and this call takes rows
// first_row .. first_row + N - 1 of them: a data-parallel rank's share of a batch then gets the very
// numbers one process sampling the whole batch would.
Draw sample_tokens(const torch::Tensor& logits, const SamplingParams& params, at::Generator& gen,
                   int64_t rows_total = 0, int64_t first_row = 0);

}  // namespace lriad::model
