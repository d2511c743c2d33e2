// Torch-free reader and writer for Hugging Face safetensors files: an 8-byte little-endian
// header length N, N bytes of JSON header, then the raw little-endian, row-major tensor bytes.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace lriad::io {

// One tensor: dtype as spelled in the header ("F32", "BF16", ...), shape ([] = scalar), and
// its raw little-endian bytes (data.size() == numel(shape) * st_dtype_size(dtype)).
struct StTensor {
  std::string dtype;
  std::vector<int64_t> shape;
  std::string data;
};

struct StFile {
  std::map<std::string, StTensor> tensors;      // by name
  std::map<std::string, std::string> metadata;  // the header's "__metadata__" (string -> string)
};

// A tensor's header entry: where its bytes live, relative to the start of the data buffer.
struct StTensorInfo {
  std::string dtype;
  std::vector<int64_t> shape;
  uint64_t begin = 0;  // data_offsets[0]
  uint64_t end = 0;    // data_offsets[1]; end - begin == numel * dtype size
};

struct StHeader {
  std::map<std::string, StTensorInfo> tensors;
  std::map<std::string, std::string> metadata;
  uint64_t header_size = 0;  // N; the data buffer starts at byte 8 + N
};

// Largest header accepted (the reference implementation's limit): a bigger length field means
// a corrupt or hostile file, and is rejected before anything is allocated.
constexpr uint64_t kStMaxHeaderSize = 100'000'000;

// Bytes per element: F64/I64 8, F32/I32 4, F16/BF16/I16 2, I8/U8/BOOL 1. Throws lriad::Error
// on any other dtype.
size_t st_dtype_size(const std::string& dtype);

// Writes `file` to `path` through `path + ".tmp"`, fsync and rename, so a crash never leaves a
// half-written file. The header is compact JSON padded with spaces so that 8 + N is a multiple
// of 8; "__metadata__" is omitted when empty. Tensor bytes are laid out by dtype size
// (largest first), then by name, so every tensor starts aligned to its element size, as in the
// reference writer. Throws lriad::Error on an invalid tensor (unknown dtype, negative
// dimension, wrong byte count, the reserved name "__metadata__", non-UTF-8 names) or on I/O
// failure (the message names the missing directory).
void write_safetensors(const std::string& path, const StFile& file);

// Reads and validates a whole file; see parse_safetensors for what is checked.
StFile read_safetensors(const std::string& path);

// Reads and validates only the header (the data is not loaded, but offsets are checked against
// the file size), e.g. to list tensors.
StHeader read_safetensors_header(const std::string& path);

// Parses a complete safetensors image held in memory; `source` names it in errors. The input is
// untrusted: every defect is an lriad::Error naming `source`, never an out-of-bounds read. It
// rejects: a file shorter than 8 bytes; a header length over kStMaxHeaderSize or past the end;
// a header that is not a JSON object; duplicate keys anywhere in it; a tensor entry that is not
// an object or lacks "dtype" (string), "shape" (array of non-negative integers) or
// "data_offsets" (two integers, begin <= end); an unknown dtype; a shape whose byte size
// (leaving zero dimensions out) overflows int64; a byte range past the buffer, or of the wrong
// length; overlapping tensors; gaps between tensors, or bytes after the last one (as the
// reference reader does, since they indicate a corrupt file); "__metadata__" that is not an
// object of strings (null is accepted as empty). Unknown keys inside a tensor entry are ignored.
StFile parse_safetensors(std::string_view bytes, const std::string& source);

}  // namespace lriad::io
