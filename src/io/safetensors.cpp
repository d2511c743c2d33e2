// Safetensors reading and writing without LibTorch. Files are untrusted input: every length
// and offset is checked before it is used to allocate, slice or seek.
#include "lriad/io/safetensors.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <tuple>

#include "lriad/io/error.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace lriad::io {
namespace {

const char* const kHint = "the file is corrupt or not a safetensors file; re-export it";
// A legitimate header nests three deep (root > tensor entry > shape); deeper JSON is rejected
// early so a hostile header cannot make the parser build a pathological tree.
constexpr int kMaxJsonDepth = 16;

[[noreturn]] void fail(const std::string& source, const std::string& what, const std::string& hint = kHint) {
  throw Error("safetensors file " + source + ": " + what, hint);
}

std::string tensor_ctx(const std::string& name) { return "tensor '" + name + "': "; }

uint64_t load_u64_le(const char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

std::string store_u64_le(uint64_t v) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((v >> (8 * i)) & 0xFF);
  return out;
}

std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

// numel(shape) * elem_size, or false when a dimension is negative or the size does not fit in
// int64 (LibTorch and the rest of lriad count elements in int64). Zero dimensions are left out
// of the bound, so that no product of a subset of the dimensions overflows either: an empty
// tensor of shape [2^40, 2^40, 0] would pass a plain running product and overflow its readers.
bool checked_byte_size(const std::vector<int64_t>& shape, size_t elem_size, uint64_t* out) {
  const uint64_t limit = std::numeric_limits<int64_t>::max();
  uint64_t n = elem_size;
  bool empty = false;
  for (int64_t d : shape) {
    if (d < 0) return false;
    if (d == 0) {
      empty = true;
      continue;
    }
    const auto ud = static_cast<uint64_t>(d);
    if (n > limit / ud) return false;
    n *= ud;
  }
  *out = empty ? 0 : n;
  return true;
}

// Checks the 8-byte length field against the bytes that follow it, before anything is allocated.
uint64_t checked_header_size(const char* prefix, uint64_t total_size, const std::string& source) {
  const uint64_t n = load_u64_le(prefix);
  if (n > kStMaxHeaderSize)
    fail(source,
         "header length " + std::to_string(n) + " exceeds the " + std::to_string(kStMaxHeaderSize) + "-byte limit");
  if (n > total_size - 8)
    fail(source, "header length " + std::to_string(n) + " runs past the end of the file (" +
                     std::to_string(total_size) + " bytes)");
  return n;
}

// Parses the header JSON, rejecting duplicate keys (nlohmann would silently keep the last one,
// so a file could show one tensor to us and another to a different reader) and deep nesting.
json parse_header_json(std::string_view text, const std::string& source) {
  // nlohmann stops at a NUL byte as if the input ended, which would hide whatever follows it.
  if (const size_t nul = text.find('\0'); nul != std::string_view::npos)
    fail(source, "header is not valid JSON: NUL byte at offset " + std::to_string(nul));
  std::vector<std::set<std::string>> keys;  // keys seen in each open object
  auto cb = [&](int depth, json::parse_event_t event, json& parsed) {
    if ((event == json::parse_event_t::object_start || event == json::parse_event_t::array_start) &&
        depth >= kMaxJsonDepth)
      fail(source, "header JSON nests deeper than " + std::to_string(kMaxJsonDepth) + " levels");
    if (event == json::parse_event_t::object_start) keys.emplace_back();
    if (event == json::parse_event_t::object_end && !keys.empty()) keys.pop_back();
    if (event == json::parse_event_t::key && !keys.empty()) {
      const auto& key = parsed.get_ref<const std::string&>();
      if (!keys.back().insert(key).second) fail(source, "duplicate key '" + key + "' in header");
    }
    return true;
  };
  try {
    json j = json::parse(text.begin(), text.end(), cb);
    if (!j.is_object()) fail(source, "header is JSON " + std::string(j.type_name()) + ", expected an object");
    return j;
  } catch (const json::exception& e) {
    fail(source, "header is not valid JSON: " + std::string(e.what()));
  }
}

uint64_t json_offset(const json& v, const std::string& ctx, const std::string& source) {
  if (!v.is_number_unsigned())
    fail(source, ctx + "data_offsets must be two non-negative integers [begin, end], got " + v.dump());
  return v.get<uint64_t>();
}

// Validates one tensor entry on its own; offsets are checked against each other later.
StTensorInfo parse_tensor_entry(const std::string& name, const json& e, uint64_t buffer_size,
                                const std::string& source) {
  const std::string ctx = tensor_ctx(name);
  if (!e.is_object()) fail(source, ctx + "entry is JSON " + std::string(e.type_name()) + ", expected an object");
  for (const char* key : {"dtype", "shape", "data_offsets"})
    if (!e.contains(key)) fail(source, ctx + "missing \"" + key + "\"");
  StTensorInfo info;

  // 1. dtype: a known name.
  const json& dtype = e.at("dtype");
  if (!dtype.is_string()) fail(source, ctx + "dtype must be a string, got " + dtype.dump());
  info.dtype = dtype.get<std::string>();
  size_t elem_size = 0;
  try {
    elem_size = st_dtype_size(info.dtype);
  } catch (const Error& err) {
    fail(source, ctx + err.what());
  }

  // 2. shape: non-negative integers whose product fits.
  const json& shape = e.at("shape");
  if (!shape.is_array()) fail(source, ctx + "shape must be an array, got " + shape.dump());
  for (const json& d : shape) {
    if (d.is_number_integer() && !d.is_number_unsigned())
      fail(source, ctx + "negative dimension " + d.dump() + " in shape " + shape.dump());
    if (!d.is_number_unsigned() || d.get<uint64_t>() > uint64_t(std::numeric_limits<int64_t>::max()))
      fail(source, ctx + "shape must hold non-negative integers, got " + shape.dump());
    info.shape.push_back(static_cast<int64_t>(d.get<uint64_t>()));
  }
  uint64_t nbytes = 0;
  if (!checked_byte_size(info.shape, elem_size, &nbytes))
    fail(source,
         ctx + "shape " + shape.dump() + " overflows: its byte size (zero dimensions aside) does not fit in int64");

  // 3. data_offsets: [begin, end] inside the buffer, exactly the tensor's size.
  const json& offs = e.at("data_offsets");
  if (!offs.is_array() || offs.size() != 2)
    fail(source, ctx + "data_offsets must be two non-negative integers [begin, end], got " + offs.dump());
  info.begin = json_offset(offs[0], ctx, source);
  info.end = json_offset(offs[1], ctx, source);
  if (info.begin > info.end) fail(source, ctx + "data_offsets " + offs.dump() + " decrease (begin > end)");
  if (info.end > buffer_size)
    fail(source,
         ctx + "data_offsets " + offs.dump() + " run past the data buffer (" + std::to_string(buffer_size) + " bytes)");
  if (info.end - info.begin != nbytes)
    fail(source, ctx + "data_offsets " + offs.dump() + " span " + std::to_string(info.end - info.begin) +
                     " bytes, but " + info.dtype + " " + shape_str(info.shape) + " needs " + std::to_string(nbytes));
  return info;
}

std::map<std::string, std::string> parse_metadata(const json& m, const std::string& source) {
  std::map<std::string, std::string> out;
  if (m.is_null()) return out;  // the reference reader treats null as "no metadata"
  if (!m.is_object()) fail(source, "__metadata__ must be an object of strings, got " + std::string(m.type_name()));
  for (const auto& [key, value] : m.items()) {
    if (!value.is_string()) fail(source, "__metadata__ value for '" + key + "' must be a string, got " + value.dump());
    out[key] = value.get<std::string>();
  }
  return out;
}

// The tensors must tile the buffer exactly: sorted by offset, each starts where the last ended.
// Overlaps would alias tensors; gaps and trailing bytes are rejected as the reference reader
// does, since no conforming writer produces them and they usually mean a damaged file.
void check_layout(const StHeader& h, uint64_t buffer_size, const std::string& source) {
  std::vector<std::tuple<uint64_t, uint64_t, std::string>> spans;
  for (const auto& [name, t] : h.tensors) spans.emplace_back(t.begin, t.end, name);
  std::sort(spans.begin(), spans.end());
  uint64_t cursor = 0;
  std::string prev;
  for (const auto& [begin, end, name] : spans) {
    if (begin < cursor)
      fail(source, tensor_ctx(name) + "data_offsets overlap tensor '" + prev + "' (starts at " + std::to_string(begin) +
                       ", previous ends at " + std::to_string(cursor) + ")");
    if (begin > cursor)
      fail(source, tensor_ctx(name) + "data_offsets leave a gap: bytes " + std::to_string(cursor) + ".." +
                       std::to_string(begin) + " belong to no tensor");
    cursor = end;
    prev = name;
  }
  if (cursor != buffer_size)
    fail(source, "data buffer has " + std::to_string(buffer_size - cursor) +
                     " trailing bytes after the last tensor (data_offsets end at " + std::to_string(cursor) + ")");
}

StHeader parse_header(std::string_view text, uint64_t buffer_size, const std::string& source) {
  const json j = parse_header_json(text, source);
  StHeader h;
  h.header_size = text.size();
  for (const auto& [name, entry] : j.items()) {
    if (name == "__metadata__")
      h.metadata = parse_metadata(entry, source);
    else
      h.tensors[name] = parse_tensor_entry(name, entry, buffer_size, source);
  }
  check_layout(h, buffer_size, source);
  return h;
}

// Opens `path` and validates its header; leaves `in` open for reading tensor bytes.
StHeader open_and_read_header(const std::string& path, std::ifstream& in) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec))
    throw Error("safetensors file " + path + " does not exist or is not a regular file", "check the path");
  const uint64_t size = fs::file_size(path, ec);
  in.open(path, std::ios::binary);
  if (ec || !in) throw Error("cannot open safetensors file " + path, "check its permissions");
  if (size < 8) fail(path, "file is " + std::to_string(size) + " bytes, shorter than the 8-byte header length");
  char prefix[8];
  if (!in.read(prefix, 8)) fail(path, "cannot read the header length");
  const uint64_t n = checked_header_size(prefix, size, path);
  std::string text(n, '\0');
  if (!in.read(text.data(), std::streamsize(n))) fail(path, "cannot read the " + std::to_string(n) + "-byte header");
  return parse_header(text, size - 8 - n, path);
}

