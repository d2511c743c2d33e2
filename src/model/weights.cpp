// Module weights to and from safetensors, with strict name/dtype/shape checks.
#include "lriad/model/weights.h"

#include <cstring>
#include <sstream>

#include "lriad/io/error.h"

namespace lriad::model {
namespace {

std::string shape_str(const std::vector<int64_t>& s) {
  std::ostringstream o;
  o << "[";
  for (size_t i = 0; i < s.size(); ++i) o << (i ? "," : "") << s[i];
  return o.str() + "]";
}

torch::ScalarType scalar_type_of(const std::string& dtype) {
  static const std::map<std::string, torch::ScalarType> types = {
      {"F32", torch::kFloat32}, {"F64", torch::kFloat64}, {"F16", torch::kFloat16}, {"BF16", torch::kBFloat16},
      {"I64", torch::kInt64},   {"I32", torch::kInt32},   {"I16", torch::kInt16},   {"I8", torch::kInt8},
      {"U8", torch::kUInt8},    {"BOOL", torch::kBool}};
  auto it = types.find(dtype);
  if (it == types.end()) throw Error("unsupported safetensors dtype " + dtype);
  return it->second;
}

// Parameters and buffers with their dotted names, parameters first.
std::vector<std::pair<std::string, torch::Tensor>> named_tensors(torch::nn::Module& m) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& p : m.named_parameters()) out.emplace_back(p.key(), p.value());
  for (const auto& b : m.named_buffers()) out.emplace_back(b.key(), b.value());
  return out;
}

}  // namespace

std::string st_dtype_of(torch::ScalarType type) {
  switch (type) {
    case torch::kFloat32: return "F32";
    case torch::kFloat64: return "F64";
    case torch::kFloat16: return "F16";
    case torch::kBFloat16: return "BF16";
    case torch::kInt64: return "I64";
    case torch::kInt32: return "I32";
    case torch::kInt16: return "I16";
    case torch::kInt8: return "I8";
    case torch::kUInt8: return "U8";
    case torch::kBool: return "BOOL";
    default: throw Error(std::string("cannot store tensors of type ") + c10::toString(type) + " in safetensors");
  }
}

io::StTensor to_st_tensor(const torch::Tensor& t) {
  auto c = t.detach().to(torch::kCPU).contiguous();
  io::StTensor out;
  out.dtype = st_dtype_of(c.scalar_type());
  out.shape = c.sizes().vec();
  out.data.assign(static_cast<const char*>(c.data_ptr()), size_t(c.numel()) * c.element_size());
  return out;
}

torch::Tensor from_st_tensor(const io::StTensor& t) {
  auto out = torch::empty(t.shape, torch::TensorOptions().dtype(scalar_type_of(t.dtype)));
  if (size_t(out.numel()) * out.element_size() != t.data.size())
    throw Error("safetensors tensor byte length " + std::to_string(t.data.size()) + " does not match shape " +
                shape_str(t.shape));
  if (!t.data.empty()) std::memcpy(out.data_ptr(), t.data.data(), t.data.size());
  return out;
}

io::StFile module_to_st(torch::nn::Module& module, const std::map<std::string, std::string>& metadata) {
  io::StFile file;
  file.metadata = metadata;
  for (const auto& [name, t] : named_tensors(module)) file.tensors[name] = to_st_tensor(t);
  return file;
}

void save_weights(torch::nn::Module& module, const std::string& path, const std::map<std::string, std::string>& metadata) {
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
