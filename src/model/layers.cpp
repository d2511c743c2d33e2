// RMSNorm, rotary embedding, attention and SwiGLU.
#include "lriad/model/layers.h"

#include <torch/version.h>

namespace lriad::model {

RMSNormImpl::RMSNormImpl(int64_t dim, double eps_) : eps(eps_) {
  weight = register_parameter("weight", torch::ones({dim}));
}

torch::Tensor RMSNormImpl::forward(const torch::Tensor& x) {
  auto xf = x.to(torch::kFloat32);
  auto norm = xf * torch::rsqrt(xf.pow(2).mean(-1, true) + eps);
  return (norm * weight.to(torch::kFloat32)).to(x.scalar_type());
}

Rotary::Rotary(int64_t head_dim, int64_t max_len, double theta) {
  auto inv = torch::pow(theta, -torch::arange(0, head_dim, 2, torch::kFloat64) / double(head_dim));  // (hd/2)
  auto angles = torch::outer(torch::arange(max_len, torch::kFloat64), inv);                          // (L, hd/2)
  cos = angles.cos().to(torch::kFloat32);
  sin = angles.sin().to(torch::kFloat32);
}

RotaryAngles Rotary::at(const torch::Tensor& positions, const torch::Tensor& like) const {
  const int64_t B = positions.size(0), T = positions.size(1), half = cos.size(1);
  const auto idx = positions.reshape(-1).to(like.device());  // (B*T), where the tables are read
  if (cos.device() != like.device()) {
    cos = cos.to(like.device());
    sin = sin.to(like.device());
  }
  auto pick = [&](const torch::Tensor& table) {
    return table.index_select(0, idx).view({B, 1, T, half});  // (B,1,T,hd/2) float32
  };
  return {pick(cos), pick(sin)};
}

torch::Tensor Rotary::apply(const torch::Tensor& x, const RotaryAngles& a) {
  const int64_t half = x.size(-1) / 2;
  const auto c = a.cos.to(x.scalar_type()), s = a.sin.to(x.scalar_type());  // no copy when x is float32
  auto x1 = x.narrow(-1, 0, half), x2 = x.narrow(-1, half, half);           // rotate-half convention
  return torch::cat({x1 * c - x2 * s, x2 * c + x1 * s}, -1);
}

torch::Tensor attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                        const torch::Tensor& mask) {
  const int64_t B = q.size(0), H = q.size(1), T = q.size(2), hd = q.size(3), Hkv = k.size(1), groups = H / Hkv;
  // 1. The g query heads of each key head as g*T rows: (B,H,T,hd) -> (B,Hkv,g*T,hd), rows (head, token).
  const auto qg = groups == 1 ? q : q.reshape({B, Hkv, groups * T, hd});
  const auto m = groups == 1 || mask.size(2) == 1 ? mask : mask.repeat({1, 1, groups, 1});  // (B,1,g*T|1,Tk)
#if TORCH_VERSION_MAJOR >= 2
  auto o = at::scaled_dot_product_attention(qg, k, v, m);  // (B,Hkv,g*T,hd)
#else
  auto scores = torch::matmul(qg, k.transpose(-2, -1)) * (1.0 / std::sqrt(double(hd)));  // (B,Hkv,g*T,Tk)
  scores = scores.masked_fill(m.logical_not(), -std::numeric_limits<float>::infinity());
  auto o = torch::matmul(torch::softmax(scores, -1), v);  // (B,Hkv,g*T,hd)
#endif
  // 2. Back to one row block per query head.
  return groups == 1 ? o : o.reshape({B, H, T, hd});
}

SwiGLUImpl::SwiGLUImpl(int64_t dim, int64_t hidden) {
  gate_up = register_module("gate_up", torch::nn::Linear(torch::nn::LinearOptions(dim, 2 * hidden).bias(false)));
  down = register_module("down", torch::nn::Linear(torch::nn::LinearOptions(hidden, dim).bias(false)));
}

torch::Tensor SwiGLUImpl::forward(const torch::Tensor& x) {
  auto gu = gate_up(x).chunk(2, -1);  // 2 x (B,T,hidden)
  return down(torch::silu(gu[0]) * gu[1]);
}

}  // namespace lriad::model
