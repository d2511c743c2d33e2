// sentencepiece in a process that links and has used LibTorch (Debian's libsentencepiece would
// crash such a process through its protobuf clash; the dlmopen shim keeps them apart).
#include <gtest/gtest.h>

#include <fstream>
#include <torch/torch.h>

#include "fixtures.h"
#include "lriad/text/sentencepiece.h"
#include "lriad/io/error.h"

using namespace lriad;

TEST(SentencePieceWithTorch, TrainEncodeDecodeAfterTorchOps) {
  // 1) a LibTorch op first, so that libtorch (and its protobuf) is initialised.
  auto t = torch::ones({8, 8}).matmul(torch::ones({8, 8}));
  ASSERT_FLOAT_EQ(t.sum().item<float>(), 512.f);

  // 2) train on a small corpus with the format tags as user-defined symbols.
  test::TempDir dir;
  {
    std::ofstream corpus(dir / "corpus.txt");
    const char* words[] = {"scratch", "crack", "hole", "stain", "bottle", "screw", "upper left", "center"};
    for (int i = 0; i < 300; ++i)
      corpus << "<think>the " << words[i % 8] << " looks " << (i % 3 ? "normal" : "defective") << " near the "
             << words[(i + 3) % 8] << "</think><answer>" << (i % 2 ? "normal" : "anomalous") << "</answer>\n";
  }
  text::SpmTrainOptions o;
  o.input = dir / "corpus.txt";
  o.model_prefix = dir / "tok";
  o.vocab_size = 48;
  o.user_defined_symbols = {"<think>", "</think>", "<answer>", "</answer>"};
  text::SentencePiece::train(o);

  // 3) load, encode, decode: round trip, tags are single pieces.
  text::SentencePiece sp(dir / "tok.model");
  EXPECT_EQ(sp.vocab_size(), 48);
  const std::string s = "<think>the crack looks defective</think><answer>anomalous</answer>";
  const auto ids = sp.encode(s);
  EXPECT_EQ(sp.decode(ids), s);
  const auto pieces = sp.encode_pieces(s);
  EXPECT_NE(std::find(pieces.begin(), pieces.end(), "<think>"), pieces.end());
  EXPECT_NE(std::find(pieces.begin(), pieces.end(), "</answer>"), pieces.end());
  EXPECT_EQ(sp.id_to_piece(sp.piece_to_id("<answer>")), "<answer>");

  // 4) LibTorch still works after sentencepiece ran.
  EXPECT_FLOAT_EQ(torch::tensor({1.f, 2.f}).sum().item<float>(), 3.f);
}

TEST(SentencePieceWithTorch, MissingModelIsNamed) {
  try {
    text::SentencePiece sp("/nonexistent/tok.model");
    FAIL();
  } catch (const lriad::Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/tok.model"), std::string::npos);
  }
}
