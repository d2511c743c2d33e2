// Safetensors reader/writer: round trips, an independent in-test parser of the published format,
// a hand-built golden file, one test per malformed-header case, atomic writes, and fuzzing.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <random>

#include "fixtures.h"
#include "lriad/io/error.h"
#include "lriad/io/safetensors.h"

namespace fs = std::filesystem;
using lriad::io::parse_safetensors;
using lriad::io::read_safetensors;
using lriad::io::StFile;
using lriad::io::StTensor;
using lriad::io::write_safetensors;
using nlohmann::json;

namespace {

// Little-endian encoders written out byte by byte, independent of the host's byte order.
std::string le_bytes(uint64_t v, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out += static_cast<char>((v >> (8 * i)) & 0xFF);
  return out;
}
uint64_t le_load(const std::string& s, size_t at, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(s[at + i]);
  return v;
}
std::string f32_bytes(std::initializer_list<float> xs) {
  std::string out;
  for (float x : xs) {
    uint32_t u;
    std::memcpy(&u, &x, 4);
    out += le_bytes(u, 4);
  }
  return out;
}
float f32_at(const std::string& s, size_t i) {
  const auto u = static_cast<uint32_t>(le_load(s, 4 * i, 4));
  float x;
  std::memcpy(&x, &u, 4);
  return x;
}
std::string i64_bytes(std::initializer_list<int64_t> xs) {
  std::string out;
  for (int64_t x : xs) out += le_bytes(static_cast<uint64_t>(x), 8);
  return out;
}
std::string u16_bytes(std::initializer_list<uint16_t> xs) {
  std::string out;
  for (uint16_t x : xs) out += le_bytes(x, 2);
  return out;
}

// A file image: length prefix (of the header as given, unpadded), header, data.
std::string image(const std::string& header, const std::string& data = "") {
  return le_bytes(header.size(), 8) + header + data;
}

// One tensor of each kind the tests care about, including a scalar and an empty tensor.
StFile sample_file() {
  StFile f;
  f.tensors["enc.w"] = {"F32", {2, 3}, f32_bytes({1.f, -2.f, 3.5f, 0.f, 1e-3f, 65504.f})};
  // BF16 bit patterns of 1.0, -2.0, 0.5, +inf.
  f.tensors["dec.bf"] = {"BF16", {4}, u16_bytes({0x3F80, 0xC000, 0x3F00, 0x7F80})};
  f.tensors["step"] = {"I64", {}, i64_bytes({-42})};
  f.tensors["empty"] = {"F32", {0, 5}, ""};
  f.tensors["mask"] = {"BOOL", {3}, std::string("\x01\x00\x01", 3)};
  f.metadata = {{"format", "pt"}, {"note", "ünïcödé"}};
  return f;
}

// Asserts that parsing `bytes` fails with an lriad::Error naming the source and every needle.
void expect_rejected(const std::string& bytes, std::initializer_list<const char*> needles) {
  const std::string source = "bad.safetensors";
  try {
    parse_safetensors(bytes, source);
    ADD_FAILURE() << "accepted a malformed file";
  } catch (const lriad::Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(source), std::string::npos) << msg;
    for (const char* n : needles) EXPECT_NE(msg.find(n), std::string::npos) << "want '" << n << "' in: " << msg;
  }
}

// A one-tensor header with the given entry, data of `data_size` zero bytes.
std::string one_tensor(const std::string& entry, size_t data_size) {
  return image("{\"w\":" + entry + "}", std::string(data_size, '\0'));
}

void expect_same(const StFile& a, const StFile& b) {
  EXPECT_EQ(a.metadata, b.metadata);
  ASSERT_EQ(a.tensors.size(), b.tensors.size());
  for (const auto& [name, t] : a.tensors) {
    ASSERT_TRUE(b.tensors.count(name)) << name;
    const StTensor& u = b.tensors.at(name);
    EXPECT_EQ(t.dtype, u.dtype) << name;
    EXPECT_EQ(t.shape, u.shape) << name;
    EXPECT_EQ(t.data, u.data) << name;
  }
}

}  // namespace

