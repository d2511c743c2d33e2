// Loads the sentencepiece shim with dlmopen(LM_ID_NEWLM) and wraps its C functions.
#include "lriad/text/sentencepiece.h"

#include <dlfcn.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <mutex>

#include "lriad/io/error.h"
#include "lriad/io/install.h"

namespace fs = std::filesystem;

namespace lriad::text {
namespace {

struct ShimApi {
  int (*train)(const char*, char*, long) = nullptr;
  void* (*load)(const char*, char*, long) = nullptr;
  void (*free_model)(void*) = nullptr;
  long (*encode)(void*, const char*, long, int*, long) = nullptr;
  long (*decode)(void*, const int*, long, char*, long) = nullptr;
  int (*piece_to_id)(void*, const char*) = nullptr;
  long (*id_to_piece)(void*, int, char*, long) = nullptr;
  int (*vocab_size)(void*) = nullptr;
  int (*special_id)(void*, int) = nullptr;
};

template <typename F>
void bind(void* lib, const char* name, F& fn, const std::string& path) {
  fn = reinterpret_cast<F>(dlsym(lib, name));
  if (!fn) throw Error("sentencepiece shim " + path + " lacks symbol " + name, "rebuild lriad");
}

const ShimApi& api() {
  static ShimApi shim;
  static std::once_flag once;
  std::call_once(once, [] {
    const std::string path = spm_shim_path();
    // A private namespace keeps the shim's protobuf-lite away from libtorch's protobuf.
    void* lib = dlmopen(LM_ID_NEWLM, path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!lib)
      throw Error(std::string("cannot load the sentencepiece shim: ") + dlerror(),
                  "is libsentencepiece0 installed (scripts/setup.sh)?");
    bind(lib, "lriad_spm_train", shim.train, path);
    bind(lib, "lriad_spm_load", shim.load, path);
    bind(lib, "lriad_spm_free", shim.free_model, path);
    bind(lib, "lriad_spm_encode", shim.encode, path);
    bind(lib, "lriad_spm_decode", shim.decode, path);
    bind(lib, "lriad_spm_piece_to_id", shim.piece_to_id, path);
    bind(lib, "lriad_spm_id_to_piece", shim.id_to_piece, path);
    bind(lib, "lriad_spm_vocab_size", shim.vocab_size, path);
    bind(lib, "lriad_spm_special_id", shim.special_id, path);
  });
  return shim;
}

}  // namespace

std::string spm_shim_path() {
  const char* name = "liblriad_spm_shim.so";
  if (const char* env = std::getenv("LRIAD_SPM_SHIM"); env && *env) {
    if (!fs::exists(env)) throw Error("LRIAD_SPM_SHIM points to a missing file: " + std::string(env));
    return env;
  }
  const std::string dir = io::executable_dir();  // the build tree: bin/; an install: lib/lriad/
  for (const fs::path& candidate : {fs::path(dir) / name, fs::path(dir) / ".." / "lib" / "lriad" / name})
    if (fs::exists(candidate)) return candidate.string();
  throw Error(std::string("cannot find ") + name + " next to the executable in " + dir,
              "build the 'lriad_spm_shim' target, or set LRIAD_SPM_SHIM to its path");
}

void SentencePiece::train(const SpmTrainOptions& o) {
  std::string args = "input=" + o.input + "\nmodel_prefix=" + o.model_prefix +
                     "\nvocab_size=" + std::to_string(o.vocab_size) + "\nmodel_type=" + o.model_type +
                     "\nminloglevel=2\n";
  std::string symbols;
  for (const auto& s : o.user_defined_symbols) symbols += (symbols.empty() ? "" : ",") + s;
  if (!symbols.empty()) args += "user_defined_symbols=" + symbols + "\n";
  for (const auto& [k, v] : o.extra) args += k + "=" + v + "\n";
  char err[1024] = {0};
  if (api().train(args.c_str(), err, sizeof err) != 0)
    throw Error("training the sentencepiece model " + o.model_prefix + ".model failed: " + err,
                "a smaller vocab_size helps when the corpus is small");
}

SentencePiece::SentencePiece(const std::string& model_path) {
  char err[1024] = {0};
  handle_ = api().load(model_path.c_str(), err, sizeof err);
  if (!handle_) throw Error("cannot load tokenizer " + model_path + ": " + err, "expected a sentencepiece .model file");
}

SentencePiece::~SentencePiece() {
  if (handle_) api().free_model(handle_);
}

std::vector<int> SentencePiece::encode(const std::string& text) const {
  std::vector<int> ids(text.size() + 8);
  long n = api().encode(handle_, text.data(), long(text.size()), ids.data(), long(ids.size()));
  if (n < 0) throw Error("sentencepiece could not encode the text");
  if (size_t(n) > ids.size()) {
    ids.resize(size_t(n));
    api().encode(handle_, text.data(), long(text.size()), ids.data(), n);
  }
  ids.resize(size_t(n));
  return ids;
}

std::vector<std::string> SentencePiece::encode_pieces(const std::string& text) const {
  std::vector<std::string> out;
  for (int id : encode(text)) out.push_back(id_to_piece(id));
  return out;
}

std::string SentencePiece::decode(const std::vector<int>& ids) const {
  std::string out(ids.size() * 8 + 16, '\0');
  long n = api().decode(handle_, ids.data(), long(ids.size()), out.data(), long(out.size()));
  if (n < 0) throw Error("sentencepiece could not decode the ids (out of range?)");
  if (size_t(n) >= out.size()) {
    out.assign(size_t(n) + 1, '\0');
    api().decode(handle_, ids.data(), long(ids.size()), out.data(), long(out.size()));
  }
  out.resize(size_t(n));
  return out;
}

int SentencePiece::piece_to_id(const std::string& piece) const { return api().piece_to_id(handle_, piece.c_str()); }

std::string SentencePiece::id_to_piece(int id) const {
  char buf[256];
  long n = api().id_to_piece(handle_, id, buf, sizeof buf);
  if (n < 0) throw Error("token id " + std::to_string(id) + " is outside the vocabulary");
  if (n < long(sizeof buf)) return std::string(buf, size_t(n));
  std::string big(size_t(n) + 1, '\0');
  api().id_to_piece(handle_, id, big.data(), long(big.size()));
  big.resize(size_t(n));
  return big;
}

int SentencePiece::vocab_size() const { return api().vocab_size(handle_); }
int SentencePiece::unk_id() const { return api().special_id(handle_, 0); }
int SentencePiece::bos_id() const { return api().special_id(handle_, 1); }
int SentencePiece::eos_id() const { return api().special_id(handle_, 2); }
int SentencePiece::pad_id() const { return api().special_id(handle_, 3); }

}  // namespace lriad::text
