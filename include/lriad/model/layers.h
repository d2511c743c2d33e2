// Building blocks shared by the vision encoder and the decoder: RMSNorm, rotary embedding,
// attention (one function hides LibTorch-version differences), SwiGLU.
// Shapes: B = batch, T = query tokens, Tk = key tokens, D = width, H = query heads,
// Hkv = key/value heads, hd = head width.
#pragma once
#include <torch/torch.h>

namespace lriad::model {

struct RMSNormImpl : torch::nn::Module {
  RMSNormImpl(int64_t dim, double eps);
  torch::Tensor forward(const torch::Tensor& x);  // (..., D) -> (..., D)
  torch::Tensor weight;
  double eps;
};
TORCH_MODULE(RMSNorm);

// The rotation of given positions, looked up once and applied to every layer's queries and keys.
struct RotaryAngles {
  torch::Tensor cos, sin;  // (B,1,T,hd/2) float32 on the activations' device
};

// Rotary position embedding tables for positions [0, max_len).
struct Rotary {
  Rotary() = default;
  Rotary(int64_t head_dim, int64_t max_len, double theta);
  // positions (B,T) int64 -> the angles of those positions, on `like`'s device (the tables move
  // there at the first call on a device, not at every forward pass)
  RotaryAngles at(const torch::Tensor& positions, const torch::Tensor& like) const;
  // x (B,H,T,hd) -> x rotated (B,H,T,hd), in x's dtype
  static torch::Tensor apply(const torch::Tensor& x, const RotaryAngles& angles);
  mutable torch::Tensor cos, sin;  // (max_len, hd/2) float32, on the device last read from
};

// Scaled dot-product attention with a boolean mask (true = may attend).
// q (B,H,T,hd), k/v (B,Hkv,Tk,hd) with H a multiple of Hkv, mask (B,1,T,Tk) or (B,1,1,Tk) ->
// (B,H,T,hd). Every query row must allow at least one key. Query head h reads key/value head
// h / (H/Hkv); the keys and values are never copied per query head (the query heads of one key
// head are stacked as rows of one product instead).
torch::Tensor attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                        const torch::Tensor& mask);

struct SwiGLUImpl : torch::nn::Module {
  SwiGLUImpl(int64_t dim, int64_t hidden);
  torch::Tensor forward(const torch::Tensor& x);      // (B,T,D) -> (B,T,D)
  torch::nn::Linear gate_up{nullptr}, down{nullptr};  // gate and up fused in one matmul
};
TORCH_MODULE(SwiGLU);

}  // namespace lriad::model