TEST(Safetensors, DtypeSizesAndUnknownDtype) {
  EXPECT_EQ(lriad::io::st_dtype_size("F64"), 8u);
  EXPECT_EQ(lriad::io::st_dtype_size("I64"), 8u);
  EXPECT_EQ(lriad::io::st_dtype_size("F32"), 4u);
  EXPECT_EQ(lriad::io::st_dtype_size("I32"), 4u);
  EXPECT_EQ(lriad::io::st_dtype_size("F16"), 2u);
  EXPECT_EQ(lriad::io::st_dtype_size("BF16"), 2u);
  EXPECT_EQ(lriad::io::st_dtype_size("I16"), 2u);
  EXPECT_EQ(lriad::io::st_dtype_size("I8"), 1u);
  EXPECT_EQ(lriad::io::st_dtype_size("U8"), 1u);
  EXPECT_EQ(lriad::io::st_dtype_size("BOOL"), 1u);
  EXPECT_THROW(lriad::io::st_dtype_size("f32"), lriad::Error);  // names are case-sensitive
  EXPECT_THROW(lriad::io::st_dtype_size("F8_E4M3"), lriad::Error);
}

TEST(Safetensors, RoundTripPreservesTensorsAndMetadata) {
  lriad::test::TempDir dir;
  const StFile f = sample_file();
  write_safetensors(dir / "m.safetensors", f);
  expect_same(f, read_safetensors(dir / "m.safetensors"));
  // The in-memory parser agrees with the file reader.
  expect_same(f, parse_safetensors(lriad::test::read_text(dir / "m.safetensors"), "mem"));
  // No tensors and no metadata is a valid (8 + 8 byte) file too.
  write_safetensors(dir / "e.safetensors", StFile{});
  expect_same(StFile{}, read_safetensors(dir / "e.safetensors"));
}

TEST(Safetensors, IndependentReaderMatchesWrittenBytes) {
  lriad::test::TempDir dir;
  const StFile f = sample_file();
  write_safetensors(dir / "m.safetensors", f);
  const std::string bytes = lriad::test::read_text(dir / "m.safetensors");

  // 1. Length prefix: N, padded so that the data buffer starts 8-aligned at 8 + N.
  ASSERT_GE(bytes.size(), 8u);
  const uint64_t n = le_load(bytes, 0, 8);
  EXPECT_EQ(n % 8, 0u);
  ASSERT_LE(8 + n, bytes.size());
  const std::string header = bytes.substr(8, n);
  const std::string data = bytes.substr(8 + n);
  const size_t close = header.find_last_of('}');
  ASSERT_NE(close, std::string::npos);
  EXPECT_EQ(header.find_first_not_of(' ', close + 1), std::string::npos) << "padding must be spaces";
  EXPECT_LT(header.size() - close - 1, 8u);

  // 2. The header is a JSON object: one entry per tensor plus __metadata__.
  const json j = json::parse(header);
  ASSERT_TRUE(j.is_object());
  EXPECT_EQ(j.size(), f.tensors.size() + 1);
  EXPECT_EQ(j.at("__metadata__").at("format"), "pt");
  EXPECT_EQ(j.at("__metadata__").at("note"), "ünïcödé");

  // 3. Slice each tensor by its offsets; the slices tile the buffer.
  uint64_t covered = 0;
  for (const auto& [name, t] : f.tensors) {
    const json& e = j.at(name);
    EXPECT_EQ(e.at("dtype").get<std::string>(), t.dtype) << name;
    EXPECT_EQ(e.at("shape").get<std::vector<int64_t>>(), t.shape) << name;
    const auto begin = e.at("data_offsets")[0].get<uint64_t>();
    const auto end = e.at("data_offsets")[1].get<uint64_t>();
    ASSERT_LE(begin, end);
    ASSERT_LE(end, data.size());
    EXPECT_EQ(begin % lriad::io::st_dtype_size(t.dtype), 0u) << name << " is misaligned";
    EXPECT_EQ(data.substr(begin, end - begin), t.data) << name;
    covered += end - begin;
  }
  EXPECT_EQ(covered, data.size());

  // 4. Decoded values, read back from the raw bytes: F32 enc.w and I64 step.
  const auto& w = j.at("enc.w").at("data_offsets");
  const std::string wb = data.substr(w[0].get<size_t>(), 24);
  EXPECT_EQ(f32_at(wb, 0), 1.f);
  EXPECT_EQ(f32_at(wb, 2), 3.5f);
  EXPECT_EQ(f32_at(wb, 5), 65504.f);
  const auto s = j.at("step").at("data_offsets")[0].get<size_t>();
  EXPECT_EQ(static_cast<int64_t>(le_load(data, s, 8)), -42);
}