// Storage order of the writer: larger elements first, then by name (the map is sorted), so each
// tensor starts at a multiple of its element size given that the buffer starts 8-aligned.
std::vector<const std::pair<const std::string, StTensor>*> write_order(const StFile& file) {
  std::vector<const std::pair<const std::string, StTensor>*> order;
  for (const auto& entry : file.tensors) order.push_back(&entry);
  std::stable_sort(order.begin(), order.end(), [](const auto* a, const auto* b) {
    return st_dtype_size(a->second.dtype) > st_dtype_size(b->second.dtype);
  });
  return order;
}

// Checks every tensor before anything touches the disk.
void validate_for_write(const std::string& path, const StFile& file) {
  for (const auto& [name, t] : file.tensors) {
    const std::string ctx = "cannot write safetensors file " + path + ": " + tensor_ctx(name);
    if (name == "__metadata__") throw Error(ctx + "the name is reserved for metadata", "rename the tensor");
    size_t elem = 0;
    try {
      elem = st_dtype_size(t.dtype);
    } catch (const Error& e) {
      throw Error(ctx + e.what());
    }
    uint64_t nbytes = 0;
    if (!checked_byte_size(t.shape, elem, &nbytes))
      throw Error(ctx + "shape " + shape_str(t.shape) + " has a negative dimension or overflows");
    if (t.data.size() != nbytes)
      throw Error(ctx + "holds " + std::to_string(t.data.size()) + " bytes, but " + t.dtype + " " + shape_str(t.shape) +
                  " needs " + std::to_string(nbytes));
  }
}

