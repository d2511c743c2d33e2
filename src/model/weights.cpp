// Module weights to and from safetensors, with strict name/dtype/shape checks.
#include "lriad/model/weights.h"

#include <cstring>
#include <sstream>

#include "lriad/io/error.h"
#include "lriad/io/st_tensor.h"

namespace lriad::model {

using io::from_st_tensor;
using io::shape_str;
using io::st_dtype_of;
using io::to_st_tensor;

namespace {

// Parameters and buffers with their dotted names, parameters first.
std::vector<std::pair<std::string, torch::Tensor>> named_tensors(torch::nn::Module& m) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& p : m.named_parameters()) out.emplace_back(p.key(), p.value());
  for (const auto& b : m.named_buffers()) out.emplace_back(b.key(), b.value());
  return out;
}

}  // namespace

io::StFile module_to_st(torch::nn::Module& module, const std::map<std::string, std::string>& metadata) {
  io::StFile file;
  file.metadata = metadata;
  for (const auto& [name, t] : named_tensors(module)) file.tensors[name] = to_st_tensor(t);
  return file;
}

void save_weights(torch::nn::Module& module, const std::string& path,
                  const std::map<std::string, std::string>& metadata) {
  io::write_safetensors(path, module_to_st(module, metadata));
}

void load_weights_from(torch::nn::Module& module, const io::StFile& file, const std::string& source) {
  torch::NoGradGuard no_grad;
  auto tensors = named_tensors(module);
  for (const auto& [name, t] : tensors) {
    auto it = file.tensors.find(name);
    if (it == file.tensors.end())
      throw Error("loading " + source + ": tensor '" + name + "' is missing from the file",
                  "the checkpoint was saved with another model config");
    const auto& st = it->second;
    if (st.shape != t.sizes().vec())
      throw Error("loading " + source + ": tensor '" + name + "' has shape " + shape_str(st.shape) +
                      ", config expects " + shape_str(t.sizes().vec()),
                  "the checkpoint was saved with another model config");
    if (st.dtype != st_dtype_of(t.scalar_type()))
      throw Error("loading " + source + ": tensor '" + name + "' has dtype " + st.dtype + ", the model uses " +
                  st_dtype_of(t.scalar_type()));
    t.copy_(from_st_tensor(st));
  }
  if (file.tensors.size() != tensors.size())
    for (const auto& [name, _] : file.tensors)
      if (std::none_of(tensors.begin(), tensors.end(), [&](const auto& p) { return p.first == name; }))
        throw Error("loading " + source + ": the file has tensor '" + name + "' that the model does not",
                    "the checkpoint was saved with another model config");
}

std::map<std::string, std::string> load_weights(torch::nn::Module& module, const std::string& path) {
  const io::StFile file = io::read_safetensors(path);
  load_weights_from(module, file, path);
  return file.metadata;
}

}  // namespace lriad::model