TEST(Safetensors, ParsesHandBuiltGoldenFile) {
  // {"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}} is 54 bytes: N = 54 = 0x36,
  // followed by 1.0f = 00 00 80 3F and 2.0f = 00 00 00 40.
  const std::string header = R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  ASSERT_EQ(header.size(), 54u);
  const std::string golden =
      std::string("\x36\0\0\0\0\0\0\0", 8) + header + std::string("\x00\x00\x80\x3F\x00\x00\x00\x40", 8);
  const StFile f = parse_safetensors(golden, "golden");
  ASSERT_EQ(f.tensors.size(), 1u);
  const StTensor& x = f.tensors.at("x");
  EXPECT_EQ(x.dtype, "F32");
  EXPECT_EQ(x.shape, std::vector<int64_t>{2});
  EXPECT_EQ(f32_at(x.data, 0), 1.0f);
  EXPECT_EQ(f32_at(x.data, 1), 2.0f);
  EXPECT_TRUE(f.metadata.empty());

  // The same bytes from disk, and the header-only reader.
  lriad::test::TempDir dir;
  lriad::test::write_text(dir / "g.safetensors", golden);
  EXPECT_EQ(read_safetensors(dir / "g.safetensors").tensors.at("x").data, x.data);
  const auto h = lriad::io::read_safetensors_header(dir / "g.safetensors");
  EXPECT_EQ(h.header_size, 54u);
  EXPECT_EQ(h.tensors.at("x").begin, 0u);
  EXPECT_EQ(h.tensors.at("x").end, 8u);
}

TEST(Safetensors, AcceptsPaddingUnknownEntryKeysAndNullMetadata) {
  // Trailing spaces (writer padding), an extra key, "__metadata__": null.
  const std::string h = R"({"__metadata__":null,"x":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"extra":[1]}}   )";
  const StFile f = parse_safetensors(image(h, "\x07"), "ok");
  EXPECT_EQ(f.tensors.at("x").data, "\x07");
  EXPECT_TRUE(f.metadata.empty());
}

TEST(Safetensors, RejectsFileShorterThanLengthPrefix) {
  expect_rejected("", {"shorter than the 8-byte header length"});
  expect_rejected(std::string("\x02\0\0\0\0\0\0", 7), {"7 bytes", "8-byte header length"});
}

TEST(Safetensors, RejectsHeaderLengthPastEndOfFile) {
  // N = 1000 but only 2 bytes follow.
  expect_rejected(le_bytes(1000, 8) + "{}", {"header length 1000", "past the end"});
  expect_rejected(le_bytes(3, 8) + "{}", {"header length 3", "past the end"});
}

TEST(Safetensors, RejectsAbsurdHeaderLengthWithoutAllocating) {
  expect_rejected(le_bytes(~0ULL, 8) + "{}", {"header length 18446744073709551615", "limit"});
  expect_rejected(le_bytes(100'000'001, 8) + "{}", {"header length", "limit"});
}

TEST(Safetensors, RejectsHeaderThatIsNotJsonOrNotAnObject) {
  expect_rejected(image("{\"w\": "), {"header is not valid JSON"});
  // nlohmann treats NUL as the end of input; what follows must not be silently ignored.
  expect_rejected(image(std::string("{}\0{\"x\":1}", 10)), {"header is not valid JSON", "NUL"});
  expect_rejected(image("\xff\xfe{}"), {"header is not valid JSON"});  // not UTF-8
  expect_rejected(image("[1, 2]"), {"header", "expected an object"});
  expect_rejected(image("\"x\""), {"header", "expected an object"});
}

TEST(Safetensors, RejectsTensorEntryMissingAField) {
  expect_rejected(one_tensor(R"({"shape":[1],"data_offsets":[0,4]})", 4), {"'w'", "missing \"dtype\""});
  expect_rejected(one_tensor(R"({"dtype":"F32","data_offsets":[0,4]})", 4), {"'w'", "missing \"shape\""});
  expect_rejected(one_tensor(R"({"dtype":"F32","shape":[1]})", 4), {"'w'", "missing \"data_offsets\""});
}

