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
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <opencv2/core.hpp>
#include <torch/torch.h>

#include "lriad/model/kv_cache.h"
#include "lriad/model/layers.h"
#include "lriad/model/paligemma_config.h"

namespace lriad::model {

// LoRA (low-rank adapters): a targeted projection W x becomes W x + (alpha / rank) B A x, with A
// (rank, in) drawn as PEFT draws it (uniform, +-1/sqrt(in)) and B (out, rank) zero, so a fresh
// adapter changes nothing. The base weights are frozen; only A and B train.
struct LoraOptions {
  int64_t rank = 8;
  double alpha = 16;
  // Projections adapted, by their checkpoint names' last part.
  std::vector<std::string> targets = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};
  bool vision = false;  // the vision tower's projections too (else it stays as loaded)
  uint64_t seed = 0;
};

struct PaliGemmaImpl : torch::nn::Module {
  explicit PaliGemmaImpl(const PaliGemmaConfig& config);

  // pixel_values (B,3,S,S) in [-1,1] (SigLIP's processor: x/255, mean 0.5, std 0.5) -> (B,N,D),
  // projected and divided by sqrt(config.feature_scale_dim), ready to take the <image> places.
  torch::Tensor image_features(const torch::Tensor& pixel_values);
  // input_ids (B,L) int64 with config.image_token_index at N places per row; valid (B,L) bool
  // (false: padding, attended by nobody); prefix (B,L) bool (true: attended to by every token,
  // HF's token_type_ids == 0; false: causal); positions (B,L) int64 -> logits (B,L,V) float32.
  // With `project_at` (B,K) int64, only those positions go through the output head -> (B,K,V): a
  // 257k-piece vocabulary over every image token would be most of a training step's memory.
  torch::Tensor forward(const torch::Tensor& pixel_values, const torch::Tensor& input_ids, const torch::Tensor& valid,
                        const torch::Tensor& prefix, const torch::Tensor& positions,
                        const torch::Tensor& project_at = {});

  // Decoding with a KV cache (generation): prefill runs the prompt (ids, <image> places included)
  // once, all of it attending to all of it as HF's generate does, into a cache of P + max_new
  // columns, repeated for `rows` completions (a GRPO group shares one prompt pass); last_logits
  // gets the prompt's last logits (rows,V). step feeds one token per row (B) and returns the next
  // logits (B,V); each new token attends to everything before it. No gradients.
  KVCache prefill(const torch::Tensor& pixel_values, const std::vector<int64_t>& prompt, int64_t rows, int64_t max_new,
                  torch::Tensor* last_logits);
  torch::Tensor step(const torch::Tensor& tokens, KVCache& cache);

  // The merged embeddings (B,L,D) of input_ids with the image features at the <image> places.
  torch::Tensor embed_prompt(const torch::Tensor& pixel_values, const torch::Tensor& input_ids);
  // The decoder from embeddings h (B,T,D) (before the sqrt(D) normaliser): mask (B,T,Tk) bool,
  // positions (B,T); with a cache, the keys and values join it and Tk = cache->length + T.
  // -> logits (B,T,V) float32; with `project_at` (B,K) int64, of those positions only -> (B,K,V).
  torch::Tensor decode(torch::Tensor h, const torch::Tensor& mask, const torch::Tensor& positions,
                       KVCache* cache = nullptr, const torch::Tensor& project_at = {});

  PaliGemmaConfig config;

  // Adapters (see LoraOptions). add_lora freezes every base weight and registers the adapters'
  // parameters under the child module "lora" (the only parameters left to train).
  void add_lora(const LoraOptions& options);
  bool has_lora() const { return !adapters.empty(); }
  // The adapters' parameters, under the names PEFT saves them with:
  // "base_model.model.<projection>.lora_A.weight" (rank,in) and "....lora_B.weight" (out,rank).
  std::vector<std::pair<std::string, torch::Tensor>> lora_tensors() const;
  // Folds each adapter into its projection's weight (W += alpha/rank B A) and removes the adapters.
  void merge_lora();
  // Off: the forward pass is the base model's (GRPO's KL reference, without a second copy).
  bool adapters_enabled = true;
  // Each block's activations recomputed in the backward pass instead of kept (model/recompute.h):
  // the memory of one block's activations instead of all of them, for one more forward pass. The
  // vision tower's blocks only when it trains (a frozen tower keeps no graph anyway).
  bool recompute_blocks = false;
  LoraOptions lora;

