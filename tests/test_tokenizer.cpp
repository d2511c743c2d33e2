// The sentencepiece tokenizer lriad trains on its prompt and chain-of-thought corpus.
// Round trips, single-piece tags, determinism and `lriad tokenizer train`.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <random>
#include <set>

#include "fixtures.h"
#include "text_fixtures.h"
#include "lriad/demo/synth.h"
#include "lriad/io/error.h"
#include "lriad/text/defect_family.h"
#include "lriad/text/evidence.h"
#include "lriad/text/family_slot.h"
#include "lriad/text/prompt.h"
#include "lriad/text/tokenizer.h"

using namespace lriad::text;
using lriad::test::TempDir;
using lriad::test::thin_dark_line;

// ---------------------------------------------------------------------------------------------
// Tokenizer (needs liblriad_spm_shim.so next to this binary)

namespace {
TokenizerTrainOptions small_options() {
  TokenizerTrainOptions o;
  o.vocab_size = 512;
  o.categories = {"bottle", "metal_nut", "hex_nut", "wood"};
  o.defect_types = {"crack", "scratch", "broken_large", "color", "contamination"};
  return o;
}
}  // namespace

TEST(Tokenizer, RoundTripsSpecialPiecesAndDeterminism) {
  TempDir a;
  const Tokenizer tok = Tokenizer::train(a.path(), small_options());
  EXPECT_EQ(tok.vocab_size(), 512);
  EXPECT_EQ(tok.unk_id(), 0);
  EXPECT_EQ(tok.bos_id(), 1);
  EXPECT_EQ(tok.eos_id(), 2);
  EXPECT_EQ(tok.pad_id(), 3);
  ASSERT_TRUE(tok.has_format_tokens());

  // 1. every template string round-trips exactly
  const auto opts = small_options();
  for (const auto& s : corpus_sentences(opts.categories, opts.defect_types)) {
    const auto ids = tok.encode(s);
    ASSERT_EQ(tok.decode(ids), s);
  }
  // ... and so does text outside the corpus (byte fallback, no normalisation)
  for (const std::string s : {"  two  spaces\tand a tab\n", "Ünïcödé ✓ 😀", "x", "", "<think>"})
    EXPECT_EQ(tok.decode(tok.encode(s)), s);

  // 2. each tag is one piece, alone and inside text
  const std::pair<const char*, int> tags[] = {{"<think>", tok.think_open()},
                                              {"</think>", tok.think_close()},
                                              {"<answer>", tok.answer_open()},
                                              {"</answer>", tok.answer_close()},
                                              {"<image>", tok.image()}};
  for (const auto& [tag, id] : tags) {
    EXPECT_EQ(tok.encode(tag), std::vector<int>{id}) << tag;
    EXPECT_EQ(tok.piece(id), tag);
    const auto ids = tok.encode(std::string("abc") + tag + "def");
    EXPECT_EQ(std::count(ids.begin(), ids.end(), id), 1) << tag;
  }

  // 3. stable at tag boundaries: the answer encodes the same alone and inside the completion,
  //    and prompt + completion the same as the two encoded apart (no dummy prefix)
  const std::string answer = "<answer>normal</answer>";
  const std::string c = build_completion({"bottle", false, "", std::nullopt, 1});
  const auto whole = tok.encode(c), tail = tok.encode(answer);
  ASSERT_GE(whole.size(), tail.size());
  EXPECT_TRUE(std::equal(tail.begin(), tail.end(), whole.end() - long(tail.size())));
  auto joined = tok.encode(build_prompt("bottle"));
  joined.insert(joined.end(), whole.begin(), whole.end());
  EXPECT_EQ(tok.encode(build_prompt("bottle") + c), joined);

  // 4. short: at 512 pieces a short template is 15-70 tokens, a grounded chain (which states the
  //    evidence) 40-95 (configs/tiny.json has 1024 pieces: ~50)
  const EvidenceFacts f = thin_dark_line();
  for (int v = 0; v < kCotVariants; ++v) {
    const auto n = tok.encode(build_completion({"metal_nut", true, "broken_large", Region::UpperLeft, v})).size();
    EXPECT_GE(n, 15u);
    EXPECT_LE(n, 70u);
    const auto g = tok.encode(build_completion({"metal_nut", true, "broken_large", std::nullopt, v, &f})).size();
    EXPECT_GE(g, 40u);
    EXPECT_LE(g, 95u);
    std::printf("phrasing %d: short template %zu tokens, grounded chain %zu tokens\n", v, n, g);
  }

  // 5. training twice gives the same bytes (into the same directory: the model records the
  //    corpus path in its trainer spec)
  const std::string first = lriad::test::read_text(a / "tokenizer.model");
  Tokenizer::train(a.path(), small_options());
  EXPECT_EQ(lriad::test::read_text(a / "tokenizer.model"), first);
  EXPECT_FALSE(lriad::test::read_text(a / "tokenizer_corpus.txt").empty());

  // 6. reloading from the path gives the same ids
  const Tokenizer again(a / "tokenizer.model");
  EXPECT_EQ(again.encode(c), whole);
  EXPECT_THROW(again.decode({0, 512}), lriad::Error);
}