TEST(Safetensors, RejectsTensorEntryWithWrongJsonTypes) {
  expect_rejected(one_tensor("7", 0), {"'w'", "expected an object"});
  expect_rejected(one_tensor(R"({"dtype":4,"shape":[1],"data_offsets":[0,4]})", 4), {"dtype must be a string"});
  expect_rejected(one_tensor(R"({"dtype":"F32","shape":"1","data_offsets":[0,4]})", 4), {"shape must be an array"});
  expect_rejected(one_tensor(R"({"dtype":"F32","shape":[1.0],"data_offsets":[0,4]})", 4), {"shape", "integers"});
  expect_rejected(one_tensor(R"({"dtype":"F32","shape":[null],"data_offsets":[0,4]})", 4), {"shape", "integers"});
  expect_rejected(one_tensor(R"({"dtype":"F32","shape":[1],"data_offsets":"0,4"})", 4), {"data_offsets"});
  expect_rejected(one_tensor(R"({"dtype":"F32","shape":[1],"data_offsets":[0,4.0]})", 4), {"data_offsets"});
}

TEST(Safetensors, RejectsUnknownDtype) {
  expect_rejected(one_tensor(R"({"dtype":"F8","shape":[1],"data_offsets":[0,1]})", 1), {"'w'", "dtype 'F8'"});
  expect_rejected(one_tensor(R"({"dtype":"float32","shape":[1],"data_offsets":[0,4]})", 4), {"dtype 'float32'"});
}

TEST(Safetensors, RejectsNegativeDimension) {
  expect_rejected(one_tensor(R"({"dtype":"F32","shape":[2,-2],"data_offsets":[0,0]})", 0),
                  {"'w'", "negative dimension -2"});
}

TEST(Safetensors, RejectsShapeWhoseSizeOverflows) {
  // 2^32 * 2^32 elements overflow 64 bits even before the dtype size.
  expect_rejected(one_tensor(R"({"dtype":"U8","shape":[4294967296,4294967296],"data_offsets":[0,0]})", 0),
                  {"'w'", "overflows"});
  // 2^62 elements fit, 2^62 * 4 bytes do not.
  expect_rejected(one_tensor(R"({"dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,0]})", 0),
                  {"overflows"});
  // 2^63 bytes fit in uint64 but not in int64, the type LibTorch counts elements in.
  expect_rejected(one_tensor(R"({"dtype":"U8","shape":[9223372036854775807,2],"data_offsets":[0,0]})", 0),
                  {"overflows"});
  // Empty, but 2^40 * 2^40 would overflow whoever multiplies the other dimensions first
  // (a running product that meets the 0 first would have accepted it).
  expect_rejected(one_tensor(R"({"dtype":"U8","shape":[0,1099511627776,1099511627776],"data_offsets":[0,0]})", 0),
                  {"'w'", "overflows"});
  // An empty tensor whose other dimensions stay in range is fine.
  EXPECT_TRUE(parse_safetensors(one_tensor(R"({"dtype":"F32","shape":[0,1048576],"data_offsets":[0,0]})", 0), "t")
                  .tensors.at("w")
                  .data.empty());
  // A dimension above INT64_MAX cannot be represented in the shape at all.
  expect_rejected(one_tensor(R"({"dtype":"U8","shape":[18446744073709551615],"data_offsets":[0,0]})", 0),
                  {"shape must hold non-negative integers"});
}

TEST(Safetensors, RejectsDataOffsetsThatAreNotTwoIncreasingNumbers) {
  expect_rejected(one_tensor(R"({"dtype":"U8","shape":[1],"data_offsets":[0]})", 1),
                  {"'w'", "data_offsets must be two"});
  expect_rejected(one_tensor(R"({"dtype":"U8","shape":[1],"data_offsets":[0,1,2]})", 2), {"data_offsets must be two"});
  expect_rejected(one_tensor(R"({"dtype":"U8","shape":[1],"data_offsets":[-1,0]})", 1), {"data_offsets must be two"});
  expect_rejected(one_tensor(R"({"dtype":"U8","shape":[1],"data_offsets":[2,1]})", 2),
                  {"data_offsets [2,1]", "begin > end"});
}

