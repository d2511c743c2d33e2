// libFuzzer target: the safetensors parser on arbitrary bytes (checkpoints are untrusted input).
// Only lriad::Error may escape; a parsed file must hold exactly the bytes its shapes promise.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "lriad/io/error.h"
#include "lriad/io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace lriad::io;
  StFile file;
  try {
    file = parse_safetensors(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz.safetensors");
  } catch (const lriad::Error&) {
    return 0;
  }
  for (const auto& [name, t] : file.tensors) {
    uint64_t bytes = st_dtype_size(t.dtype);
    for (int64_t d : t.shape) bytes *= static_cast<uint64_t>(d);  // no overflow: the parser checked
    if (bytes != t.data.size()) std::abort();
  }
  return 0;
}
