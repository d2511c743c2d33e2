// One safetensors tensor <-> a LibTorch tensor.
#include "lriad/io/st_tensor.h"

#include <cstring>
#include <map>
#include <sstream>

#include <torch/torch.h>

#include "lriad/io/error.h"

namespace lriad::io {
namespace {

torch::ScalarType scalar_type_of(const std::string& dtype) {
  static const std::map<std::string, torch::ScalarType> types = {
      {"F32", torch::kFloat32}, {"F64", torch::kFloat64}, {"F16", torch::kFloat16}, {"BF16", torch::kBFloat16},
      {"I64", torch::kInt64},   {"I32", torch::kInt32},   {"I16", torch::kInt16},   {"I8", torch::kInt8},
      {"U8", torch::kUInt8},    {"BOOL", torch::kBool}};
  auto it = types.find(dtype);
  if (it == types.end()) throw Error("unsupported safetensors dtype " + dtype);
  return it->second;
}

}  // namespace

std::string shape_str(const std::vector<int64_t>& s) {
  std::ostringstream o;
  o << "[";
  for (size_t i = 0; i < s.size(); ++i) o << (i ? "," : "") << s[i];
  return o.str() + "]";
}

std::string st_dtype_of(torch::ScalarType type) {
  switch (type) {
    case torch::kFloat32:
      return "F32";
    case torch::kFloat64:
      return "F64";
    case torch::kFloat16:
      return "F16";
    case torch::kBFloat16:
      return "BF16";
    case torch::kInt64:
      return "I64";
    case torch::kInt32:
      return "I32";
    case torch::kInt16:
      return "I16";
    case torch::kInt8:
      return "I8";
    case torch::kUInt8:
      return "U8";
    case torch::kBool:
      return "BOOL";
    default:
      throw Error(std::string("cannot store tensors of type ") + c10::toString(type) + " in safetensors");
  }
}

StTensor to_st_tensor(const torch::Tensor& t) {
  auto c = t.detach().to(torch::kCPU).contiguous();
  StTensor out;
  out.dtype = st_dtype_of(c.scalar_type());
  out.shape = c.sizes().vec();
  out.data.assign(static_cast<const char*>(c.data_ptr()), size_t(c.numel()) * c.element_size());
  return out;
}

torch::Tensor from_st_tensor(const StTensor& t) {
  auto out = torch::empty(t.shape, torch::TensorOptions().dtype(scalar_type_of(t.dtype)));
  if (size_t(out.numel()) * out.element_size() != t.data.size())
    throw Error("safetensors tensor byte length " + std::to_string(t.data.size()) + " does not match shape " +
                shape_str(t.shape));
  if (!t.data.empty()) std::memcpy(out.data_ptr(), t.data.data(), t.data.size());
  return out;
}

}  // namespace lriad::io