TEST(Safetensors, RejectsDataOffsetsOutsideTheBuffer) {
  expect_rejected(one_tensor(R"({"dtype":"F32","shape":[2],"data_offsets":[0,8]})", 4),
                  {"'w'", "data_offsets [0,8]", "past the data buffer (4 bytes)"});
  // An end near 2^64 must not wrap around in any size computation.
  expect_rejected(
      one_tensor(R"({"dtype":"U8","shape":[0],"data_offsets":[18446744073709551615,18446744073709551615]})", 0),
      {"past the data buffer"});
}

TEST(Safetensors, RejectsByteLengthThatDisagreesWithShape) {
  // F32 [3] needs 12 bytes, the offsets give 8.
  expect_rejected(one_tensor(R"({"dtype":"F32","shape":[3],"data_offsets":[0,8]})", 8),
                  {"'w'", "span 8 bytes", "F32 [3] needs 12"});
}

TEST(Safetensors, RejectsOverlappingTensors) {
  const std::string h = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                        R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})";
  expect_rejected(image(h, std::string(12, '\0')), {"'b'", "overlap tensor 'a'"});
  // Two tensors on the very same bytes are aliases: rejected too.
  const std::string same = R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                           R"("b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})";
  expect_rejected(image(same, std::string(4, '\0')), {"overlap"});
}

TEST(Safetensors, RejectsGapsAndTrailingBytesLikeTheReferenceReader) {
  const std::string gap = R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},)"
                          R"("b":{"dtype":"U8","shape":[1],"data_offsets":[2,3]}})";
  expect_rejected(image(gap, "xyz"), {"'b'", "gap", "bytes 1..2"});
  expect_rejected(one_tensor(R"({"dtype":"U8","shape":[1],"data_offsets":[0,1]})", 3), {"2 trailing bytes"});
  expect_rejected(image("{}", "x"), {"1 trailing bytes"});
}

TEST(Safetensors, RejectsDuplicateNames) {
  // nlohmann would keep the last "w"; another reader might keep the first.
  const std::string h = R"({"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},)"
                        R"("w":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}})";
  expect_rejected(image(h, "ab"), {"duplicate key 'w'"});
  expect_rejected(one_tensor(R"({"dtype":"U8","dtype":"I8","shape":[1],"data_offsets":[0,1]})", 1),
                  {"duplicate key 'dtype'"});
}

TEST(Safetensors, RejectsMetadataThatIsNotStrings) {
  expect_rejected(image(R"({"__metadata__":{"step":7}})"), {"__metadata__", "'step'", "must be a string"});
  expect_rejected(image(R"({"__metadata__":["a"]})"), {"__metadata__", "object of strings"});
}

TEST(Safetensors, RejectsDeeplyNestedHeader) {
  std::string deep = "{\"x\":" + std::string(10000, '[') + std::string(10000, ']') + "}";
  expect_rejected(image(deep), {"nests deeper"});
}

TEST(Safetensors, FileReaderNamesPathOnMissingOrTruncatedFile) {
  lriad::test::TempDir dir;
  try {
    read_safetensors(dir / "nope.safetensors");
    FAIL();
  } catch (const lriad::Error& e) {
    EXPECT_NE(std::string(e.what()).find(dir / "nope.safetensors"), std::string::npos) << e.what();
  }
  write_safetensors(dir / "m.safetensors", sample_file());
  const std::string bytes = lriad::test::read_text(dir / "m.safetensors");
  lriad::test::write_text(dir / "cut.safetensors", bytes.substr(0, bytes.size() - 3));
  for (auto reader : {+[](const std::string& p) { read_safetensors(p); },
                      +[](const std::string& p) { lriad::io::read_safetensors_header(p); }}) {
    try {
      reader(dir / "cut.safetensors");
      FAIL();
    } catch (const lriad::Error& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find(dir / "cut.safetensors"), std::string::npos) << msg;
      EXPECT_NE(msg.find("past the data buffer"), std::string::npos) << msg;
    }
  }
  lriad::test::write_text(dir / "tiny.safetensors", "abc");
  EXPECT_THROW(read_safetensors(dir / "tiny.safetensors"), lriad::Error);
}