TEST(Tokenizer, SmallCorpusOrVocabularyIsHandled) {
  TempDir dir;
  TokenizerTrainOptions o;
  o.categories = {"x"};
  o.defect_types = {"y"};
  o.vocab_size = 4000;  // far more than one category's templates support: warned, smaller
  const Tokenizer tok = Tokenizer::train(dir.path(), o);
  EXPECT_LT(tok.vocab_size(), 4000);
  EXPECT_TRUE(tok.has_format_tokens());
  o.vocab_size = 100;  // below the byte pieces: a clear error
  EXPECT_THROW(Tokenizer::train(dir.path(), o), lriad::Error);
}

TEST(Tokenizer, ModelWithoutFormatTags) {
  // An external-style model: no user-defined tags, no pad -> tags encode as text, pad = eos.
  TempDir dir;
  lriad::test::write_text(dir / "c.txt", "the crack is in the upper left\nso it is normal\n<think>x</think>\n");
  SpmTrainOptions o;
  o.input = dir / "c.txt";
  o.model_prefix = dir / "ext";
  o.vocab_size = 40;
  o.extra = {{"hard_vocab_limit", "false"}, {"pad_id", "-1"}};
  SentencePiece::train(o);
  const Tokenizer tok(dir / "ext.model");
  EXPECT_FALSE(tok.has_format_tokens());
  EXPECT_EQ(tok.think_open(), -1);
  EXPECT_EQ(tok.pad_id(), tok.eos_id());
  EXPECT_GT(tok.encode("<think>").size(), 1u);
  EXPECT_THROW(Tokenizer(dir / "missing.model"), lriad::Error);
}

TEST(Tokenizer, CliTrainsTheDemoTokenizer) {
  TempDir dir;
  const auto r = lriad::test::run_command(std::string(LRIAD_BIN) + " tokenizer train --out " + dir.path(), true);
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("vocabulary size 512"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(dir / "tokenizer.model"), std::string::npos) << r.out;
  // A dataset's names join the corpus.
  lriad::test::make_mvtec_tree(dir / "mvtec");
  const auto d = lriad::test::run_command(
      std::string(LRIAD_BIN) + " tokenizer train --out " + (dir / "t2") + " --format mvtec --root " + (dir / "mvtec"),
      true);
  ASSERT_EQ(d.code, 0) << d.out;
  EXPECT_NE(lriad::test::read_text(dir / "t2/tokenizer_corpus.txt").find("Inspect the alpha."), std::string::npos);
  // --format without --root is refused.
  EXPECT_NE(
      lriad::test::run_command(std::string(LRIAD_BIN) + " tokenizer train --out " + (dir / "t3") + " -f mvtec").code,
      0);
}

