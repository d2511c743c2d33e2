// FLOP count of the policy's forward pass (see flops.h); mirrors vision_encoder.cpp and decoder.cpp.
#include "lriad/model/flops.h"

#include <algorithm>

namespace lriad::model {

FlopCount forward_flops(const ModelConfig& c, int64_t prompt_tokens, int64_t completion_tokens) {
  const double grid = c.image_size / c.patch_size, np = grid * grid;  // patch tokens
  const double e = c.vision_dim, d = c.dim;
  double vision = 0;  // multiply-adds
  if (c.vision_stem == "conv") {
    int k = 0;
    while ((1 << k) < c.patch_size) ++k;
    double in = 3, side = c.image_size;
    for (int i = 1; i <= k; ++i) {
      const double ch = std::max<double>(16, double(int64_t(c.vision_dim) >> (k - i)));
      side = (side + 1) / 2;  // stride 2, padding 1
      vision += side * side * in * ch * 9;
      in = ch;
    }
    vision += np * in * e;  // the final 1x1
  } else {
    vision += np * 3.0 * c.patch_size * c.patch_size * e;
  }
  if (c.reference == "knn") {
    vision += np * (2 * e + e * e);  // per-patch evidence MLP
    vision += 3 * d + d * d;         // the summary token
  }
  const double mlp = double(c.vision_mlp_ratio) * e;
  vision += c.vision_layers * (np * (4 * e * e + 2 * e * mlp) + 2 * np * np * e);  // qkv+proj+MLP, QK^T and AV
  vision += np * e * d;                                                            // to the decoder width

  const double t = double(c.image_tokens()) + double(prompt_tokens) + double(completion_tokens);
  const double hd = c.head_dim(), h = c.heads, kv = c.kv_heads, m = c.mlp_width();
  const double per_token = d * (h + 2 * kv) * hd + h * hd * d + 3 * d * m;  // qkv, out, SwiGLU
  const double decoder = c.layers * (t * per_token + 2 * t * t * h * hd);
  const double head = double(completion_tokens) * d * c.vocab_size;
  return {2 * vision, 2 * decoder, 2 * head};
}

}  // namespace lriad::model
