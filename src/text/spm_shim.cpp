// C-ABI shim over Debian's libsentencepiece, loaded with dlmopen() into its own link namespace.
// Why: libsentencepiece.so.0 exports a private protobuf-lite 3.14 whose symbols clash with the
// protobuf 3.21 that libtorch uses; a process linking both crashes before main(). Nothing but
// plain C types crosses this boundary (each namespace has its own libstdc++).
#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <cstring>
#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>

namespace {

using sentencepiece::SentencePieceProcessor;

// Copies `s` into `out` (NUL-terminated, truncated to `cap`); returns the full length.
long copy_out(const std::string& s, char* out, long cap) {
  if (out && cap > 0) {
    const long n = std::min<long>(cap - 1, long(s.size()));
    std::memcpy(out, s.data(), size_t(n));
    out[n] = '\0';
  }
  return long(s.size());
}

SentencePieceProcessor* proc(void* h) { return static_cast<SentencePieceProcessor*>(h); }

}  // namespace

extern "C" {

// `kwargs` holds "key=value" lines (sentencepiece trainer flags without "--").
int lriad_spm_train(const char* kwargs, char* err, long err_cap) {
  std::unordered_map<std::string, std::string> args;
  std::istringstream lines(kwargs);
  for (std::string line; std::getline(lines, line);) {
    const size_t eq = line.find('=');
    if (eq != std::string::npos) args[line.substr(0, eq)] = line.substr(eq + 1);
  }
  const auto status = sentencepiece::SentencePieceTrainer::Train(args);
  if (status.ok()) return 0;
  copy_out(status.ToString(), err, err_cap);
  return 1;
}

void* lriad_spm_load(const char* path, char* err, long err_cap) {
  auto* p = new SentencePieceProcessor();
  const auto status = p->Load(path);
  if (status.ok()) return p;
  copy_out(status.ToString(), err, err_cap);
  delete p;
  return nullptr;
}

void lriad_spm_free(void* h) { delete proc(h); }

// Writes up to `cap` ids; returns how many the text encodes to (call again if larger).
long lriad_spm_encode(void* h, const char* text, long len, int* out, long cap) {
  std::vector<int> ids;
  if (!proc(h)->Encode(std::string(text, size_t(len)), &ids).ok()) return -1;
  for (long i = 0; i < cap && i < long(ids.size()); ++i) out[i] = ids[size_t(i)];
  return long(ids.size());
}

long lriad_spm_decode(void* h, const int* ids, long n, char* out, long cap) {
  std::string text;
  if (!proc(h)->Decode(std::vector<int>(ids, ids + n), &text).ok()) return -1;
  return copy_out(text, out, cap);
}

int lriad_spm_piece_to_id(void* h, const char* piece) { return proc(h)->PieceToId(piece); }

long lriad_spm_id_to_piece(void* h, int id, char* out, long cap) {
  if (id < 0 || id >= proc(h)->GetPieceSize()) return -1;
  return copy_out(proc(h)->IdToPiece(id), out, cap);
}

int lriad_spm_vocab_size(void* h) { return proc(h)->GetPieceSize(); }

// which: 0 unk, 1 bos, 2 eos, 3 pad (-1 when the model has none).
int lriad_spm_special_id(void* h, int which) {
  switch (which) {
    case 0:
      return proc(h)->unk_id();
    case 1:
      return proc(h)->bos_id();
    case 2:
      return proc(h)->eos_id();
    default:
      return proc(h)->pad_id();
  }
}

}  // extern "C"
