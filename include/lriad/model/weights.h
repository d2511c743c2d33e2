// Module weights <-> safetensors files (the format Python's safetensors and transformers read).
#pragma once
#include <map>
#include <string>

#include <torch/torch.h>

#include "lriad/io/safetensors.h"

namespace lriad::model {

// Every parameter and buffer of `module` by its dotted name ("decoder.blocks.0.qkv.weight").
io::StFile module_to_st(torch::nn::Module& module, const std::map<std::string, std::string>& metadata = {});

// Writes atomically (temporary name, then rename).
void save_weights(torch::nn::Module& module, const std::string& path,
                  const std::map<std::string, std::string>& metadata = {});

// Strict load: every tensor of the module must be in the file with the same dtype and shape,
// and the file may hold no other tensor; the error names the first tensor that differs.
// Returns the file's metadata.
std::map<std::string, std::string> load_weights(torch::nn::Module& module, const std::string& path);
void load_weights_from(torch::nn::Module& module, const io::StFile& file, const std::string& source);

}  // namespace lriad::model
