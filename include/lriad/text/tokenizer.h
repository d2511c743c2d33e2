// The policy's tokenizer: a sentencepiece model trained on the template corpus (prompt.h), with
// the format tags as single pieces and byte fallback so that any text round-trips.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "lriad/text/sentencepiece.h"

namespace lriad::text {

struct TokenizerTrainOptions {
  int vocab_size = 512;  // includes 4 specials, 5 format tags and 256 byte pieces; a corpus too
                         // small for it gets the largest vocabulary it supports (warned)
  // bpe by default: on a corpus of templates, unigram's EM keeps few pieces (it cannot fill 512
  // on the demo corpus) and splits even frequent words ("s|am|pl|e"); bpe merges them whole.
  std::string model_type = "bpe";       // bpe | unigram
  std::vector<std::string> categories;  // corpus names
  std::vector<std::string> defect_types;
  std::vector<std::string> extra_sentences;  // appended to the template corpus
  // The chains grounded in the normal reference's evidence join the corpus (a model with a
  // reference writes them); without, only the short templates, whose words then get more pieces.
  bool grounded = true;
};

// Fixed special ids of trained models (external models may differ).
inline constexpr int kUnkId = 0, kBosId = 1, kEosId = 2, kPadId = 3;
// Smallest vocabulary train() accepts: 4 specials + 5 tags + 256 bytes + a few characters.
inline constexpr int kMinVocabSize = 300;

class Tokenizer {
 public:
  // Writes <out_dir>/tokenizer_corpus.txt (corpus_sentences(), each line repeated by how often
  // it is seen in training: prompts and normal completions weigh as much as the many anomalous
  // variants), tokenizer.model and tokenizer.vocab (each through a temporary name and a rename)
  // and loads the model. Deterministic: same options and directory, same bytes. The model has
  // no dummy prefix and no normalisation: decode(encode(s)) == s, and encode(a + b) ==
  // encode(a) + encode(b) when b starts with a tag (prompt + completion encode as one).
  static Tokenizer train(const std::string& out_dir, const TokenizerTrainOptions& options);

  // Loads any sentencepiece .model (ours or e.g. a LLaMA/Gemma one). Throws if it has no eos.
  // pad_id() falls back to eos when the model has no pad piece. Format tags that are not single
  // pieces are encoded as text and has_format_tokens() is false.
  explicit Tokenizer(const std::string& model_path);

  std::vector<int> encode(const std::string& text) const;  // no bos/eos added
  std::string decode(const std::vector<int>& ids) const;   // ids outside the vocabulary throw
  // A generated completion: the first `length` ids, stopping before the first eos.
  std::string decode_completion(const int64_t* ids, int64_t length) const;
  std::vector<std::string> encode_pieces(const std::string& text) const;
  std::string piece(int id) const;

  int vocab_size() const { return vocab_size_; }
  int pad_id() const { return pad_; }
  int bos_id() const { return bos_; }  // -1 when the model has none
  int eos_id() const { return eos_; }
  int unk_id() const { return unk_; }
  // Ids of the format tags; -1 when the model does not hold the tag as one piece.
  int think_open() const { return think_open_; }
  int think_close() const { return think_close_; }
  int answer_open() const { return answer_open_; }
  int answer_close() const { return answer_close_; }
  int image() const { return image_; }
  bool has_format_tokens() const;
  const std::string& model_path() const { return path_; }

 private:
  std::shared_ptr<SentencePiece> sp_;  // shared: copies of a Tokenizer are cheap and read-only
  std::string path_;
  int vocab_size_ = 0, pad_ = -1, bos_ = -1, eos_ = -1, unk_ = -1;
  int think_open_ = -1, think_close_ = -1, answer_open_ = -1, answer_close_ = -1, image_ = -1;
};

// `lriad tokenizer train`: the corpus names are the known ones (the callers pass the synthetic demo's,
// demo::category_names() and demo::defect_type_names()) joined by a dataset's when `format` is set.
struct TokenizerDatasetOptions {
  std::string out;  // output directory, created if missing
  std::vector<std::string> known_categories, known_defect_types;
  TokenizerTrainOptions train;          // categories/defect_types are filled in here
  std::string format;                   // mvtec | visa | folder | synth; "" = no dataset
  std::string root;                     // dataset root (with format)
  std::vector<std::string> categories;  // dataset categories to read; empty = all
};

struct TokenizerTrainSummary {
  std::string model_path;
  int vocab_size = 0;            // what the model holds
  int requested_vocab_size = 0;  // what was asked for
  size_t corpus_sentences = 0;
  size_t categories = 0, defect_types = 0;
};

TokenizerTrainSummary train_tokenizer_for_dataset(const TokenizerDatasetOptions& options);

}  // namespace lriad::text
