// Tokenizer: trains sentencepiece on the template corpus and wraps a loaded model.
#include "lriad/text/tokenizer.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>
#include <set>

#include "lriad/data/dataset.h"
#include "lriad/io/error.h"
#include "lriad/io/fs.h"
#include "lriad/text/prompt.h"

namespace fs = std::filesystem;

namespace lriad::text {
namespace {

void validate(const TokenizerTrainOptions& o) {
  if (o.vocab_size < kMinVocabSize)
    throw Error("tokenizer vocab_size " + std::to_string(o.vocab_size) + " is too small",
                "byte fallback alone takes 256 pieces and the specials and format tags 9 more: use at least " +
                    std::to_string(kMinVocabSize));
  if (o.model_type != "unigram" && o.model_type != "bpe")
    throw Error("tokenizer model_type '" + o.model_type + "' is not supported", "use unigram or bpe");
}

// The training text: corpus_sentences() with every line repeated as often as it would be seen
// in training, relative to the others. A category's prompt comes with every sample, and normal
// and anomalous samples are about as frequent, but the templates write one normal completion per
// phrasing against (defect types + 1) x 10 anomalous ones; unweighted, "normal" would be left in
// pieces while rare region phrases got whole ones.
std::string corpus_text(const TokenizerTrainOptions& o, size_t* lines) {
  const auto sentences = corpus_sentences(o.categories, o.defect_types, o.grounded);
  enum Kind { Prompt, Normal, Anomalous };
  const std::string normal_answer = std::string(kAnswerOpen) + "normal" + kAnswerClose;
  auto kind = [&](const std::string& s) {
    if (s.rfind(kThinkOpen, 0) != 0) return Prompt;
    return s.find(normal_answer) != std::string::npos ? Normal : Anomalous;
  };
  size_t count[3] = {0, 0, 0};
  for (const auto& s : sentences) ++count[kind(s)];
  const size_t prompts = count[Prompt], normals = count[Normal], anomalous = count[Anomalous];
  const size_t normal_weight = std::max<size_t>(1, anomalous / std::max<size_t>(1, normals));
  const size_t prompt_weight = std::max<size_t>(1, 2 * anomalous / std::max<size_t>(1, prompts));
  std::string text;
  *lines = 0;
  auto add = [&](std::string s, size_t times) {
    for (char& c : s)
      if (c == '\n' || c == '\r') c = ' ';  // one sentence per line
    for (size_t i = 0; i < times; ++i) text += s + "\n";
    *lines += times;
  };
  for (const auto& s : sentences) {
    const Kind k = kind(s);
    add(s, k == Prompt ? prompt_weight : k == Normal ? normal_weight : 1);
  }
  for (const auto& s : o.extra_sentences) add(s, 1);
  return text;
}

SpmTrainOptions spm_options(const std::string& corpus, const std::string& prefix, const TokenizerTrainOptions& o) {
  SpmTrainOptions s;
  s.input = corpus;
  s.model_prefix = prefix;
  s.vocab_size = o.vocab_size;
  s.model_type = o.model_type;
  s.user_defined_symbols = {kThinkOpen, kThinkClose, kAnswerOpen, kAnswerClose, kImageTag};
  s.extra = {
      {"unk_id", std::to_string(kUnkId)},
      {"bos_id", std::to_string(kBosId)},
      {"eos_id", std::to_string(kEosId)},
      {"pad_id", std::to_string(kPadId)},
      {"byte_fallback", "true"},  // any text round-trips, no <unk>
      {"character_coverage", "1.0"},
      // No dummy prefix and no normalisation: encode(a + b) == encode(a) + encode(b) at a tag
      // boundary ("<answer>normal" encodes the same alone and inside a completion), and
      // decode(encode(s)) == s byte for byte, whitespace included.
      {"add_dummy_prefix", "false"},
      {"normalization_rule_name", "identity"},
      {"remove_extra_whitespaces", "false"},
      {"num_threads", "1"},  // one thread: the same corpus gives the same bytes
  };
  return s;
}

}  // namespace

Tokenizer Tokenizer::train(const std::string& out_dir, const TokenizerTrainOptions& options) {
  validate(options);
  // 1. the corpus, one sentence per line
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  if (ec) throw Error("cannot create tokenizer directory " + out_dir + ": " + ec.message());
  size_t lines = 0;
  const std::string corpus = (fs::path(out_dir) / "tokenizer_corpus.txt").string();
  io::write_file_atomic(corpus, corpus_text(options, &lines));

  // 2. train under a temporary prefix; a corpus too small for the vocabulary gets the largest
  //    vocabulary it supports instead of an error
  const std::string tmp = (fs::path(out_dir) / ".tokenizer.tmp").string();
  SpmTrainOptions spm = spm_options(corpus, tmp, options);
  try {
    SentencePiece::train(spm);
  } catch (const Error& e) {
    if (std::string(e.what()).find("too high") == std::string::npos) throw;
    spdlog::warn("the tokenizer corpus ({} lines) is too small for vocab_size {}: training a smaller vocabulary", lines,
                 options.vocab_size);
    spm.extra["hard_vocab_limit"] = "false";
    SentencePiece::train(spm);
  }

  // 3. move into place
  const std::string model = (fs::path(out_dir) / "tokenizer.model").string();
  for (const char* ext : {".model", ".vocab"}) {
    fs::rename(tmp + ext, (fs::path(out_dir) / (std::string("tokenizer") + ext)).string(), ec);
    if (ec) throw Error("cannot move " + tmp + ext + " into place in " + out_dir + ": " + ec.message());
  }
  Tokenizer tok(model);
  if (tok.vocab_size() < options.vocab_size)
    spdlog::warn("tokenizer {} holds {} pieces, fewer than the {} asked for", model, tok.vocab_size(),
                 options.vocab_size);
  return tok;
}

Tokenizer::Tokenizer(const std::string& model_path)
    : sp_(std::make_shared<SentencePiece>(model_path)), path_(model_path) {
  vocab_size_ = sp_->vocab_size();
  unk_ = sp_->unk_id();
  bos_ = sp_->bos_id();
  eos_ = sp_->eos_id();
  if (eos_ < 0)
    throw Error("tokenizer " + model_path + " has no end-of-sequence piece",
                "generation needs eos to stop; train one with `lriad tokenizer train`");
  pad_ = sp_->pad_id() >= 0 ? sp_->pad_id() : eos_;  // padding is masked out, any id will do
  // A tag counts only when it is one piece that a text encodes to on its own.
  auto tag_id = [&](const char* tag) {
    const int id = sp_->piece_to_id(tag);
    if (id == unk_ || id < 0) return -1;
    return sp_->encode(tag) == std::vector<int>{id} ? id : -1;
  };
  think_open_ = tag_id(kThinkOpen);
  think_close_ = tag_id(kThinkClose);
  answer_open_ = tag_id(kAnswerOpen);
  answer_close_ = tag_id(kAnswerClose);
  image_ = tag_id(kImageTag);
}

std::vector<int> Tokenizer::encode(const std::string& text) const { return sp_->encode(text); }

std::string Tokenizer::decode_completion(const int64_t* ids, int64_t length) const {
  std::vector<int> out;
  for (int64_t t = 0; t < length && ids[t] != eos_; ++t) out.push_back(int(ids[t]));
  return decode(out);
}

std::string Tokenizer::decode(const std::vector<int>& ids) const {
  for (int id : ids)
    if (id < 0 || id >= vocab_size_)
      throw Error("token id " + std::to_string(id) + " is outside the vocabulary of " + path_ + " (size " +
                  std::to_string(vocab_size_) + ")");
  return sp_->decode(ids);
}

std::vector<std::string> Tokenizer::encode_pieces(const std::string& text) const { return sp_->encode_pieces(text); }

std::string Tokenizer::piece(int id) const { return sp_->id_to_piece(id); }

bool Tokenizer::has_format_tokens() const {
  return think_open_ >= 0 && think_close_ >= 0 && answer_open_ >= 0 && answer_close_ >= 0 && image_ >= 0;
}

TokenizerTrainSummary train_tokenizer_for_dataset(const TokenizerDatasetOptions& o) {
  // 1. names: the known ones (the demo's, from the caller), joined by the dataset's
  std::set<std::string> cats(o.known_categories.begin(), o.known_categories.end());
  std::set<std::string> types(o.known_defect_types.begin(), o.known_defect_types.end());
  if (!o.format.empty()) {
    data::LoadOptions load;
    load.categories = o.categories;
    const data::Dataset ds = data::load_dataset(data::parse_format(o.format), o.root, load);
    for (const auto& w : ds.warnings) spdlog::warn("{}", w);
    cats.insert(ds.categories.begin(), ds.categories.end());
    for (const auto& s : ds.samples)
      if (s.label == data::Label::Anomalous) types.insert(s.defect_type);
  }
  // 2. train
  TokenizerTrainOptions train = o.train;
  train.categories.assign(cats.begin(), cats.end());
  train.defect_types.assign(types.begin(), types.end());
  const Tokenizer tok = Tokenizer::train(o.out, train);
  TokenizerTrainSummary s;
  s.model_path = tok.model_path();
  s.vocab_size = tok.vocab_size();
  s.requested_vocab_size = train.vocab_size;
  s.corpus_sentences =
      corpus_sentences(train.categories, train.defect_types, train.grounded).size() + train.extra_sentences.size();
  s.categories = cats.size();
  s.defect_types = types.size();
  return s;
}

}  // namespace lriad::text