// FamilySlot writes the look's family where a chain names it: fed an anomalous chain's tokens one
// by one as generation would, it fires exactly after "There is what looks like" and after
// "<answer>anomalous", and what it writes is the very tokens of the chain training taught; another
// word is written over whatever the policy would draw; a prompt without a family, a normal chain
// and a chain below the level get nothing; rows map to prompts by the group.
TEST(FamilySlot, WritesTheLooksFamilyAsTrainingTokenisedIt) {
  TempDir a;
  const Tokenizer tok = Tokenizer::train(a.path(), small_options());
  EvidenceFacts f;
  f.level = 1.0;
  f.peak = f.ratio = 3.4;
  f.above = true;
  f.where = Region::Right;
  f.extent = EvidenceFacts::Extent::Thin;
  f.tone = EvidenceFacts::Tone::Darker;
  const FamilySlot slot(tok, {"crack", "", "contamination"}, 2);
  const auto policy_part = [&](const std::string& type, bool anomalous) {
    CotSpec s;
    s.category = "wood";
    s.anomalous = anomalous;
    s.defect_type = type;
    s.evidence = &f;
    const std::string chain = build_completion(s), opening = grounded_opening("wood", f);
    EXPECT_EQ(chain.rfind(opening, 0), 0u);
    const auto ids = tok.encode(chain.substr(opening.size()));
    return std::vector<int64_t>(ids.begin(), ids.end());
  };
  const auto ids_of = [&](const std::string& s) {
    const auto ids = tok.encode(s);
    return std::vector<int64_t>(ids.begin(), ids.end());
  };
  // Row 1 is prompt 0's second completion; its chain names a crack.
  for (const auto& [row, word] : std::vector<std::pair<int64_t, std::string>>{{1, "crack"}, {4, "contamination"}}) {
    const auto target = policy_part(word, true);
    std::vector<int64_t> so_far;
    int fills = 0;
    for (size_t t = 0; t < target.size(); ++t) {
      so_far.push_back(target[t]);
      const auto fill = slot(row, so_far);
      if (fill.empty()) continue;
      ++fills;
      ASSERT_LE(t + 1 + fill.size(), target.size());
      EXPECT_EQ(fill, std::vector<int64_t>(target.begin() + long(t + 1), target.begin() + long(t + 1 + fill.size())))
          << word << " at token " << t;
    }
    EXPECT_EQ(fills, 2) << word;
  }
  // A chain that would name a scratch gets the look's crack, in the finding and in the answer.
  const std::string lead = " There is what looks like";
  EXPECT_EQ(slot(0, ids_of(lead)), ids_of(" a crack"));
  EXPECT_EQ(slot(5, ids_of(lead)), ids_of(" contamination"));
  EXPECT_EQ(slot(0, ids_of(lead + " a scratch, so it is anomalous.</think><answer>anomalous")), ids_of(": crack"));
  EXPECT_TRUE(slot(0, ids_of(lead + " a")).empty());
  // An answer after a finding the slot did not write keeps its own type (think and answer agree).
  EXPECT_TRUE(
      slot(0, ids_of(" There is only a faint change, like a scratch, so it is anomalous.</think><answer>anomalous"))
          .empty());
  // No family for prompt 1 (below the level); a normal chain and a faint change get nothing.
  EXPECT_TRUE(slot(2, ids_of(lead)).empty());
  EXPECT_TRUE(slot(3, ids_of(lead)).empty());
  for (const auto& ids : {policy_part("crack", false), ids_of(" There is only a faint change, so it is anomalous.")}) {
    std::vector<int64_t> so_far;
    for (auto id : ids) {
      so_far.push_back(id);
      EXPECT_TRUE(slot(0, so_far).empty());
    }
  }
  EXPECT_THROW(slot(6, ids_of(lead)), lriad::Error);  // 3 prompts of 2
  EXPECT_THROW(FamilySlot(tok, {"crack"}, 0), lriad::Error);
}
