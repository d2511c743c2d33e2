// Decoder-only transformer with an optional KV cache.
#include "lriad/model/decoder.h"

#include "lriad/io/error.h"

namespace lriad::model {

using torch::nn::Linear;
using torch::nn::LinearOptions;

DecoderBlockImpl::DecoderBlockImpl(const ModelConfig& c)
    : heads(c.heads), kv_heads(c.kv_heads), head_dim(c.head_dim()) {
  attn_norm = register_module("attn_norm", RMSNorm(c.dim, c.norm_eps));
  qkv = register_module("qkv", Linear(LinearOptions(c.dim, (heads + 2 * kv_heads) * head_dim).bias(false)));
  out = register_module("out", Linear(LinearOptions(heads * head_dim, c.dim).bias(false)));
  mlp_norm = register_module("mlp_norm", RMSNorm(c.dim, c.norm_eps));
  mlp = register_module("mlp", SwiGLU(c.dim, c.mlp_width()));
}

torch::Tensor DecoderBlockImpl::forward(const torch::Tensor& x, const RotaryAngles& angles, const torch::Tensor& mask,
                                        KVCache* cache, int64_t layer) {
  const int64_t B = x.size(0), T = x.size(1);
  auto parts = qkv(attn_norm(x)).split({heads * head_dim, kv_heads * head_dim, kv_heads * head_dim}, -1);
  auto q = Rotary::apply(parts[0].view({B, T, heads, head_dim}).transpose(1, 2), angles);     // (B,H,T,hd)
  auto k = Rotary::apply(parts[1].view({B, T, kv_heads, head_dim}).transpose(1, 2), angles);  // (B,Hkv,T,hd)
  auto v = parts[2].view({B, T, kv_heads, head_dim}).transpose(1, 2);                         // (B,Hkv,T,hd)
  if (cache) {
    const int64_t start = cache->length;
    cache->k[size_t(layer)].narrow(2, start, T).copy_(k);
    cache->v[size_t(layer)].narrow(2, start, T).copy_(v);
    // The queries see the mask's Tk columns: start+T, or the whole capacity with the unwritten
    // columns masked (a decoding step: narrowed to its full length the cache stays contiguous,
    // where a shorter view would be copied by every product).
    const int64_t Tk = mask.size(-1);
    if (Tk < start + T || Tk > cache->capacity())
      throw Error("decoder: a mask of " + std::to_string(Tk) + " key columns for a cache holding " +
                  std::to_string(start + T) + " of " + std::to_string(cache->capacity()));
    k = cache->k[size_t(layer)].narrow(2, 0, Tk);  // (B,Hkv,Tk,hd)
    v = cache->v[size_t(layer)].narrow(2, 0, Tk);
  }
  auto a = attention(q, k, v, mask);  // (B,H,T,hd)
  auto h = x + out(a.transpose(1, 2).reshape({B, T, heads * head_dim}));
  return h + mlp(mlp_norm(h));
}

DecoderImpl::DecoderImpl(const ModelConfig& c)
    : rotary(c.head_dim(), c.max_seq_len, c.rope_theta),
      layers(c.layers),
      kv_heads(c.kv_heads),
      head_dim(c.head_dim()) {
  tokens = register_module("tokens", torch::nn::Embedding(c.vocab_size, c.dim));
  blocks = register_module("blocks", torch::nn::ModuleList());
  for (int i = 0; i < c.layers; ++i) blocks->push_back(DecoderBlock(c));
  norm = register_module("norm", RMSNorm(c.dim, c.norm_eps));
}

torch::Tensor DecoderImpl::embed(const torch::Tensor& ids) { return tokens(ids); }

torch::Tensor DecoderImpl::forward(const torch::Tensor& x, const torch::Tensor& positions, const torch::Tensor& mask,
                                   KVCache* cache) {
  auto h = x;
  const RotaryAngles angles = rotary.at(positions, x);  // once for every layer
  for (int64_t l = 0; l < layers; ++l) h = blocks[size_t(l)]->as<DecoderBlock>()->forward(h, angles, mask, cache, l);
  if (cache) cache->length += x.size(1);
  return norm(h);
}

torch::Tensor DecoderImpl::logits(const torch::Tensor& hidden) {
  return torch::matmul(hidden, tokens->weight.t().to(hidden.scalar_type()));
}

}  // namespace lriad::model