std::string build_header(const std::string& path, const StFile& file) {
  json j = json::object();
  uint64_t offset = 0;
  for (const auto* entry : write_order(file)) {
    const StTensor& t = entry->second;
    j[entry->first] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {offset, offset + t.data.size()}}};
    offset += t.data.size();
  }
  if (!file.metadata.empty()) j["__metadata__"] = file.metadata;
  std::string text;
  try {
    text = j.dump();
  } catch (const json::exception& e) {  // invalid UTF-8 in a name or metadata value
    throw Error("cannot write safetensors file " + path + ": " + e.what(),
                "tensor names and metadata must be valid UTF-8");
  }
  text.append((8 - text.size() % 8) % 8, ' ');  // data then starts 8-aligned, as in the reference
  return text;
}

}  // namespace

size_t st_dtype_size(const std::string& dtype) {
  static const std::map<std::string, size_t> sizes = {{"F64", 8},  {"I64", 8}, {"F32", 4}, {"I32", 4}, {"F16", 2},
                                                      {"BF16", 2}, {"I16", 2}, {"I8", 1},  {"U8", 1},  {"BOOL", 1}};
  auto it = sizes.find(dtype);
  if (it == sizes.end())
    throw Error("unknown dtype '" + dtype + "'", "supported: F64 F32 F16 BF16 I64 I32 I16 I8 U8 BOOL");
  return it->second;
}

