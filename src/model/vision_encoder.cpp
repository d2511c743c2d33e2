// ViT vision encoder.
#include "lriad/model/vision_encoder.h"

#include <algorithm>

#include "lriad/model/layers.h"

namespace lriad::model {

using torch::nn::Linear;
using torch::nn::LinearOptions;

VitBlockImpl::VitBlockImpl(int64_t dim, int64_t heads_, int64_t mlp_hidden) : heads(heads_) {
  norm1 = register_module("norm1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim})));
  qkv = register_module("qkv", Linear(LinearOptions(dim, 3 * dim)));
  proj = register_module("proj", Linear(LinearOptions(dim, dim)));
  norm2 = register_module("norm2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim})));
  fc1 = register_module("fc1", Linear(LinearOptions(dim, mlp_hidden)));
  fc2 = register_module("fc2", Linear(LinearOptions(mlp_hidden, dim)));
}

torch::Tensor VitBlockImpl::forward(const torch::Tensor& x) {
  const int64_t B = x.size(0), N = x.size(1), E = x.size(2), hd = E / heads;
  auto qkv_ = qkv(norm1(x)).view({B, N, 3, heads, hd}).permute({2, 0, 3, 1, 4});  // (3,B,H,N,hd)
  auto mask = torch::ones({1, 1, 1, N}, torch::TensorOptions().dtype(torch::kBool).device(x.device()));
  auto a = attention(qkv_[0], qkv_[1], qkv_[2], mask.expand({B, 1, N, N}));  // (B,H,N,hd)
  auto h = x + proj(a.transpose(1, 2).reshape({B, N, E}));
  return h + fc2(torch::gelu(fc1(norm2(h))));
}

torch::Tensor sincos_2d(int64_t grid, int64_t dim) {
  const int64_t quarter = dim / 4;
  auto omega = 1.0 / torch::pow(10000.0, torch::arange(quarter, torch::kFloat64) / double(quarter));  // (dim/4)
  auto coords = torch::arange(grid, torch::kFloat64);
  auto yy = coords.view({grid, 1}).expand({grid, grid}).reshape({-1});  // (grid*grid)
  auto xx = coords.view({1, grid}).expand({grid, grid}).reshape({-1});
  auto oy = torch::outer(yy, omega), ox = torch::outer(xx, omega);       // (grid*grid, dim/4)
  auto table = torch::cat({oy.sin(), oy.cos(), ox.sin(), ox.cos()}, 1);  // (grid*grid, 4*(dim/4))
  if (table.size(1) < dim)
    table = torch::cat({table, torch::zeros({table.size(0), dim - table.size(1)}, table.options())}, 1);
  return table.to(torch::kFloat32);
}

VisionEncoderImpl::VisionEncoderImpl(const ModelConfig& c) {
  const int64_t grid = c.image_size / c.patch_size;
  if (c.vision_stem == "conv") {
    // k stride-2 3x3 convs (channels doubling up to vision_dim), GELU between, then a 1x1.
    int k = 0;
    while ((1 << k) < c.patch_size) ++k;
    stem = register_module("stem", torch::nn::Sequential());
    int64_t in = 3;
    for (int i = 1; i <= k; ++i) {
      const int64_t ch = std::max<int64_t>(16, int64_t(c.vision_dim) >> (k - i));
      stem->push_back(torch::nn::Conv2d(torch::nn::Conv2dOptions(in, ch, 3).stride(2).padding(1)));
      stem->push_back(torch::nn::GELU());
      in = ch;
    }
    stem->push_back(torch::nn::Conv2d(torch::nn::Conv2dOptions(in, c.vision_dim, 1)));
  } else {
    patch = register_module(
        "patch", torch::nn::Conv2d(torch::nn::Conv2dOptions(3, c.vision_dim, c.patch_size).stride(c.patch_size)));
  }
  auto table = sincos_2d(grid, c.vision_dim).unsqueeze(0);  // (1,N,E)
  if (c.vision_positions == "learned")
    positions = register_parameter("positions", table * 0.02);
  else
    positions = register_buffer("positions", table);
  blocks = register_module("blocks", torch::nn::ModuleList());
  for (int i = 0; i < c.vision_layers; ++i)
    blocks->push_back(VitBlock(c.vision_dim, c.vision_heads, int64_t(c.vision_dim) * c.vision_mlp_ratio));
  norm = register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({c.vision_dim})));
  out = register_module("out", Linear(LinearOptions(c.vision_dim, c.dim)));
  patch_size = c.patch_size;
  if (c.reference == "knn") {
    evidence =
        register_module("evidence", torch::nn::Sequential(Linear(LinearOptions(2, c.vision_dim)), torch::nn::GELU(),
                                                          Linear(LinearOptions(c.vision_dim, c.vision_dim))));
    summary = register_module("summary", torch::nn::Sequential(Linear(LinearOptions(3, c.dim)), torch::nn::GELU(),
                                                               Linear(LinearOptions(c.dim, c.dim))));
  }
}

namespace {
// Deviation d >= 0 as features that stay well scaled: (min(d, 8), log(d + 0.05)).
torch::Tensor deviation_features(const torch::Tensor& d) {
  return torch::stack({d.clamp_max(8.0), (d + 0.05).log()}, -1);
}
}  // namespace

torch::Tensor VisionEncoderImpl::forward(const torch::Tensor& images) {
  const bool with_reference = static_cast<bool>(evidence);
  const int64_t channels = with_reference ? 4 : 3;
  if (images.dim() != 4 || images.size(1) != channels)
    throw std::invalid_argument("vision encoder: expected images (B," + std::to_string(channels) + ",S,S), got " +
                                c10::str(images.sizes()));
  const auto rgb = with_reference ? images.narrow(1, 0, 3) : images;
  const auto input = (rgb - 0.5) * 4.0;                 // roughly unit-scale
  auto x = stem ? stem->forward(input) : patch(input);  // (B,E,S/p,S/p)
  x = x.flatten(2).transpose(1, 2) + positions;         // (B,N,E)
  torch::Tensor summary_token;
  if (with_reference) {
    const auto dev = images.narrow(1, 3, 1).to(x.scalar_type());                  // (B,1,S,S)
    const auto peak = torch::max_pool2d(dev, patch_size, patch_size).flatten(1);  // (B,N)
    x = x + evidence->forward(deviation_features(peak));                          // (B,N,E)
    const auto flat = dev.flatten(1);                                             // (B,S*S)
    const auto stats = torch::stack(
        {flat.amax(1), flat.mean(1), std::get<0>(flat.topk(std::min<int64_t>(16, flat.size(1)), 1)).mean(1)},
        1);                                                               // (B,3)
    summary_token = summary->forward((stats + 0.05).log()).unsqueeze(1);  // (B,1,D)
  }
  for (auto& block : *blocks) x = block->as<VitBlock>()->forward(x);
  auto tokens = out(norm(x));                                                                    // (B,N,D)
  if (with_reference) tokens = torch::cat({tokens, summary_token.to(tokens.scalar_type())}, 1);  // (B,N+1,D)
  return tokens;
}

}  // namespace lriad::model
