// sentencepiece behind a private link namespace (see src/text/spm_shim.cpp for why).
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace lriad::text {

struct SpmTrainOptions {
  std::string input;         // text file, one sentence per line
  std::string model_prefix;  // writes <prefix>.model and <prefix>.vocab
  int vocab_size = 512;
  std::string model_type = "unigram";             // unigram | bpe | word | char
  std::vector<std::string> user_defined_symbols;  // kept as single pieces, never split
  std::map<std::string, std::string> extra;       // any other trainer flag, e.g. {"pad_id", "3"}
};

class SentencePiece {
 public:
  // Trains a model; throws lriad::Error with sentencepiece's message on failure.
  static void train(const SpmTrainOptions& options);

  // Loads `<path>` (a .model file); throws naming the path.
  explicit SentencePiece(const std::string& model_path);
  ~SentencePiece();
  SentencePiece(const SentencePiece&) = delete;
  SentencePiece& operator=(const SentencePiece&) = delete;

  std::vector<int> encode(const std::string& text) const;
  std::vector<std::string> encode_pieces(const std::string& text) const;
  std::string decode(const std::vector<int>& ids) const;
  int piece_to_id(const std::string& piece) const;  // unk_id() when unknown
  std::string id_to_piece(int id) const;
  int vocab_size() const;
  int unk_id() const;
  int bos_id() const;  // -1 when disabled
  int eos_id() const;
  int pad_id() const;

 private:
  void* handle_ = nullptr;
};

// Where the shim module is loaded from: $LRIAD_SPM_SHIM, else next to the executable,
// else <exe dir>/../lib/lriad/. Throws if none exists.
std::string spm_shim_path();

}  // namespace lriad::text
