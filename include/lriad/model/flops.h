// Model FLOPs of one forward pass, counted from the architecture (matrix products and
// attention; norms, activations and softmax are left out, as in the usual MFU convention).
// A training step (forward + backward) costs 3x the forward FLOPs.
#pragma once
#include <cstdint>

#include "lriad/io/config.h"

namespace lriad::model {

struct FlopCount {
  double vision = 0;   // stem, reference evidence MLPs, ViT blocks, projection to the decoder width
  double decoder = 0;  // decoder blocks over image + prompt + completion tokens
  double head = 0;     // output projection on the completion positions
  double total() const { return vision + decoder + head; }
};

// FLOPs (2 per multiply-add) of `completion_logits` for ONE row: `prompt_tokens` prompt tokens
// and `completion_tokens` completion positions. Attention is counted over the full sequence
// (the masked scores are computed too).
FlopCount forward_flops(const ModelConfig& config, int64_t prompt_tokens, int64_t completion_tokens);

}  // namespace lriad::model