StFile parse_safetensors(std::string_view bytes, const std::string& source) {
  if (bytes.size() < 8)
    fail(source, "file is " + std::to_string(bytes.size()) + " bytes, shorter than the 8-byte header length");
  const uint64_t n = checked_header_size(bytes.data(), bytes.size(), source);
  const std::string_view data = bytes.substr(8 + n);
  const StHeader h = parse_header(bytes.substr(8, n), data.size(), source);
  StFile out;
  out.metadata = h.metadata;
  for (const auto& [name, info] : h.tensors)
    out.tensors[name] = {info.dtype, info.shape, std::string(data.substr(info.begin, info.end - info.begin))};
  return out;
}

StHeader read_safetensors_header(const std::string& path) {
  std::ifstream in;
  return open_and_read_header(path, in);
}

StFile read_safetensors(const std::string& path) {
  // Tensors are read one by one at their validated offsets, so memory is bounded by the file
  // size and the whole file is never held twice.
  std::ifstream in;
  const StHeader h = open_and_read_header(path, in);
  const uint64_t data_start = 8 + h.header_size;
  StFile out;
  out.metadata = h.metadata;
  for (const auto& [name, info] : h.tensors) {
    StTensor t{info.dtype, info.shape, std::string(info.end - info.begin, '\0')};
    in.seekg(std::streamoff(data_start + info.begin));
    if (!in.read(t.data.data(), std::streamsize(t.data.size())))
      fail(path, tensor_ctx(name) + "short read (was the file truncated while reading?)");
    out.tensors[name] = std::move(t);
  }
  return out;
}

void write_safetensors(const std::string& path, const StFile& file) {
  // 1. Validate everything and check the directory, so failures leave nothing behind.
  validate_for_write(path, file);
  const std::string header = build_header(path, file);
  fs::path dir = fs::path(path).parent_path();
  if (dir.empty()) dir = ".";
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    throw Error("cannot write safetensors file " + path + ": directory " + dir.string() + " does not exist",
                "create the directory first");

  // 2. Stream length, header and tensor bytes into a temporary file and make it durable.
  const std::string tmp = path + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) throw Error("cannot create " + tmp, "check that " + dir.string() + " is writable");
  bool ok = true;
  auto put = [&](const std::string& s) { ok = ok && std::fwrite(s.data(), 1, s.size(), f) == s.size(); };
  put(store_u64_le(header.size()));
  put(header);
  for (const auto* entry : write_order(file)) put(entry->second.data);
  ok = ok && std::fflush(f) == 0 && ::fsync(fileno(f)) == 0;
  ok = (std::fclose(f) == 0) && ok;
  if (!ok) {
    fs::remove(tmp, ec);
    throw Error("failed writing " + tmp, "is the disk full?");
  }

  // 3. Publish it under the final name.
  fs::rename(tmp, path, ec);
  if (ec) {
    const std::string msg = ec.message();
    fs::remove(tmp, ec);
    throw Error("cannot rename " + tmp + " to " + path + ": " + msg);
  }
}

}  // namespace lriad::io
