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
  auto angles = torch::outer(torch::arange(max_len, torch::kFloat64), inv);                            // (L, hd/2)
  cos = angles.cos().to(torch::kFloat32);
  sin = angles.sin().to(torch::kFloat32);
}

torch::Tensor Rotary::apply(const torch::Tensor& x, const torch::Tensor& positions) const {
  const int64_t half = x.size(-1) / 2;
  auto c = cos.to(x.device()).index_select(0, positions.reshape(-1)).view({positions.size(0), 1, positions.size(1), half});
  auto s = sin.to(x.device()).index_select(0, positions.reshape(-1)).view({positions.size(0), 1, positions.size(1), half});
  c = c.to(x.scalar_type());
  s = s.to(x.scalar_type());
  auto x1 = x.narrow(-1, 0, half), x2 = x.narrow(-1, half, half);  // rotate-half convention
  return torch::cat({x1 * c - x2 * s, x2 * c + x1 * s}, -1);
}

torch::Tensor attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                        const torch::Tensor& mask) {
  const int64_t groups = q.size(1) / k.size(1);
  auto kk = groups == 1 ? k : k.repeat_interleave(groups, 1);  // (B,H,Tk,hd)
  auto vv = groups == 1 ? v : v.repeat_interleave(groups, 1);
#if TORCH_VERSION_MAJOR >= 2
  return at::scaled_dot_product_attention(q, kk, vv, mask);
#else
  auto scores = torch::matmul(q, kk.transpose(-2, -1)) * (1.0 / std::sqrt(double(q.size(-1))));  // (B,H,T,Tk)
  scores = scores.masked_fill(mask.logical_not(), -std::numeric_limits<float>::infinity());
  return torch::matmul(torch::softmax(scores, -1), vv);
#endif
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
