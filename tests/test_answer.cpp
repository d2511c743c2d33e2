// parse_completion: the format, verdicts, defect types, regions and the consistency of a chain.
#include <gtest/gtest.h>

#include <optional>
#include <random>
#include <string>
#include <vector>

#include "lriad/text/answer.h"
#include "lriad/text/evidence.h"
#include "lriad/text/prompt.h"

using namespace lriad::text;

namespace {

const std::vector<std::string> kKnown = {"crack", "broken_large", "thread_top", "scratch"};

constexpr std::optional<int> kNone = std::nullopt;

std::string completion(const std::string& think, const std::string& answer) {
  return "<think>" + think + "</think><answer>" + answer + "</answer>";
}

}  // namespace

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
      {"At first, so it is normal; looking again, therefore it is anomalous.", "anomalous", std::nullopt, 1, true},
      // No conclusion phrase: no reasoning verdict, not consistent
      {"A crack at the top.", "anomalous", Region::Top, kNone, false},
      // A negated conclusion is no conclusion
      {"So it is not normal.", "anomalous", std::nullopt, kNone, false},
      // "also it is" is not "so it is"
      {"It is cracked, also it is anomalous.", "anomalous", std::nullopt, kNone, false},
      // A defect type that reads like a region ("thread top") is masked out
      {"A thread top defect in the lower right area, so it is anomalous.", "anomalous: thread_top", Region::LowerRight,
       1, true},
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
  const std::vector<std::string> atoms = {"<think>", "</think>", "<answer>",  "</answer>",  "normal", "anomalous",
                                          ":",       " ",        "so it is ", "upper left", "<",      ">",
                                          "/",       "\n",       "\xff",      "\0"};
  std::mt19937 rng(7);
  for (int i = 0; i < 20000; ++i) {
    std::string s;
    const int n = int(rng() % 12);
    for (int k = 0; k < n; ++k) {
      if (rng() % 4 == 0)
        s += char(rng() % 256);
      else
        s += atoms[rng() % atoms.size()];
    }
    const ParsedCompletion p = parse_completion(s, kKnown);
    EXPECT_EQ(p.well_formed, p.error.empty());
    if (p.well_formed) EXPECT_TRUE(p.verdict.has_value());
  }
  // Tags inside a long run of garbage, and a NUL byte
  EXPECT_FALSE(parse_completion(std::string(100000, '<') + "<think>").well_formed);
  EXPECT_EQ(parse_completion(std::string("<think>a\0b</think><answer>normal</answer>", 41)).verdict, 0);
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
  p = parse_completion(completion("There is a small mark, like a hole, so it is anomalous.", "anomalous: poke"),
                       {"poke"});
  EXPECT_TRUE(p.consistent);  // poke is a hole
  p = parse_completion(
      completion("There is a large area, like contamination, so it is anomalous.", "anomalous: contamination"));
  EXPECT_EQ(p.named_type, "contamination");
  EXPECT_TRUE(p.consistent);
  p = parse_completion(completion("Nothing there stands out from normal wood images, so it is normal.", "normal"));
  EXPECT_TRUE(p.consistent);
  p = parse_completion(completion("There is a small mark, so it is normal.", "normal"));
  EXPECT_FALSE(p.consistent);  // found something, called it normal
}
