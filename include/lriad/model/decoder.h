// Decoder-only language model: RMSNorm, rotary positions, grouped-query attention, SwiGLU,
// tied input/output embeddings. Works on embeddings so that image tokens can be prepended.
// Shapes: B = batch, T = new tokens, Tk = key tokens (cache + new), D = width, V = vocabulary.
#pragma once
#include <torch/torch.h>

#include "lriad/io/config.h"
#include "lriad/model/kv_cache.h"
#include "lriad/model/layers.h"

namespace lriad::model {

struct DecoderBlockImpl : torch::nn::Module {
  DecoderBlockImpl(const ModelConfig& config);
  // x (B,T,D), angles of the T positions (Rotary::at), mask (B,1,T,Tk). With a cache, the block's
  // keys/values are written at columns [cache.length, cache.length+T) of layer `layer` and the
  // queries attend to its first Tk columns: cache.length+T, or its capacity (unwritten columns
  // masked out).
  torch::Tensor forward(const torch::Tensor& x, const RotaryAngles& angles, const torch::Tensor& mask, KVCache* cache,
                        int64_t layer);
  RMSNorm attn_norm{nullptr}, mlp_norm{nullptr};
  torch::nn::Linear qkv{nullptr}, out{nullptr};  // q, k and v in one matmul
  SwiGLU mlp{nullptr};
  int64_t heads, kv_heads, head_dim;
};
TORCH_MODULE(DecoderBlock);

struct DecoderImpl : torch::nn::Module {
  explicit DecoderImpl(const ModelConfig& config);
  torch::Tensor embed(const torch::Tensor& ids);  // (B,T) int64 -> (B,T,D)
  // Runs the blocks and the final norm: (B,T,D) -> hidden (B,T,D). Advances cache->length by T.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& positions, const torch::Tensor& mask,
                        KVCache* cache = nullptr);
  torch::Tensor logits(const torch::Tensor& hidden);  // (..., D) -> (..., V), tied to the embedding
  torch::nn::Embedding tokens{nullptr};
  torch::nn::ModuleList blocks;
  RMSNorm norm{nullptr};
  Rotary rotary;
  int64_t layers, kv_heads, head_dim;
};
TORCH_MODULE(Decoder);

}  // namespace lriad::model
