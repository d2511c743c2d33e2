// PaliGemma's config.json (see paligemma_config.h).
#include "lriad/model/paligemma_config.h"

#include <cmath>
#include <fstream>

#include <nlohmann/json.hpp>

#include "lriad/io/error.h"

namespace lriad::model {
namespace {

template <class T>
void take(const nlohmann::json& j, const char* key, T& into, const std::string& where) {
  if (!j.contains(key) || j.at(key).is_null()) return;
  try {
    into = j.at(key).get<T>();
  } catch (const nlohmann::json::exception&) {
    throw Error(where + ": \"" + key + "\" has the wrong type (" + j.at(key).dump() + ")",
                "config.json should be the one that came with the checkpoint");
  }
}

}  // namespace

PaliGemmaConfig PaliGemmaConfig::from_hf(const nlohmann::json& j, const std::string& source) {
  const std::string hint =
      "lriad imports PaliGemma checkpoints (PaliGemmaForConditionalGeneration with a Gemma decoder, e.g. "
      "google/paligemma-3b-pt-224)";
  if (!j.is_object()) throw Error(source + ": not a JSON object", hint);
  std::string model_type, architecture;
  take(j, "model_type", model_type, source);
  if (j.contains("architectures") && j["architectures"].is_array() && !j["architectures"].empty() &&
      j["architectures"][0].is_string())
    architecture = j["architectures"][0].get<std::string>();
  if (model_type != "paligemma" || (!architecture.empty() && architecture != "PaliGemmaForConditionalGeneration"))
    throw Error(source + ": unsupported architecture '" + (architecture.empty() ? model_type : architecture) +
                    "' (model_type '" + model_type + "')",
                hint);
  PaliGemmaConfig c;
  const nlohmann::json text = j.value("text_config", nlohmann::json::object());
  const nlohmann::json vision = j.value("vision_config", nlohmann::json::object());
  std::string text_type = "gemma";
  take(text, "model_type", text_type, source + " text_config");
  if (text_type != "gemma" && text_type != "gemma2")
    throw Error(source + ": unsupported decoder '" + text_type + "' (text_config.model_type)", hint);
  const std::string t = source + " text_config", v = source + " vision_config";
  c.gemma2 = text_type == "gemma2";
  if (c.gemma2) {  // Gemma2Config's defaults, each read when given
    c.query_pre_attn_scalar = 256;
    c.attn_softcap = 50.0;
    c.final_softcap = 30.0;
    c.sliding_window = 4096;
    take(text, "query_pre_attn_scalar", c.query_pre_attn_scalar, t);
    take(text, "attn_logit_softcapping", c.attn_softcap, t);
    take(text, "final_logit_softcapping", c.final_softcap, t);
    take(text, "sliding_window", c.sliding_window, t);
  }
  take(text, "hidden_size", c.hidden, t);
  take(text, "intermediate_size", c.intermediate, t);
  take(text, "num_hidden_layers", c.layers, t);
  take(text, "num_attention_heads", c.heads, t);
  take(text, "num_key_value_heads", c.kv_heads, t);
  take(text, "head_dim", c.head_dim, t);
  take(text, "vocab_size", c.vocab_size, t);
  take(j, "vocab_size", c.vocab_size, source);
  take(text, "max_position_embeddings", c.max_positions, t);
  take(text, "rms_norm_eps", c.rms_eps, t);
  take(text, "rope_theta", c.rope_theta, t);
  std::string act = "gelu_pytorch_tanh";
  take(text, "hidden_activation", act, t);
  if (act != "gelu_pytorch_tanh" && act != "gelu_tanh")
    throw Error(t + ": activation '" + act + "' is not supported (Gemma uses gelu_pytorch_tanh)", hint);
  take(vision, "hidden_size", c.vision_hidden, v);
  take(vision, "intermediate_size", c.vision_intermediate, v);
  take(vision, "num_hidden_layers", c.vision_layers, v);
  take(vision, "num_attention_heads", c.vision_heads, v);
  take(vision, "patch_size", c.patch_size, v);
  take(vision, "layer_norm_eps", c.vision_eps, v);
  // A published 224-px config.json gives num_image_tokens, not image_size.
  int64_t tokens = 0;
  take(vision, "num_image_tokens", tokens, v);
  take(text, "num_image_tokens", tokens, t);
  if (vision.contains("image_size"))
    take(vision, "image_size", c.image_size, v);
  else if (tokens > 0)
    c.image_size = int64_t(std::llround(std::sqrt(double(tokens)))) * c.patch_size;
  c.projection_dim = c.hidden;
  take(vision, "projection_dim", c.projection_dim, v);
  take(j, "projection_dim", c.projection_dim, source);
  // PaliGemma divides the image features by the top-level hidden_size (equal to the decoder's in the
  // published checkpoints); PaliGemma 2 by the decoder's (its converter drops the top-level one).
  c.feature_scale_dim = c.hidden;
  if (!c.gemma2) take(j, "hidden_size", c.feature_scale_dim, source);
  take(j, "image_token_index", c.image_token_index, source);
  take(j, "pad_token_id", c.pad_id, source);
  take(j, "bos_token_id", c.bos_id, source);
  take(j, "eos_token_id", c.eos_id, source);
  take(j, "torch_dtype", c.dtype, source);
  auto bad = [&](const std::string& what) {
    throw Error(source + ": " + what, "config.json should be the one that came with the checkpoint");
  };
  if (c.hidden <= 0 || c.heads <= 0 || c.kv_heads <= 0 || c.head_dim <= 0 || c.layers <= 0 || c.vocab_size <= 0 ||
      c.vision_hidden <= 0 || c.vision_heads <= 0 || c.vision_layers <= 0 || c.patch_size <= 0 || c.image_size <= 0)
    bad("sizes must be positive");
  if (c.heads % c.kv_heads) bad("num_attention_heads must be a multiple of num_key_value_heads");
  if (c.vision_hidden % c.vision_heads) bad("vision hidden_size must be a multiple of num_attention_heads");
  if (c.image_size % c.patch_size) bad("image_size must be a multiple of patch_size");
  if (c.projection_dim != c.hidden)
    bad("projection_dim " + std::to_string(c.projection_dim) + " differs from the decoder's hidden_size " +
        std::to_string(c.hidden));
  if (tokens > 0 && tokens != c.image_tokens())
    bad("num_image_tokens " + std::to_string(tokens) + " does not fit image_size/patch_size");
  if (c.image_token_index < 0 || c.image_token_index >= c.vocab_size)
    bad("image_token_index is outside the vocabulary");
  return c;
}

PaliGemmaConfig PaliGemmaConfig::from_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error("cannot read " + path, "a Hugging Face checkpoint folder holds config.json");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw Error(path + " is not valid JSON: " + e.what());
  }
  return from_hf(j, path);
}

}  // namespace lriad::model
