// ViT vision encoder: conv patch embedding, 2-D sin-cos or learned positions, pre-norm blocks,
// output projected to the decoder width as image tokens.
// Shapes: B = batch, S = image side, N = image tokens (S/patch)^2, E = vision width, D = decoder width.
#pragma once
#include <torch/torch.h>

#include "lriad/io/config.h"

namespace lriad::model {

struct VitBlockImpl : torch::nn::Module {
  VitBlockImpl(int64_t dim, int64_t heads, int64_t mlp_hidden);
  torch::Tensor forward(const torch::Tensor& x);  // (B,N,E) -> (B,N,E)
  torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr};
  torch::nn::Linear qkv{nullptr}, proj{nullptr}, fc1{nullptr}, fc2{nullptr};
  int64_t heads;
};
TORCH_MODULE(VitBlock);

struct VisionEncoderImpl : torch::nn::Module {
  explicit VisionEncoderImpl(const ModelConfig& config);
  // (B,3,S,S) RGB in [0,1] -> (B,N,D); with model.reference "knn", (B,4,S,S) whose fourth
  // channel is the deviation map -> (B,N+1,D): each patch token gets an embedding of the patch's
  // peak deviation, and one more token summarises the whole map (its peak and mean).
  torch::Tensor forward(const torch::Tensor& images);
  torch::nn::Conv2d patch{nullptr};     // vision_stem "patch"
  torch::nn::Sequential stem{nullptr};  // vision_stem "conv"
  torch::Tensor positions;              // (1,N,E): a buffer (sincos) or a parameter (learned)
  torch::nn::ModuleList blocks;
  torch::nn::LayerNorm norm{nullptr};
  torch::nn::Linear out{nullptr};
  torch::nn::Sequential evidence{nullptr};  // reference "knn": (.., 2) features -> (.., E)
  torch::nn::Sequential summary{nullptr};   // reference "knn": (B, 3) -> (B, D) summary token
  int64_t patch_size = 8;
};
TORCH_MODULE(VisionEncoder);

// Fixed 2-D sin-cos position table (grid x grid, dim) -> (grid*grid, dim).
torch::Tensor sincos_2d(int64_t grid, int64_t dim);

}  // namespace lriad::model