  // Every projection of the checkpoint by its name ("language_model.model.layers.0.self_attn.q_proj").
  std::vector<std::pair<std::string, torch::nn::Linear>> projections;
  struct Adapter {
    torch::Tensor a, b;  // (rank,in), (out,rank)
    double scale = 0;    // alpha / rank
  };
  std::map<const torch::nn::LinearImpl*, Adapter> adapters;
  torch::Tensor project(torch::nn::Linear& layer, const torch::Tensor& x) const;  // W x (+ adapter)
  // Gemma 2's attention: q (B,H,T,hd), k/v (B,Hk,Tk,hd), mask (B,1,T,Tk) bool; scores scaled by
  // query_pre_attn_scalar^-0.5 and soft-capped; on a sliding layer, query t (sequence index first + t)
  // sees only the last sliding_window keys. -> (B,H,T,hd)
  torch::Tensor gemma2_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                 const torch::Tensor& mask, bool sliding, int64_t first) const;
  // A projection registered on `parent` as `name` and listed in `projections` as at + "." + name.
  torch::nn::Linear projection(torch::nn::Module& parent, const std::string& at, const std::string& name, int64_t in,
                               int64_t out, bool bias);

  struct VisionLayer {
    torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr};
    torch::nn::Linear q{nullptr}, k{nullptr}, v{nullptr}, out{nullptr}, fc1{nullptr}, fc2{nullptr};
  };
  struct TextLayer {
    torch::Tensor attn_norm, mlp_norm;  // (D) Gemma RMSNorm weights: the scale is 1 + w
    // Gemma 2 only: after attention (its checkpoints' post_attention_layernorm; then mlp_norm is
    // pre_feedforward_layernorm) and after the MLP.
    torch::Tensor post_attn_norm, post_mlp_norm;
    bool sliding = false;  // Gemma 2's even layers: the last sliding_window tokens only
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

// Writes the adapters (lora_tensors) to `path` (safetensors, atomically) with their rank, alpha and
// targets as metadata; load_lora reads them into a model that add_lora gave the same adapters,
// strictly (names, shapes), and throws lriad::Error naming the file otherwise.
// `extra` joins the metadata (a run's stage and step).
void save_lora(const PaliGemmaImpl& model, const std::string& path,
               const std::map<std::string, std::string>& extra = {});
void load_lora(PaliGemmaImpl& model, const std::string& path);

// RAII: the model's adapters off for a scope (the reference policy's log-probabilities).
class AdaptersOff {
 public:
  explicit AdaptersOff(PaliGemmaImpl& model) : model_(model), was_(model.adapters_enabled) {
    model.adapters_enabled = false;
  }
  ~AdaptersOff() { model_.adapters_enabled = was_; }
  AdaptersOff(const AdaptersOff&) = delete;
  AdaptersOff& operator=(const AdaptersOff&) = delete;

 private:
  PaliGemmaImpl& model_;
  bool was_;
};

// Gemma's RMSNorm: x / rms(x) * (1 + w), in float32, back to x's dtype. x (...,D), w (D).
torch::Tensor gemma_rms_norm(const torch::Tensor& x, const torch::Tensor& w, double eps);

// PaliGemma's positions: 1 for the first valid token, counting valid tokens only. valid (B,L) -> (B,L).
torch::Tensor paligemma_positions(const torch::Tensor& valid);

// An image (CV_32FC3 RGB in [0,1], any size) as SigLIP's processor gives it: resized to side x side
// (the processor uses PIL's antialiased bicubic; here OpenCV's area average when shrinking and bicubic
// when enlarging: close to it, not the same pixels), then (x - 0.5) / 0.5. -> (1,3,side,side) in [-1,1].
torch::Tensor siglip_pixels(const cv::Mat& rgb, int64_t side);

// The prompt PaliGemma's processor builds for `text` (already tokenized as `text_ids`, "\n" included):
// <image> x N, BOS, text_ids.
std::vector<int64_t> paligemma_prompt(const PaliGemmaConfig& config, const std::vector<int>& text_ids);

// The options a PaliGemma command takes: "fp32" | "bf16" -> the weights' dtype; "cpu" | "cuda" ->
// the device, refused when this LibTorch sees no CUDA device. `what` names the option in errors.
torch::ScalarType paligemma_dtype(const std::string& name, const std::string& what);
torch::Device paligemma_device(const std::string& name, const std::string& what);

// Greedy decoding of one image and prompt (ids, <image> places included): `max_new` tokens by
// argmax with the KV cache (the prompt attending to all of itself, the new tokens causal); stops
// after EOS when stop_at_eos. pixel_values (1,3,S,S) -> the new ids.
std::vector<int64_t> greedy_generate(PaliGemmaImpl& model, const torch::Tensor& pixel_values,
                                     const std::vector<int64_t>& prompt, int max_new, bool stop_at_eos = true);

}  // namespace lriad::model
