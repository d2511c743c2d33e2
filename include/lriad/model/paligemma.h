// PaliGemma in LibTorch: the architecture of Hugging Face transformers' PaliGemmaForConditionalGeneration
// (a SigLIP vision tower, a linear projector, a Gemma decoder), with the checkpoints' own tensor
// names, so a downloaded folder loads name for name (model/hf_checkpoint.h).
//   SigLIP: a patch convolution (with bias), learned positions, no class token; pre-norm blocks
//   (LayerNorm, attention with biases, GELU-tanh MLP), a final LayerNorm.
//   Projector: one linear layer; the image features are then divided by sqrt(hidden size).
//   Gemma: token embeddings times sqrt(hidden size) (image tokens too), RMSNorm scaled by (1 + w)
//   and computed in float32, multi-query attention with rotate-half RoPE, GeGLU (GELU-tanh gate),
//   a final RMSNorm, the output head tied to the embeddings.
//   Prompt layout: <image> x N, BOS, the prefix, "\n" (the prefix: attended to by every token),
//   then the suffix (causal) and EOS; prefix-LM attention.
// Shapes: B = batch, L = tokens, S = image side, N = image tokens, E = vision width, D = decoder
// width, V = vocabulary.
#pragma once
#include <vector>

#include <torch/torch.h>

#include "lriad/model/layers.h"
#include "lriad/model/paligemma_config.h"

namespace lriad::model {

struct PaliGemmaImpl : torch::nn::Module {
  explicit PaliGemmaImpl(const PaliGemmaConfig& config);

  // pixel_values (B,3,S,S) in [-1,1] (SigLIP's processor: x/255, mean 0.5, std 0.5) -> (B,N,D),
  // projected and divided by sqrt(config.feature_scale_dim), ready to take the <image> places.
  torch::Tensor image_features(const torch::Tensor& pixel_values);
  // input_ids (B,L) int64 with config.image_token_index at N places per row; valid (B,L) bool
  // (false: padding, attended by nobody); prefix (B,L) bool (true: attended to by every token,
  // HF's token_type_ids == 0; false: causal); positions (B,L) int64 -> logits (B,L,V) float32.
  torch::Tensor forward(const torch::Tensor& pixel_values, const torch::Tensor& input_ids, const torch::Tensor& valid,
                        const torch::Tensor& prefix, const torch::Tensor& positions);

  PaliGemmaConfig config;

  struct VisionLayer {
    torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr};
    torch::nn::Linear q{nullptr}, k{nullptr}, v{nullptr}, out{nullptr}, fc1{nullptr}, fc2{nullptr};
  };
  struct TextLayer {
    torch::Tensor attn_norm, mlp_norm;  // (D) Gemma RMSNorm weights: the scale is 1 + w
    torch::nn::Linear q{nullptr}, k{nullptr}, v{nullptr}, o{nullptr}, gate{nullptr}, up{nullptr}, down{nullptr};
  };
  torch::nn::Conv2d patch{nullptr};
  torch::nn::Embedding vision_positions{nullptr};
  std::vector<VisionLayer> vision_layers;
  torch::nn::LayerNorm vision_norm{nullptr};
  torch::nn::Linear projector{nullptr};
  torch::nn::Embedding embed{nullptr};
  std::vector<TextLayer> text_layers;
  torch::Tensor final_norm;  // (D)
  Rotary rotary;
};
TORCH_MODULE(PaliGemma);

// Gemma's RMSNorm: x / rms(x) * (1 + w), in float32, back to x's dtype. x (...,D), w (D).
torch::Tensor gemma_rms_norm(const torch::Tensor& x, const torch::Tensor& w, double eps);

// PaliGemma's positions: 1 for the first valid token, counting valid tokens only. valid (B,L) -> (B,L).
torch::Tensor paligemma_positions(const torch::Tensor& valid);

// Greedy decoding of one image and prompt (ids, <image> places included): `max_new` tokens by
// argmax, each step running the whole sequence again (the prompt as the prefix, the tokens so far
// causal); stops after EOS when stop_at_eos. pixel_values (1,3,S,S) -> the new ids.
std::vector<int64_t> greedy_generate(PaliGemmaImpl& model, const torch::Tensor& pixel_values,
                                     const std::vector<int64_t>& prompt, int max_new, bool stop_at_eos = true);

}  // namespace lriad::model
