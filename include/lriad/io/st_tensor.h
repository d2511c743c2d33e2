// One safetensors tensor <-> a LibTorch tensor (the model's weights and the normal reference's banks
// are both stored this way).
#pragma once
#include <string>
#include <vector>

#include <torch/types.h>

#include "lriad/io/safetensors.h"

namespace lriad::io {

StTensor to_st_tensor(const torch::Tensor& t);             // copied to CPU, contiguous
torch::Tensor from_st_tensor(const StTensor& t);           // a new CPU tensor; checks the byte length against the shape
std::string st_dtype_of(torch::ScalarType type);           // "F32", "BF16", ...
std::string shape_str(const std::vector<int64_t>& shape);  // "[2,3]"

}  // namespace lriad::io
