// A Hugging Face checkpoint folder, as a user downloads it: config.json, the weights in one
// model.safetensors or in shards model-0000N-of-0000M.safetensors listed by
// model.safetensors.index.json, and tokenizer.model. Tensors may be stored as F32, F16 or BF16;
// each is read from its shard on its own (a 3B model is never held twice in memory) and converted
// to the dtype of the parameter it fills.
#pragma once
#include <string>
#include <vector>

#include "lriad/model/paligemma_config.h"

namespace lriad::model {

struct PaliGemmaImpl;

struct HfCheckpoint {
  std::string dir;
  PaliGemmaConfig config;
  std::vector<std::string> shards;  // the shard paths, sorted
  std::string tokenizer;            // dir/tokenizer.model ("" when absent)
};

// Reads config.json (PaliGemmaConfig::from_file) and the index, and checks that every shard the
// index names is there. Throws lriad::Error naming the folder or the missing file.
HfCheckpoint open_hf_checkpoint(const std::string& dir);

// The name a stored tensor has in lriad's PaliGemma (the original checkpoints' names): the
// layout of newer transformers ("model.language_model.layers.0...", "model.vision_tower...")
// is mapped onto the original one ("language_model.model.layers.0...", "vision_tower...").
std::string paligemma_tensor_name(const std::string& stored);

// Fills every parameter of `model` from the checkpoint, converting dtypes. Throws lriad::Error
// naming the tensor and its file on a missing tensor, a shape that does not match the config,
// a tensor the model has no place for, or an unreadable shard. The stored output head
// ("lm_head.weight"), tied to the embeddings in PaliGemma, is checked for its shape and skipped.
void load_hf_weights(PaliGemmaImpl& model, const HfCheckpoint& checkpoint);

}  // namespace lriad::model