TEST(Safetensors, HeaderReaderListsTensorsWithoutData) {
  lriad::test::TempDir dir;
  write_safetensors(dir / "m.safetensors", sample_file());
  const auto h = lriad::io::read_safetensors_header(dir / "m.safetensors");
  ASSERT_EQ(h.tensors.size(), 5u);
  EXPECT_EQ(h.tensors.at("enc.w").dtype, "F32");
  EXPECT_EQ(h.tensors.at("enc.w").shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(h.tensors.at("enc.w").end - h.tensors.at("enc.w").begin, 24u);
  EXPECT_EQ(h.tensors.at("step").shape, std::vector<int64_t>{});
  EXPECT_EQ(h.metadata.at("format"), "pt");
  EXPECT_EQ(h.header_size % 8, 0u);
}

TEST(Safetensors, WriteIsAtomicAndLeavesNoTemporaryFiles) {
  lriad::test::TempDir dir;
  write_safetensors(dir / "m.safetensors", sample_file());
  write_safetensors(dir / "m.safetensors", sample_file());  // overwrite in place
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir.path())) names.push_back(e.path().filename().string());
  EXPECT_EQ(names, std::vector<std::string>{"m.safetensors"});
}

TEST(Safetensors, WriteIntoMissingDirectoryNamesIt) {
  lriad::test::TempDir dir;
  const std::string missing = dir / "no/such/dir";
  try {
    write_safetensors(missing + "/m.safetensors", sample_file());
    FAIL();
  } catch (const lriad::Error& e) {
    EXPECT_NE(std::string(e.what()).find("directory " + missing), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(dir / "no"));
}

TEST(Safetensors, WriterRejectsInvalidTensorsAndWritesNothing) {
  lriad::test::TempDir dir;
  const std::string path = dir / "m.safetensors";
  auto expect_write_error = [&](const StFile& f, const char* needle) {
    try {
      write_safetensors(path, f);
      ADD_FAILURE() << "wrote an invalid file";
    } catch (const lriad::Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
    EXPECT_TRUE(fs::is_empty(dir.path()));
  };
  StFile f;
  f.tensors["w"] = {"F32", {3}, f32_bytes({1.f, 2.f})};
  expect_write_error(f, "holds 8 bytes, but F32 [3] needs 12");
  f.tensors["w"] = {"F12", {1}, "x"};
  expect_write_error(f, "unknown dtype 'F12'");
  f.tensors["w"] = {"U8", {-1}, ""};
  expect_write_error(f, "negative dimension");
  f.tensors.clear();
  f.tensors["__metadata__"] = {"U8", {1}, "x"};
  expect_write_error(f, "reserved");
  f.tensors.clear();
  f.tensors["bad\xff"] = {"U8", {1}, "x"};
  expect_write_error(f, "UTF-8");
}

TEST(Safetensors, FuzzedFilesOnlyEverThrowLriadError) {
  lriad::test::TempDir dir;
  write_safetensors(dir / "m.safetensors", sample_file());
  const std::string good = lriad::test::read_text(dir / "m.safetensors");

  // Every strict prefix is invalid: either the header or some tensor's bytes are cut off.
  for (size_t len = 0; len < good.size(); ++len)
    EXPECT_THROW(parse_safetensors(std::string_view(good).substr(0, len), "cut"), lriad::Error) << len;

  // Random bit flips (seeded) may or may not leave a valid file, but must never crash or throw
  // anything else; any file that parses must be self-consistent.
  std::mt19937 rng(1234);
  int parsed = 0;
  for (int iter = 0; iter < 3000; ++iter) {
    std::string bad = good;
    const int flips = 1 + int(rng() % 3);
    for (int k = 0; k < flips; ++k) {
      // Half the flips land in the length prefix and the header, where the parser works hardest.
      const size_t at = (iter % 2) ? rng() % bad.size() : rng() % (8 + le_load(good, 0, 8));
      bad[at] = static_cast<char>(bad[at] ^ (1u << (rng() % 8)));
    }
    try {
      const StFile f = parse_safetensors(bad, "fuzz");
      for (const auto& [name, t] : f.tensors) {
        uint64_t numel = 1;
        for (int64_t d : t.shape) numel *= uint64_t(d);
        EXPECT_EQ(t.data.size(), numel * lriad::io::st_dtype_size(t.dtype)) << name;
      }
      ++parsed;
    } catch (const lriad::Error&) {
    } catch (const std::exception& e) {
      ADD_FAILURE() << "iteration " << iter << " threw a non-lriad exception: " << e.what();
    }
  }
  EXPECT_LT(parsed, 3000);  // the mutations did reach the validation
}
