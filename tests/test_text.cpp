// text/: prompt and chain-of-thought templates, parse_completion (table-driven), the tokenizer
// (round trips, single-piece tags, determinism) and `lriad tokenizer train`.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <random>
#include <set>

#include "fixtures.h"
#include "lriad/io/error.h"
#include "lriad/text/answer.h"
#include "lriad/text/defect_family.h"
#include "lriad/text/evidence.h"
#include "lriad/text/prompt.h"
#include "lriad/text/tokenizer.h"

using namespace lriad::text;
using lriad::test::TempDir;

namespace {

const std::vector<std::string> kKnown = {"crack", "broken_large", "thread_top", "scratch"};

constexpr std::optional<int> kNone = std::nullopt;

// The evidence of a thin dark line from the upper left into the top cell, 3.4 times the normal level.
EvidenceFacts thin_dark_line() {
  EvidenceFacts f;
  f.where = Region::UpperLeft;
  f.also = Region::Top;
  f.ratio = 3.4;
  f.above = true;
  f.extent = EvidenceFacts::Extent::Thin;
  f.tone = EvidenceFacts::Tone::Darker;
  return f;
}

std::string completion(const std::string& think, const std::string& answer) {
  return "<think>" + think + "</think><answer>" + answer + "</answer>";
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Prompt, regions, templates

TEST(Prompt, RendersUnderscoresAsSpaces) {
  const std::string p = build_prompt("metal_nut");
  EXPECT_NE(p.find("Inspect the metal nut."), std::string::npos) << p;
  EXPECT_EQ(p.find('_'), std::string::npos);
  EXPECT_NE(p.find("<think></think>"), std::string::npos);
  EXPECT_NE(p.find("<answer></answer>"), std::string::npos);
}

// model.prompt_evidence: lriad writes a grounded chain's opening (where, what it looks like, how
// strong) and the policy goes on from the decision point; the opening is exactly the start of the
// first phrasing's chain.
TEST(Prompt, GroundedOpeningIsTheChainUpToItsDecision) {
  const EvidenceFacts f = thin_dark_line();
  const std::string opening = grounded_opening("metal_nut", f);
  EXPECT_EQ(opening, "<think>The image shows a metal nut sample. I compare it with normal metal nut images: the largest "
                     "deviation is a thin, long mark darker than around it, at the upper left and top, 3.4 times the "
                     "normal level.");
  for (const bool anomalous : {false, true}) {
    const std::string chain = build_completion({"metal_nut", anomalous, anomalous ? "crack" : "", std::nullopt, 0, &f});
    ASSERT_EQ(chain.compare(0, opening.size(), opening), 0) << chain;
    // What the policy writes: the finding (the decision point's first word), the family, the verdict.
    EXPECT_EQ(chain.substr(opening.size()), anomalous ? " There is what looks like a crack, so it is anomalous.</think><answer>anomalous: crack</answer>"
                                                      : " Nothing there seems defective, so it is normal.</think><answer>normal</answer>");
  }
  EvidenceFacts below;
  below.where = Region::LowerRight;
  below.ratio = 0.7;
  // Below the level no area stands out: the opening says where the largest deviation is and how strong, no look.
  EXPECT_EQ(grounded_opening("metal_nut", below), "<think>The image shows a metal nut sample. I compare it with normal metal nut "
                                                  "images: the largest deviation is at the lower right, 0.7 times the normal level.");
}

TEST(Region, WordsParseBack) {
  for (int i = 0; i < kRegionCount; ++i) {
    const auto r = static_cast<Region>(i);
    EXPECT_EQ(parse_region(std::string("near the ") + region_word(r) + " area"), r) << region_word(r);
  }
}

TEST(Region, ParsesFreeText) {
  struct Case {
    const char* text;
    std::optional<Region> want;
  };
  const Case cases[] = {
      {"a scratch in the upper left", Region::UpperLeft},  // longest match: not "left"
      {"Upper-Left corner", Region::UpperLeft},             // case and hyphen
      {"top left", Region::UpperLeft},                      // synonym
      {"bottom right", Region::LowerRight},                 // not "bottom"
      {"in the centre", Region::Center},                    // British spelling
      {"on the left, then the top", Region::Left},          // the first phrase wins
      {"stop, leftover, topology", std::nullopt},           // whole words only
      {"", std::nullopt},                                   // empty text
      {"nothing here", std::nullopt},                       // no region phrase
  };
  for (const auto& c : cases) EXPECT_EQ(parse_region(c.text), c.want) << c.text;
}

TEST(Region, OfPoint) {
  EXPECT_EQ(region_of_point(0.0, 0.0), Region::UpperLeft);
  EXPECT_EQ(region_of_point(0.5, 0.1), Region::Top);        // column 1, row 0
  EXPECT_EQ(region_of_point(0.99, 0.5), Region::Right);     // column 2, row 1
  EXPECT_EQ(region_of_point(0.34, 0.67), Region::Bottom);   // 0.34*3 = 1.02, 0.67*3 = 2.01
  EXPECT_EQ(region_of_point(1.0, 1.0), Region::LowerRight); // clamped
  EXPECT_EQ(region_of_point(-1.0, std::nan("")), Region::UpperLeft);
}

TEST(Templates, ExamplesReadAsIntended) {
  EXPECT_EQ(build_completion({"bottle", false, "", std::nullopt, 0}),
            "<think>The image shows a bottle sample. I check the surface and the shape. The surface is "
            "uniform and the shape is intact, so it is normal.</think><answer>normal</answer>");
  EXPECT_EQ(build_completion({"hex_nut", true, "broken_corner", Region::UpperLeft, 0}),
            "<think>The image shows a hex nut sample. I check the surface and the shape. There is a broken "
            "corner defect at the upper left, so it is anomalous.</think><answer>anomalous: "
            "broken corner</answer>");
  // An unnamed defect (VisA's "anomaly") answers just "anomalous".
  EXPECT_EQ(build_completion({"pcb1", true, "anomaly", std::nullopt, 2}),
            "<think>I see a pcb1 sample. I look at every part of the surface. A defect is visible, so it is "
            "anomalous.</think><answer>anomalous</answer>");
  // Variants wrap around, negative ones too.
  EXPECT_EQ(build_completion({"wood", false, "", std::nullopt, -1}),
            build_completion({"wood", false, "", std::nullopt, kCotVariants - 1}));
}

TEST(Templates, VariantsDiffer) {
  std::set<std::string> seen;
  for (int v = 0; v < kCotVariants; ++v) seen.insert(build_completion({"tile", true, "crack", Region::Top, v}));
  EXPECT_EQ(seen.size(), size_t(kCotVariants));
}

TEST(Templates, RoundTripThroughTheParser) {
  const std::vector<std::string> cats = {"bottle", "metal_nut", "screw", "pcb1"};
  const std::vector<std::string> types = {"crack", "broken_large", "thread_top", "scratch_head",
                                          "manipulated_front", "anomaly", ""};
  int checked = 0;
  for (const auto& c : cats)
    for (int v = 0; v < kCotVariants; ++v)
      for (int anomalous = 0; anomalous < 2; ++anomalous)
        for (const auto& t : anomalous ? types : std::vector<std::string>{""})
          for (int r = -1; r < kRegionCount; ++r) {
            CotSpec s{c, anomalous == 1, t, std::nullopt, v};
            if (anomalous && r >= 0) s.region = static_cast<Region>(r);
            if (!anomalous && r >= 0) continue;  // normal completions name no region
            const std::string text = build_completion(s);
            const ParsedCompletion p = parse_completion(text, types);
            SCOPED_TRACE(text);
            EXPECT_TRUE(p.well_formed) << p.error;
            EXPECT_EQ(p.verdict, anomalous);
            EXPECT_EQ(p.reasoning_verdict, anomalous);
            EXPECT_TRUE(p.consistent);
            EXPECT_EQ(p.defect_type, anomalous && !is_unnamed_defect(t) ? t : "");
            EXPECT_EQ(p.region, s.region);
            ++checked;
          }
  EXPECT_EQ(checked, 4 * 3 * (1 + 7 * 10));
}

TEST(Templates, CorpusCoversEveryTemplate) {
  const auto corpus = corpus_sentences({"bottle", "metal_nut"}, {"crack", "good", "broken_large"});
  const std::set<std::string> set(corpus.begin(), corpus.end());
  EXPECT_EQ(set.size(), corpus.size());  // de-duplicated
  // Every short template: 2 categories x (1 prompt + 3 variants x (1 normal + 3 types (crack,
  // broken_large, unnamed) x 10)).
  size_t short_templates = 0;
  for (const std::string c : {"bottle", "metal_nut"})
    for (int v = 0; v < kCotVariants; ++v) {
      short_templates += set.count(build_completion({c, false, "", std::nullopt, v}));
      for (const std::string t : {"crack", "broken_large", ""})
        for (int r = -1; r < kRegionCount; ++r)
          short_templates += set.count(build_completion(
              {c, true, t, r < 0 ? std::nullopt : std::optional<Region>(Region(r)), v}));
    }
  EXPECT_EQ(short_templates, size_t(2 * 3 * (1 + 3 * 10)));
  // The grounded chains: every region pair, ratio and family a chain can state.
  EvidenceFacts f;
  f.where = Region::Left;
  f.also = Region::LowerLeft;
  f.ratio = 3.5;
  EXPECT_TRUE(set.count(build_completion({"bottle", false, "", std::nullopt, 0, &f})));
  for (const char* r : {"0.0", "4.7", "9.9", "10", "57", "99"})
    EXPECT_TRUE(set.count(std::string("<think>The largest deviation is ") + r + kDecisionMarker)) << r;
  f.above = true;
  f.ratio = 2.5;
  f.also.reset();
  f.extent = EvidenceFacts::Extent::Thin;
  f.tone = EvidenceFacts::Tone::Darker;
  size_t families = 0;  // each family is named by a chain of some phrasing
  for (auto fam : all_families())
    for (int v = 0; v < kCotVariants; ++v) {
      EvidenceFacts g = f;
      g.where = Region::Center;
      g.ratio = 2.5;
      bool any = false;
      for (auto e : {EvidenceFacts::Extent::Compact, EvidenceFacts::Extent::Thin, EvidenceFacts::Extent::Large})
        for (auto t : {EvidenceFacts::Tone::Same, EvidenceFacts::Tone::Darker, EvidenceFacts::Tone::Brighter, EvidenceFacts::Tone::Colour}) {
          g.extent = e;
          g.tone = t;
          any = any || set.count(build_completion({"bottle", true, family_word(fam), std::nullopt, v, &g}));
        }
      families += any;
    }
  EXPECT_EQ(families, size_t(kDefectFamilyCount * kCotVariants));
  // Without the grounded chains (a model without a reference): the short templates alone.
  const auto plain = corpus_sentences({"bottle", "metal_nut"}, {"crack", "good", "broken_large"}, false);
  EXPECT_EQ(plain.size(), size_t(2 * (1 + 3 * (1 + 3 * 10))));
  EXPECT_TRUE(set.count(build_prompt("metal_nut")));
  EXPECT_TRUE(set.count(build_completion({"bottle", true, "broken_large", Region::LowerRight, 1})));
  EXPECT_FALSE(set.count(build_completion({"bottle", true, "good", std::nullopt, 0})));  // good is no defect
  // No names: the synthetic demo's.
  const auto demo = corpus_sentences();
  EXPECT_GT(demo.size(), 1000u);
  EXPECT_TRUE(std::set<std::string>(demo.begin(), demo.end()).count(build_prompt("hex_nut")));
}

// ---------------------------------------------------------------------------------------------
// parse_completion

TEST(ParseCompletion, FormatTable) {
  const std::string think = "There is a crack, so it is anomalous.";
  struct Case {
    std::string text;
    bool well_formed;
    std::optional<int> verdict;
    const char* error_part;  // substring of `error` ("" when well-formed)
  };
  const Case cases[] = {
      // Well-formed normal
      {completion("Looks fine, so it is normal.", "normal"), true, 0, ""},
      // Well-formed anomalous with a defect type
      {completion(think, "anomalous: crack"), true, 1, ""},
      // Whitespace around and between the blocks is allowed
      {"\n <think> " + think + " </think>\n<answer> anomalous </answer>\n", true, 1, ""},
      // No closing </think>: the answer is still read
      {"<think>" + think + "<answer>anomalous</answer>", false, 1, "missing </think>"},
      // No opening <think>
      {think + "</think><answer>anomalous</answer>", false, 1, "missing <think>"},
      // No answer tags at all
      {"<think>" + think + "</think>anomalous", false, kNone, "missing <answer>"},
      // No closing </answer>
      {"<think>" + think + "</think><answer>anomalous", false, kNone, "missing </answer>"},
      // Answer before think
      {"<answer>anomalous</answer><think>" + think + "</think>", false, 1, "<answer> comes before </think>"},
      // Tags closed before opened
      {"</think>x<think><answer>normal</answer>", false, 0, "</think> comes before <think>"},
      // Duplicated answer: ambiguous, no verdict
      {completion(think, "normal") + "<answer>anomalous</answer>", false, kNone, "more than one <answer>"},
      // Duplicated think (nested)
      {"<think><think>" + think + "</think></think><answer>anomalous</answer>", false, 1, "more than one <think>"},
      // Extra text after </answer>: not well-formed, the verdict still counts
      {completion(think, "anomalous") + " I hope this helps.", false, 1, "text after </answer>"},
      // Text before <think>
      {"Sure! " + completion(think, "anomalous"), false, 1, "text before <think>"},
      // Text between the blocks
      {"<think>" + think + "</think> so <answer>anomalous</answer>", false, 1, "text between"},
      // Empty answer
      {completion(think, "  "), false, kNone, "empty <answer></answer>"},
      // Empty think
      {completion(" ", "normal"), false, 0, "empty <think></think>"},
      // Hedged: both verdicts
      {completion(think, "normal or anomalous"), false, kNone, "hedges"},
      // Hedged with a slash and other case
      {completion(think, "Anomalous / normal"), false, kNone, "hedges"},
      // Hedged after the separator
      {completion(think, "anomalous: normal"), false, kNone, "hedges"},
      // Negated verdict
      {completion(think, "not anomalous"), false, kNone, "negates"},
      // No verdict word
      {completion(think, "maybe"), false, kNone, "no verdict"},
      // "abnormal" is a verdict word, "normal" inside it is not
      {completion(think, "abnormal"), true, 1, ""},
      // Case variants
      {completion(think, "NORMAL"), true, 0, ""},
      {completion(think, "Anomalous: Crack"), true, 1, ""},
      // Synonyms
      {completion(think, "good"), true, 0, ""},
      {completion(think, "OK"), true, 0, ""},
      {completion(think, "defective - scratch"), true, 1, ""},
      {completion(think, "The part is normal."), true, 0, ""},
      // Empty input
      {"", false, kNone, "missing <think>"},
  };
  for (const auto& c : cases) {
    const ParsedCompletion p = parse_completion(c.text, kKnown);
    EXPECT_EQ(p.well_formed, c.well_formed) << c.text << "\n  error: " << p.error;
    EXPECT_EQ(p.verdict, c.verdict) << c.text;
    EXPECT_NE(p.error.find(c.error_part), std::string::npos) << c.text << "\n  error: " << p.error;
    EXPECT_EQ(p.error.empty(), c.well_formed) << c.text;
  }
}

TEST(ParseCompletion, DefectTypes) {
  struct Case {
    const char* answer;
    const char* want;
  };
  const Case cases[] = {
      {"anomalous: crack", "crack"},                // exact
      {"Anomalous: Crack.", "crack"},               // case and trailing punctuation
      {"anomalous: broken large", "broken_large"},  // spaces for underscores -> dataset spelling
      {"anomalous: Broken-Large", "broken_large"},  // hyphen
      {"anomalous: broken_large", "broken_large"},  // canonical
      {"anomalous: Tiny Hole", "tiny_hole"},        // unknown type: canonical form of the raw text
      {"defective scratch", "scratch"},             // no ':': text after the verdict word
      {"anomalous", ""},                            // unnamed
      {"anomaly: defect", ""},                      // a verdict word is no type
      {"normal", ""},                               // normal answers carry no type
  };
  for (const auto& c : cases) {
    const ParsedCompletion p = parse_completion(completion("x, so it is anomalous.", c.answer), kKnown);
    EXPECT_EQ(p.defect_type, c.want) << c.answer;
  }
  // A known type that contains a verdict word is not a hedge.
  const auto p = parse_completion(completion("x", "anomalous: good_print"), {"good_print"});
  EXPECT_EQ(p.verdict, 1);
  EXPECT_EQ(p.defect_type, "good_print");
}

TEST(ParseCompletion, RegionAndConsistency) {
  struct Case {
    std::string think;
    std::string answer;
    std::optional<Region> region;
    std::optional<int> reasoning;
    bool consistent;
  };
  const Case cases[] = {
      // "upper left" is read whole, not as "left"
      {"A crack in the upper left area, so it is anomalous.", "anomalous: crack", Region::UpperLeft, 1, true},
      // The reasoning concludes normal, the answer says anomalous
      {"Nothing wrong, so it is normal.", "anomalous", std::nullopt, 0, false},
      // The last conclusion counts
      {"At first, so it is normal; looking again, therefore it is anomalous.", "anomalous", std::nullopt, 1,
       true},
      // No conclusion phrase: no reasoning verdict, not consistent
      {"A crack at the top.", "anomalous", Region::Top, kNone, false},
      // A negated conclusion is no conclusion
      {"So it is not normal.", "anomalous", std::nullopt, kNone, false},
      // "also it is" is not "so it is"
      {"It is cracked, also it is anomalous.", "anomalous", std::nullopt, kNone, false},
      // A defect type that reads like a region ("thread top") is masked out
      {"A thread top defect in the lower right area, so it is anomalous.", "anomalous: thread_top",
       Region::LowerRight, 1, true},
      {"A thread top defect, so it is anomalous.", "anomalous: thread_top", std::nullopt, 1, true},
      // Hedged answer: never consistent
      {"So it is anomalous.", "normal or anomalous", std::nullopt, 1, false},
  };
  for (const auto& c : cases) {
    const ParsedCompletion p = parse_completion(completion(c.think, c.answer), kKnown);
    EXPECT_EQ(p.region, c.region) << c.think;
    EXPECT_EQ(p.reasoning_verdict, c.reasoning) << c.think;
    EXPECT_EQ(p.consistent, c.consistent) << c.think;
    EXPECT_EQ(p.think, c.think);
    EXPECT_EQ(p.answer, c.answer);
  }
}

TEST(ParseCompletion, GarbageNeverCrashes) {
  // Random bytes, and random splices of the tags and verdict words, in every combination.
  const std::vector<std::string> atoms = {"<think>", "</think>", "<answer>", "</answer>", "normal", "anomalous",
                                          ":", " ", "so it is ", "upper left", "<", ">", "/", "\n", "\xff", "\0"};
  std::mt19937 rng(7);
  for (int i = 0; i < 20000; ++i) {
    std::string s;
    const int n = int(rng() % 12);
    for (int k = 0; k < n; ++k) {
      if (rng() % 4 == 0) s += char(rng() % 256);
      else s += atoms[rng() % atoms.size()];
    }
    const ParsedCompletion p = parse_completion(s, kKnown);
    EXPECT_EQ(p.well_formed, p.error.empty());
    if (p.well_formed) EXPECT_TRUE(p.verdict.has_value());
  }
  // Tags inside a long run of garbage, and a NUL byte
  EXPECT_FALSE(parse_completion(std::string(100000, '<') + "<think>").well_formed);
  EXPECT_EQ(parse_completion(std::string("<think>a\0b</think><answer>normal</answer>", 41)).verdict, 0);
}

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
  const std::pair<const char*, int> tags[] = {{"<think>", tok.think_open()}, {"</think>", tok.think_close()},
                                              {"<answer>", tok.answer_open()}, {"</answer>", tok.answer_close()},
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
  EXPECT_NE(lriad::test::run_command(std::string(LRIAD_BIN) + " tokenizer train --out " + (dir / "t3") + " -f mvtec")
                .code,
            0);
}

// ---------------------------------------------------------------------------------------------
// Defect families, evidence facts and the chains grounded in them

TEST(DefectFamily, PublishedNamesMapOntoTheVocabulary) {
  struct Case {
    const char* name;
    const char* family;
  };
  const Case cases[] = {{"poke", "hole"}, {"color", "stain"}, {"bent_wire", "deformation"}, {"broken_large", "missing part"},
                        {"metal_contamination", "contamination"}, {"cut_lead", "cut"}, {"faulty_imprint", "misprint"},
                        {"Scratch Head", "scratch"}, {"chip", "missing part"}, {"wrong place", "misplaced part"},
                        {"foreign_patch", "contamination"}, {"missing part", "missing part"}, {"crack", "crack"}};
  for (const auto& c : cases) {
    const auto f = family_of(c.name);
    ASSERT_TRUE(f.has_value()) << c.name;
    EXPECT_STREQ(family_word(*f), c.family) << c.name;
  }
  EXPECT_FALSE(family_of("good").has_value());
  EXPECT_FALSE(family_of("anomaly").has_value());  // unnamed
  EXPECT_FALSE(family_of("combined").has_value());  // several defects: no one family
  EXPECT_TRUE(same_defect("poke", "hole"));
  EXPECT_TRUE(same_defect("scratch_neck", "Scratch"));
  EXPECT_FALSE(same_defect("poke", "crack"));
  EXPECT_FALSE(same_defect("combined", "crack"));
  EXPECT_TRUE(same_defect("combined", "combined"));  // the same word
  for (auto f : all_families()) EXPECT_EQ(parse_family(family_word(f)), f);
  EXPECT_GT(published_defect_map().size(), 60u);
}

TEST(DefectFamily, AUsersMapComesFirstAndBadLinesSayWhere) {
  TempDir dir;
  {
    std::ofstream out(dir / "map.csv");
    out << "name,family\n# a comment\nblob,stain\ncrack,hole\r\n";
  }
  const auto m = load_defect_map(dir / "map.csv");
  EXPECT_EQ(m.size(), 2u);
  EXPECT_EQ(family_of("Blob", &m), DefectFamily::Stain);
  EXPECT_EQ(family_of("crack", &m), DefectFamily::Hole);  // the user's word wins
  EXPECT_EQ(family_of("crack"), DefectFamily::Crack);
  {
    std::ofstream out(dir / "bad.csv");
    out << "blob,stain\nsmear,smudge\n";
  }
  try {
    load_defect_map(dir / "bad.csv");
    ADD_FAILURE() << "an unknown family must be refused";
  } catch (const lriad::Error& e) {
    EXPECT_NE(std::string(e.what()).find("bad.csv:2"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("smudge"), std::string::npos) << e.what();
  }
  EXPECT_THROW(load_defect_map(dir / "missing.csv"), lriad::Error);
}

namespace {

// A 30x30 grey image with its deviation map: flat 0.5 everywhere (below the level 1).
struct Scene {
  cv::Mat map = cv::Mat(30, 30, CV_32FC1, cv::Scalar(0.5));
  cv::Mat rgb = cv::Mat(30, 30, CV_32FC3, cv::Scalar(0.5, 0.5, 0.5));
  // An area where the map is `value` and the image `colour`.
  void mark(const cv::Rect& r, float value, cv::Scalar colour) {
    map(r).setTo(value);
    rgb(r).setTo(colour);
  }
};

}  // namespace

TEST(EvidenceFacts, EachClauseIsTrueOfTheImage) {
  {  // a thin dark line from the upper left into the top cell, peaking at 3.4 in the upper left
    Scene s;
    s.mark(cv::Rect(2, 4, 16, 1), 2.0f, cv::Scalar(0.2, 0.2, 0.2));
    s.map.at<float>(4, 3) = 3.4f;
    const auto f = evidence_facts(s.map, s.rgb, 1.0);
    EXPECT_TRUE(f.above);
    EXPECT_DOUBLE_EQ(f.ratio, 3.4);
    EXPECT_EQ(f.where, Region::UpperLeft);
    EXPECT_EQ(f.also, Region::Top);  // 8 of its 16 pixels lie in the top cell
    EXPECT_EQ(f.extent, EvidenceFacts::Extent::Thin);
    EXPECT_EQ(f.tone, EvidenceFacts::Tone::Darker);
    EXPECT_EQ(where_text(f), "upper left and top");
    EXPECT_EQ(looks_text(f), "a thin, long mark darker than around it");
  }
  {  // a small bright square in the centre, twice the level of 0.8
    Scene s;
    s.mark(cv::Rect(13, 13, 3, 3), 1.6f, cv::Scalar(0.9, 0.9, 0.9));
    const auto f = evidence_facts(s.map, s.rgb, 0.8);
    EXPECT_DOUBLE_EQ(f.ratio, 2.0);
    EXPECT_EQ(f.where, Region::Center);
    EXPECT_FALSE(f.also.has_value());
    EXPECT_EQ(f.extent, EvidenceFacts::Extent::Compact);
    EXPECT_EQ(f.tone, EvidenceFacts::Tone::Brighter);
  }
  {  // a large reddish area of the same brightness at the lower right
    Scene s;
    s.mark(cv::Rect(20, 18, 10, 12), 5.0f, cv::Scalar(0.7, 0.4, 0.4));
    s.map.at<float>(25, 25) = 6.0f;
    const auto f = evidence_facts(s.map, s.rgb, 1.0);
    EXPECT_EQ(f.where, Region::LowerRight);
    EXPECT_EQ(f.extent, EvidenceFacts::Extent::Large);  // 120 of 900 pixels
    EXPECT_EQ(f.tone, EvidenceFacts::Tone::Colour);
    EXPECT_EQ(looks_text(f), "a large area of another colour");
  }
  {  // nothing above the level: only where the largest deviation is, and how strong
    Scene s;
    s.map.at<float>(25, 5) = 0.83f;
    const auto f = evidence_facts(s.map, s.rgb, 1.0);
    EXPECT_FALSE(f.above);
    EXPECT_DOUBLE_EQ(f.ratio, 0.8);
    EXPECT_EQ(f.where, Region::LowerLeft);
  }
  EXPECT_EQ(ratio_text(3.44), "3.4");
  EXPECT_EQ(ratio_text(12.6), "13");
  EXPECT_EQ(ratio_text(0.04), "0.0");
  EXPECT_THROW(evidence_facts(cv::Mat(), cv::Mat(), 1.0), lriad::Error);
  EXPECT_THROW(evidence_facts(Scene().map, Scene().rgb, 0.0), lriad::Error);
}

TEST(Templates, GroundedChainsStateTheEvidenceAndParseBack) {
  const EvidenceFacts f = thin_dark_line();
  const std::string anomalous = build_completion({"carpet", true, "poke", std::nullopt, 0, &f});
  EXPECT_EQ(anomalous,
            "<think>The image shows a carpet sample. I compare it with normal carpet images: the largest deviation is a "
            "thin, long mark darker than around it, at the upper left and top, 3.4 times the normal level. There is what looks like a "
            "hole, so it is anomalous.</think><answer>anomalous: hole</answer>");  // poke is a hole
  EvidenceFacts n;
  n.where = Region::Bottom;
  n.ratio = 0.8;
  const std::string normal = build_completion({"carpet", false, "", std::nullopt, 1, &n});
  EXPECT_EQ(normal,
            "<think>This is a carpet sample. Against normal carpet images, its largest deviation lies at the bottom, 0.8 "
            "times the normal level. Nothing there stands out from normal carpet images, so it is normal.</think>"
            "<answer>normal</answer>");
  for (const auto& text : {anomalous, normal}) {
    const auto p = parse_completion(text, {"poke"});
    SCOPED_TRACE(text);
    EXPECT_TRUE(p.well_formed) << p.error;
    EXPECT_TRUE(p.consistent);
  }
  const auto a = parse_completion(anomalous, {"poke"});
  EXPECT_EQ(a.region, Region::UpperLeft);
  EXPECT_EQ(a.finding_verdict, 1);
  EXPECT_EQ(a.named_type, "hole");
  EXPECT_EQ(a.defect_type, "hole");
  EXPECT_EQ(parse_completion(normal).region, Region::Bottom);
  EXPECT_EQ(parse_completion(normal).finding_verdict, 0);
  // The finding says only what the facts hold: a normal image above the level, an anomaly below it.
  EvidenceFacts strong = n;
  strong.above = true;
  strong.ratio = 1.3;
  const std::string normal_above = build_completion({"carpet", false, "", std::nullopt, 0, &strong});
  EXPECT_NE(normal_above.find("1.3 times the normal level. Nothing there seems defective, so it is normal."), std::string::npos)
      << normal_above;
  const std::string faint = build_completion({"carpet", true, "crack", std::nullopt, 0, &n});
  EXPECT_NE(faint.find("0.8 times the normal level. There is only a faint change, like a crack, so it is anomalous."),
            std::string::npos)
      << faint;
  for (const auto& text : {normal_above, faint}) {
    const auto p = parse_completion(text);
    EXPECT_TRUE(p.consistent) << text;
    EXPECT_TRUE(p.finding_verdict.has_value()) << text;
  }
  // The second phrasing states the look too.
  EXPECT_NE(build_completion({"carpet", false, "", std::nullopt, 1, &f})
                .find("its largest deviation, a thin, long mark darker than around it, lies at the upper left and top, 3.4 times"),
            std::string::npos);
  // A type no family holds is named as it is; an unnamed defect is "a defect", which names no type.
  EXPECT_NE(build_completion({"carpet", true, "combined", std::nullopt, 2, &f}).find("like a combined, so"), std::string::npos);
  const std::string unnamed = build_completion({"carpet", true, "anomaly", std::nullopt, 2, &f});
  EXPECT_NE(unnamed.find("3.4 times the normal level. There is what looks like a defect, so it is anomalous.</think><answer>anomalous</answer>"),
            std::string::npos)
      << unnamed;
  const auto u = parse_completion(unnamed);
  EXPECT_EQ(u.named_type, "");
  EXPECT_EQ(u.finding_verdict, 1);
  EXPECT_TRUE(u.consistent);
}

TEST(ParseCompletion, TheFindingAndTheNamedTypeMustAgreeWithTheAnswer) {
  // "I find no defect, so it is anomalous" was consistent before: its conclusion matches the answer.
  auto p = parse_completion(completion("I find no defect, so it is anomalous.", "anomalous"));
  EXPECT_EQ(p.finding_verdict, 0);
  EXPECT_FALSE(p.consistent);
  p = parse_completion(completion("There is a thin mark, like a crack, so it is anomalous.", "anomalous: hole"));
  EXPECT_EQ(p.named_type, "crack");
  EXPECT_FALSE(p.consistent);  // likened to a crack, answered a hole
  p = parse_completion(completion("There is a thin mark, like a crack, so it is anomalous.", "anomalous: crack"));
  EXPECT_TRUE(p.consistent);
  p = parse_completion(completion("There is a small mark, like a hole, so it is anomalous.", "anomalous: poke"), {"poke"});
  EXPECT_TRUE(p.consistent);  // poke is a hole
  p = parse_completion(completion("There is a large area, like contamination, so it is anomalous.", "anomalous: contamination"));
  EXPECT_EQ(p.named_type, "contamination");
  EXPECT_TRUE(p.consistent);
  p = parse_completion(completion("Nothing there stands out from normal wood images, so it is normal.", "normal"));
  EXPECT_TRUE(p.consistent);
  p = parse_completion(completion("There is a small mark, so it is normal.", "normal"));
  EXPECT_FALSE(p.consistent);  // found something, called it normal
}
