// `lriad tokenizer train`: train the sentencepiece tokenizer on the prompt/chain-of-thought corpus.
#include <spdlog/spdlog.h>

#include <iostream>

#include "common.h"
#include "lriad/demo/synth.h"
#include "lriad/text/tokenizer.h"

namespace lriad::cli {

void add_tokenizer_command(CLI::App& app, const GlobalOptions&) {
  auto* tok_cmd = app.add_subcommand("tokenizer", "Train the tokenizer");
  tok_cmd->require_subcommand(1);
  auto o = std::make_shared<text::TokenizerDatasetOptions>();
  auto* cmd = tok_cmd->add_subcommand("train", "Train a sentencepiece tokenizer on the prompt and reasoning templates");
  cmd->add_option("-o,--out", o->out, "Output directory (tokenizer.model, tokenizer.vocab, tokenizer_corpus.txt)")
      ->required();
  cmd->add_option("--vocab-size", o->train.vocab_size, "Vocabulary size (256 byte pieces included)")
      ->capture_default_str();
  cmd->add_option("--model-type", o->train.model_type, "sentencepiece model: bpe or unigram")
      ->check(CLI::IsMember({"bpe", "unigram"}))
      ->capture_default_str();
  auto* format = cmd->add_option("-f,--format", o->format,
                                 "Dataset whose category and defect names join the corpus: mvtec, visa, folder, synth");
  cmd->add_option("-r,--root", o->root, "Dataset root directory")->needs(format);
  format->needs(cmd->get_option("--root"));
  add_category_option(*cmd, o->categories)->needs(format);
  cmd->callback([o] {
    o->known_categories = demo::category_names();  // the demo's names are always known
    o->known_defect_types = demo::defect_type_names();
    const auto s = text::train_tokenizer_for_dataset(*o);
    spdlog::info("{} sentences from {} categories and {} defect types", s.corpus_sentences, s.categories,
                 s.defect_types);
    std::cout << "vocabulary size " << s.vocab_size << "\n" << s.model_path << "\n";
  });
}

}  // namespace lriad::cli
