// The shape of a Hugging Face PaliGemma checkpoint (its folder's config.json): a SigLIP vision
// tower, a linear projector and a Gemma decoder (PaliGemma) or a Gemma 2 one (PaliGemma 2). Read without torch, so that a wrong folder is
// refused before any weight is read. Fields left out of a published config.json take the values
// transformers' config classes default to (SiglipVisionConfig, GemmaConfig, PaliGemmaConfig).
#pragma once
#include <cstdint>
#include <string>

#include <nlohmann/json_fwd.hpp>

namespace lriad::model {

struct PaliGemmaConfig {
  // SigLIP vision tower ("vision_config")
  int64_t vision_hidden = 1152, vision_intermediate = 4304, vision_layers = 27, vision_heads = 16;
  int64_t image_size = 224, patch_size = 14;
  double vision_eps = 1e-6;
  // Gemma decoder ("text_config")
  int64_t hidden = 2048, intermediate = 16384, layers = 18, heads = 8, kv_heads = 1, head_dim = 256;
  int64_t vocab_size = 257216, max_positions = 8192;
  double rms_eps = 1e-6, rope_theta = 10000.0;
  // The projector maps vision_hidden to projection_dim, which must equal `hidden`.
  int64_t projection_dim = 2048;
  // Image features are divided by sqrt(feature_scale_dim) before they join the text: PaliGemma's
  // top-level "hidden_size", PaliGemma 2's decoder width.
  int64_t feature_scale_dim = 2048;
  int64_t image_token_index = 257152, pad_id = 0, bos_id = 2, eos_id = 1;
  std::string dtype = "float32";  // "torch_dtype": what the weights were saved as
  // PaliGemma 2 (text_config.model_type "gemma2"): norms after attention and around the MLP, scores
  // scaled by query_pre_attn_scalar^-0.5 and soft-capped (tanh(x / cap) * cap), every other layer
  // (the even ones) attending to the last sliding_window tokens only, the logits soft-capped.
  bool gemma2 = false;
  double query_pre_attn_scalar = 0;  // 0: head_dim (Gemma 1)
  double attn_softcap = 0;           // 0: none
  double final_softcap = 0;          // 0: none
  int64_t sliding_window = 0;        // 0: none

  int64_t image_tokens() const { return (image_size / patch_size) * (image_size / patch_size); }

  // Parses config.json's object; `source` names the file in errors. Throws lriad::Error for an
  // architecture other than PaliGemma with a Gemma or Gemma 2 decoder, or sizes that do not fit together.
  static PaliGemmaConfig from_hf(const nlohmann::json& j, const std::string& source);
  static PaliGemmaConfig from_file(const std::string& config_json);
};

}  // namespace lriad::model
