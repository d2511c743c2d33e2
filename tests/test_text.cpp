// text/: prompt and chain-of-thought templates, regions, defect families and the chains grounded in
// evidence (parse_completion: test_answer.cpp; the tokenizer: test_tokenizer.cpp).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <random>
#include <set>

#include <opencv2/imgproc.hpp>
#include "fixtures.h"
#include "text_fixtures.h"
#include "lriad/demo/synth.h"
#include "lriad/io/error.h"
#include "lriad/text/answer.h"
#include "lriad/text/defect_family.h"
#include "lriad/text/evidence.h"
#include "lriad/text/prompt.h"
#include "lriad/text/tokenizer.h"

using namespace lriad::text;
using lriad::test::TempDir;
using lriad::test::thin_dark_line;

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
  EXPECT_EQ(opening,
            "<think>The image shows a metal nut sample. I compare it with normal metal nut images: the largest "
            "deviation is a thin, long mark darker than around it, at the upper left and top, 3.4 times the "
            "normal level.");
  for (const bool anomalous : {false, true}) {
    const std::string chain = build_completion({"metal_nut", anomalous, anomalous ? "crack" : "", std::nullopt, 0, &f});
    ASSERT_EQ(chain.compare(0, opening.size(), opening), 0) << chain;
    // What the policy writes: the finding (the decision point's first word), the family, the verdict.
    EXPECT_EQ(chain.substr(opening.size()),
              anomalous
                  ? " There is what looks like a crack, so it is anomalous.</think><answer>anomalous: crack</answer>"
                  : " Nothing there seems defective, so it is normal.</think><answer>normal</answer>");
  }
  EvidenceFacts below;
  below.where = Region::LowerRight;
  below.ratio = 0.7;
  // Below the level no area stands out: the opening says where the largest deviation is and how strong, no look.
  EXPECT_EQ(grounded_opening("metal_nut", below),
            "<think>The image shows a metal nut sample. I compare it with normal metal nut "
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
      {"Upper-Left corner", Region::UpperLeft},            // case and hyphen
      {"top left", Region::UpperLeft},                     // synonym
      {"bottom right", Region::LowerRight},                // not "bottom"
      {"in the centre", Region::Center},                   // British spelling
      {"on the left, then the top", Region::Left},         // the first phrase wins
      {"stop, leftover, topology", std::nullopt},          // whole words only
      {"", std::nullopt},                                  // empty text
      {"nothing here", std::nullopt},                      // no region phrase
  };
  for (const auto& c : cases) EXPECT_EQ(parse_region(c.text), c.want) << c.text;
}

TEST(Region, OfPoint) {
  EXPECT_EQ(region_of_point(0.0, 0.0), Region::UpperLeft);
  EXPECT_EQ(region_of_point(0.5, 0.1), Region::Top);         // column 1, row 0
  EXPECT_EQ(region_of_point(0.99, 0.5), Region::Right);      // column 2, row 1
  EXPECT_EQ(region_of_point(0.34, 0.67), Region::Bottom);    // 0.34*3 = 1.02, 0.67*3 = 2.01
  EXPECT_EQ(region_of_point(1.0, 1.0), Region::LowerRight);  // clamped
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
  const std::vector<std::string> types = {
      "crack", "broken_large", "thread_top", "scratch_head", "manipulated_front", "anomaly", ""};
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
          short_templates +=
              set.count(build_completion({c, true, t, r < 0 ? std::nullopt : std::optional<Region>(Region(r)), v}));
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
        for (auto t : {EvidenceFacts::Tone::Same, EvidenceFacts::Tone::Darker, EvidenceFacts::Tone::Brighter,
                       EvidenceFacts::Tone::Colour}) {
          g.extent = e;
          g.tone = t;
          any = any || set.count(build_completion({"bottle", true, family_word(fam), std::nullopt, v, &g}));
        }
      families += any;
    }
  EXPECT_EQ(families, size_t(kDefectFamilyCount * kCotVariants));
  // Background where normal images show the part, of every extent, named a missing part by some phrasing.
  for (auto e : {EvidenceFacts::Extent::Compact, EvidenceFacts::Extent::Thin, EvidenceFacts::Extent::Large}) {
    EvidenceFacts g = f;
    g.where = Region::Center;
    g.extent = e;
    g.absent = true;
    bool any = false;
    for (int v = 0; v < kCotVariants; ++v)
      any = any || set.count(build_completion({"bottle", true, "missing part", std::nullopt, v, &g}));
    EXPECT_TRUE(any) << looks_text(g);
    // A tint holding colours no normal image shows, of every extent, named contamination likewise.
    g.absent = false;
    g.tone = EvidenceFacts::Tone::Same;
    g.part = lriad::reference::MapPart::Region;
    g.new_colour = true;
    any = false;
    for (int v = 0; v < kCotVariants; ++v)
      any = any || set.count(build_completion({"bottle", true, "contamination", std::nullopt, v, &g}));
    EXPECT_TRUE(any) << looks_text(g);
  }
  // Without the grounded chains (a model without a reference): the short templates alone.
  const auto plain = corpus_sentences({"bottle", "metal_nut"}, {"crack", "good", "broken_large"}, false);
  EXPECT_EQ(plain.size(), size_t(2 * (1 + 3 * (1 + 3 * 10))));
  EXPECT_TRUE(set.count(build_prompt("metal_nut")));
  EXPECT_TRUE(set.count(build_completion({"bottle", true, "broken_large", Region::LowerRight, 1})));
  EXPECT_FALSE(set.count(build_completion({"bottle", true, "good", std::nullopt, 0})));  // good is no defect
  // The synthetic demo's names (the callers pass them: text/ does not know the demo).
  const auto demo = corpus_sentences(lriad::demo::category_names(), lriad::demo::defect_type_names());
  EXPECT_GT(demo.size(), 1000u);
  EXPECT_TRUE(std::set<std::string>(demo.begin(), demo.end()).count(build_prompt("hex_nut")));
}

// ---------------------------------------------------------------------------------------------
// Defect families, evidence facts and the chains grounded in them

TEST(DefectFamily, PublishedNamesMapOntoTheVocabulary) {
  struct Case {
    const char* name;
    const char* family;
  };
  const Case cases[] = {{"poke", "hole"},
                        {"color", "stain"},
                        {"bent_wire", "deformation"},
                        {"broken_large", "missing part"},
                        {"metal_contamination", "contamination"},
                        {"cut_lead", "cut"},
                        {"faulty_imprint", "misprint"},
                        {"Scratch Head", "scratch"},
                        {"chip", "missing part"},
                        {"wrong place", "misplaced part"},
                        {"foreign_patch", "contamination"},
                        {"missing part", "missing part"},
                        {"crack", "crack"},
                        {"foreign", "contamination"},
                        {"Foreign Body", "contamination"},
                        {"discolouration", "stain"},
                        {"cracks", "crack"},  // plurals: the singular's family
                        {"holes", "hole"},
                        {"stains", "stain"},
                        {"foreign_bodies", "contamination"},
                        {"pokes", "hole"}};
  for (const auto& c : cases) {
    const auto f = family_of(c.name);
    ASSERT_TRUE(f.has_value()) << c.name;
    EXPECT_STREQ(family_word(*f), c.family) << c.name;
  }
  EXPECT_FALSE(family_of("good").has_value());
  EXPECT_FALSE(family_of("anomaly").has_value());   // unnamed
  EXPECT_FALSE(family_of("combined").has_value());  // several defects: no one family
  EXPECT_FALSE(family_of("gross").has_value());     // an unknown word ending in s stays unknown
  EXPECT_FALSE(family_of("s").has_value());
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

namespace {

// A 64-px map with a compact 4x4 area at 2.0 (level 1) in the centre, its 64-px image flat grey, and
// the same image at 256 px: grey with a slow ripple (period 64 px, amplitude 0.02), on which a test
// draws what the area holds at full resolution. The area at 256 px spans pixels 120-135.
struct FullScene {
  cv::Mat map = cv::Mat(64, 64, CV_32FC1, cv::Scalar(0.5));
  cv::Mat rgb = cv::Mat(64, 64, CV_32FC3, cv::Scalar(0.5, 0.5, 0.5));
  cv::Mat full = cv::Mat(256, 256, CV_32FC3);
  FullScene() {
    map(cv::Rect(30, 30, 4, 4)).setTo(2.0f);
    for (int y = 0; y < 256; ++y)
      for (int x = 0; x < 256; ++x) {
        const float v = 0.5f + 0.02f * float(std::sin(2 * M_PI * x / 64.0));
        full.at<cv::Vec3f>(y, x) = cv::Vec3f(v, v, v);
      }
  }
  EvidenceFacts facts(std::optional<lriad::reference::MapPart> part = std::nullopt) const {
    return evidence_facts(map, rgb, 1.0, part, full);
  }
};

}  // namespace

// A crack 2-3 px wide in a 256-px photograph is a compact piece of the 64-px map, and read as a hole.
// With the image at the side training kept it at, the area's darker pixels there tell a line (gone
// after an erosion by a 7-px disc, 12 px long or more) from a blob, and only a line is stated "a thin,
// long mark darker than around it", the look of a crack.
TEST(EvidenceFacts, ACompactAreaWhoseDarkerPixelsFormALineAtFullSideIsAThinDarkMark) {
  using E = EvidenceFacts::Extent;
  using T = EvidenceFacts::Tone;
  {  // without the larger image: a small, compact mark of the same tone, a hole
    const FullScene s;
    const auto f = evidence_facts(s.map, s.rgb, 1.0);
    EXPECT_EQ(f.extent, E::Compact);
    EXPECT_EQ(f.tone, T::Same);
    EXPECT_FALSE(f.line_at_full);
    EXPECT_EQ(family_word(*look_family(f)), std::string("hole"));
  }
  {  // a dark line 2 px wide across the area: a thin, long mark darker than around it, a crack
    FullScene s;
    cv::line(s.full, {100, 127}, {155, 129}, cv::Scalar(0.2, 0.2, 0.2), 2);
    const auto f = s.facts();
    EXPECT_TRUE(f.line_at_full);
    EXPECT_EQ(f.extent, E::Thin);
    EXPECT_EQ(f.tone, T::Darker);
    EXPECT_EQ(looks_text(f), "a thin, long mark darker than around it");
    EXPECT_EQ(family_word(*look_family(f)), std::string("crack"));
    EXPECT_TRUE(dark_line_at_full(s.full, s.map > 1.0));
    // The colour patches' part reads it too; another part's reading stands.
    EXPECT_TRUE(s.facts(lriad::reference::MapPart::Patches).line_at_full);
    for (auto part :
         {lriad::reference::MapPart::Fine, lriad::reference::MapPart::Colour, lriad::reference::MapPart::Region}) {
      EXPECT_FALSE(s.facts(part).line_at_full);
      EXPECT_EQ(s.facts(part).extent, E::Compact);
    }
    // An image no larger than twice the map's side adds no detail: not read.
    cv::Mat small;
    cv::resize(s.full, small, cv::Size(128, 128), 0, 0, cv::INTER_AREA);
    EXPECT_FALSE(evidence_facts(s.map, s.rgb, 1.0, std::nullopt, small).line_at_full);
    // Below the level there is no area to read.
    EXPECT_FALSE(evidence_facts(s.map, s.rgb, 3.0, std::nullopt, s.full).line_at_full);
  }
  {  // a dark blob 20 px across: it survives the erosion, so it stays a small, compact mark, a hole
    FullScene s;
    cv::circle(s.full, {127, 127}, 10, cv::Scalar(0.2, 0.2, 0.2), cv::FILLED);
    const auto f = s.facts();
    EXPECT_FALSE(f.line_at_full);
    EXPECT_EQ(f.extent, E::Compact);
    EXPECT_EQ(family_word(*look_family(f)), std::string("hole"));
  }
  {  // a dark line 8 px long: thin, but not long
    FullScene s;
    cv::line(s.full, {124, 127}, {131, 127}, cv::Scalar(0.2, 0.2, 0.2), 2);
    EXPECT_FALSE(s.facts().line_at_full);
  }
  {  // a bright line: nothing darker than around it
    FullScene s;
    cv::line(s.full, {100, 127}, {155, 129}, cv::Scalar(0.9, 0.9, 0.9), 2);
    EXPECT_FALSE(s.facts().line_at_full);
  }
  {  // a dark line outside the area and its margin is not the area's
    FullScene s;
    cv::line(s.full, {20, 40}, {80, 42}, cv::Scalar(0.2, 0.2, 0.2), 2);
    EXPECT_FALSE(s.facts().line_at_full);
  }
  {  // an area already thin, large, brighter or of another colour keeps its reading
    FullScene s;
    cv::line(s.full, {100, 127}, {155, 129}, cv::Scalar(0.2, 0.2, 0.2), 2);
    s.rgb(cv::Rect(30, 30, 4, 4)).setTo(cv::Scalar(0.9, 0.9, 0.9));
    const auto f = s.facts();
    EXPECT_EQ(f.tone, T::Brighter);
    EXPECT_FALSE(f.line_at_full);
  }
  {  // the figures scale with the side: at 512 px the line is 4 px wide and the blob 40 px across
    FullScene s;
    cv::Mat big;
    cv::resize(s.full, big, cv::Size(512, 512), 0, 0, cv::INTER_LINEAR);
    cv::Mat line = big.clone(), blob = big.clone(), short_line = big.clone();
    cv::line(line, {200, 254}, {310, 258}, cv::Scalar(0.2, 0.2, 0.2), 4);
    cv::circle(blob, {255, 255}, 20, cv::Scalar(0.2, 0.2, 0.2), cv::FILLED);
    cv::line(short_line, {248, 255}, {262, 255}, cv::Scalar(0.2, 0.2, 0.2), 4);  // 16 px: 8 at 256
    EXPECT_TRUE(evidence_facts(s.map, s.rgb, 1.0, std::nullopt, line).line_at_full);
    EXPECT_FALSE(evidence_facts(s.map, s.rgb, 1.0, std::nullopt, blob).line_at_full);
    EXPECT_FALSE(evidence_facts(s.map, s.rgb, 1.0, std::nullopt, short_line).line_at_full);
  }
  EXPECT_THROW(evidence_facts(FullScene().map, FullScene().rgb, 1.0, std::nullopt, cv::Mat(256, 200, CV_32FC3)),
               lriad::Error);  // not square: refused whatever the area looks like
  EXPECT_THROW(dark_line_at_full(cv::Mat(64, 64, CV_32FC3), cv::Mat(64, 64, CV_8UC1)), lriad::Error);   // not larger
  EXPECT_THROW(dark_line_at_full(cv::Mat(256, 256, CV_8UC3), cv::Mat(64, 64, CV_8UC1)), lriad::Error);  // not float
}

// model.family_from_look: the family an anomalous chain names is read from the look by a fixed
// table, every cell of which is checked here, and a training chain names it instead of the label.
TEST(EvidenceFacts, TheLookSuggestsAFamilyByAFixedTable) {
  using E = EvidenceFacts::Extent;
  using T = EvidenceFacts::Tone;
  const std::vector<std::pair<std::pair<E, T>, std::string>> table = {
      {{E::Thin, T::Darker}, "crack"},          {{E::Thin, T::Brighter}, "scratch"},
      {{E::Thin, T::Same}, "scratch"},          {{E::Thin, T::Colour}, "stain"},
      {{E::Compact, T::Darker}, "hole"},        {{E::Compact, T::Brighter}, "scratch"},
      {{E::Compact, T::Same}, "hole"},          {{E::Compact, T::Colour}, "stain"},
      {{E::Large, T::Darker}, "contamination"}, {{E::Large, T::Brighter}, "contamination"},
      {{E::Large, T::Same}, "contamination"},   {{E::Large, T::Colour}, "stain"},
  };
  for (const auto& [look, word] : table) {
    EvidenceFacts f;
    f.above = true;
    f.extent = look.first;
    f.tone = look.second;
    const auto family = look_family(f);
    EXPECT_EQ(family ? std::string(family_word(*family)) : std::string("none"), word) << "looks: " << looks_text(f);
  }
  EvidenceFacts below = thin_dark_line();
  below.above = false;
  EXPECT_FALSE(look_family(below).has_value());

  // What a training chain names: the look's family, none below the level, the label otherwise.
  const EvidenceFacts line = thin_dark_line();  // a thin, long mark darker than around it
  EXPECT_EQ(chain_defect_type(true, "stain", &line, true), "crack");
  EXPECT_EQ(chain_defect_type(true, "stain", &below, true), "");
  EXPECT_EQ(chain_defect_type(true, "stain", &line, false), "stain");
  EXPECT_EQ(chain_defect_type(true, "stain", nullptr, true), "stain");
  EXPECT_EQ(chain_defect_type(false, "good", &line, true), "");
  const std::string chain =
      build_completion({"carpet", true, chain_defect_type(true, "stain", &line, true), std::nullopt, 0, &line});
  EXPECT_NE(chain.find("There is what looks like a crack, so it is anomalous."), std::string::npos) << chain;
  EXPECT_NE(chain.find("<answer>anomalous: crack</answer>"), std::string::npos) << chain;
  const std::string faint =
      build_completion({"carpet", true, chain_defect_type(true, "stain", &below, true), std::nullopt, 0, &below});
  EXPECT_NE(faint.find("There is only a faint change, so it is anomalous."), std::string::npos) << faint;
  EXPECT_NE(faint.find("<answer>anomalous</answer>"), std::string::npos) << faint;
}

// The part of the map largest at the peak comes before the table by tone: every row, each extent.
TEST(EvidenceFacts, ThePartOfTheMapThatShowsTheAreaComesFirst) {
  using E = EvidenceFacts::Extent;
  using T = EvidenceFacts::Tone;
  using P = lriad::reference::MapPart;
  const std::vector<std::pair<std::pair<P, E>, std::string>> table = {
      {{P::Region, E::Compact}, "stain"}, {{P::Region, E::Thin}, "stain"}, {{P::Region, E::Large}, "contamination"},
      {{P::Colour, E::Compact}, "hole"},  {{P::Colour, E::Thin}, "hole"},  {{P::Colour, E::Large}, "contamination"},
      {{P::Fine, E::Compact}, "scratch"}, {{P::Fine, E::Thin}, "scratch"}, {{P::Fine, E::Large}, "scratch"},
  };
  for (const auto& [look, word] : table)
    for (auto tone : {T::Same, T::Darker, T::Brighter, T::Colour}) {  // the tone does not matter here
      EvidenceFacts f;
      f.above = true;
      f.part = look.first;
      f.extent = look.second;
      f.tone = tone;
      const auto family = look_family(f);
      EXPECT_EQ(family ? std::string(family_word(*family)) : std::string("none"), word) << "looks: " << looks_text(f);
    }
  // The colour patches' part is read by tone, as without a part.
  EvidenceFacts patches = thin_dark_line();
  patches.part = P::Patches;
  EXPECT_EQ(family_word(*look_family(patches)), std::string("crack"));
  EXPECT_EQ(looks_text(patches), "a thin, long mark darker than around it");
  // What each part adds to the look, and the facts keep the part only above the level.
  EvidenceFacts f = thin_dark_line();
  f.part = P::Fine;
  EXPECT_EQ(looks_text(f), "a thin, long mark darker than around it, in the fine detail");
  f.part = P::Colour;
  EXPECT_EQ(looks_text(f), "a thin, long mark darker than around it, of a colour no normal image shows");
  f.part = P::Region;
  EXPECT_EQ(looks_text(f), "a thin, long mark darker than around it, of a tint no normal region shows");
  Scene s;
  s.mark(cv::Rect(13, 13, 3, 3), 1.6f, cv::Scalar(0.9, 0.9, 0.9));
  EXPECT_EQ(evidence_facts(s.map, s.rgb, 0.8, P::Region).part, P::Region);
  EXPECT_FALSE(evidence_facts(s.map, s.rgb, 2.0, P::Region).part.has_value());  // below the level
  EXPECT_FALSE(evidence_facts(s.map, s.rgb, 0.8).part.has_value());             // not said
  // The opening states it, and the chain names the part's family.
  f.part = P::Region;
  f.extent = E::Compact;
  const std::string chain =
      build_completion({"carpet", true, chain_defect_type(true, "crack", &f, true), std::nullopt, 0, &f});
  EXPECT_NE(chain.find("of a tint no normal region shows"), std::string::npos) << chain;
  EXPECT_NE(chain.find("<answer>anomalous: stain</answer>"), std::string::npos) << chain;
}

// A part's absent pixels (NormalReference::absent: background where its normal images show the
// part): an area holding at least kAbsentShare of its pixels and kAbsentMin of the image's as such
// pixels is "an area of background where normal images show the part", a missing part, whatever its
// tone, line or part of the map; fewer, it is read as before.
TEST(EvidenceFacts, AnAreaOfBackgroundWhereNormalImagesShowThePartIsAMissingPart) {
  using P = lriad::reference::MapPart;
  Scene s;                                                        // 30 x 30: kAbsentMin is 1.3 pixels
  s.mark(cv::Rect(4, 4, 4, 4), 2.5f, cv::Scalar(0.2, 0.2, 0.2));  // 16 px, darker, at the upper left
  cv::Mat absent = cv::Mat::zeros(30, 30, CV_8UC1);
  absent(cv::Rect(4, 4, 2, 1)).setTo(255);    // 2 of its 16 pixels
  absent(cv::Rect(20, 20, 5, 5)).setTo(255);  // outside the area: does not count
  auto f = evidence_facts(s.map, s.rgb, 1.0, P::Colour, cv::Mat(), absent);
  EXPECT_TRUE(f.absent);
  EXPECT_EQ(looks_text(f), "a small, compact area of background where normal images show the part");
  EXPECT_EQ(family_word(*look_family(f)), std::string("missing part"));
  EXPECT_EQ(chain_defect_type(true, "hole", &f, true), "missing part");
  const std::string chain =
      build_completion({"screw", true, chain_defect_type(true, "hole", &f, true), std::nullopt, 0, &f});
  EXPECT_NE(chain.find("the largest deviation is a small, compact area of background where normal images show the "
                       "part, at the upper left, 2.5 times the normal level."),
            std::string::npos)
      << chain;
  EXPECT_NE(chain.find("<answer>anomalous: missing part</answer>"), std::string::npos) << chain;
  f.extent = EvidenceFacts::Extent::Large;
  EXPECT_EQ(looks_text(f), "a large area of background where normal images show the part");
  f.extent = EvidenceFacts::Extent::Thin;
  EXPECT_EQ(looks_text(f), "a thin, long area of background where normal images show the part");
  // One pixel is fewer than kAbsentMin: read by its part and tone as before.
  absent(cv::Rect(5, 4, 1, 1)).setTo(0);
  f = evidence_facts(s.map, s.rgb, 1.0, P::Colour, cv::Mat(), absent);
  EXPECT_FALSE(f.absent);
  EXPECT_EQ(family_word(*look_family(f)), std::string("hole"));  // a colour no normal image shows
  // A large area (200 px) needs 10 of them (kAbsentShare): 9 are too few.
  Scene big;
  big.mark(cv::Rect(5, 5, 20, 10), 2.5f, cv::Scalar(0.5, 0.5, 0.5));
  cv::Mat some = cv::Mat::zeros(30, 30, CV_8UC1);
  some(cv::Rect(5, 5, 9, 1)).setTo(255);
  EXPECT_FALSE(evidence_facts(big.map, big.rgb, 1.0, std::nullopt, cv::Mat(), some).absent);
  some(cv::Rect(5, 6, 1, 1)).setTo(255);
  EXPECT_TRUE(evidence_facts(big.map, big.rgb, 1.0, std::nullopt, cv::Mat(), some).absent);
  // Below the level there is no area, and nothing absent.
  EXPECT_FALSE(evidence_facts(s.map, s.rgb, 3.0, P::Colour, cv::Mat(), cv::Mat(30, 30, CV_8UC1, 255)).absent);
  // An absent area is not read again for a line at full side: its extent stays as measured.
  FullScene line;
  cv::line(line.full, {100, 127}, {155, 129}, cv::Scalar(0.2, 0.2, 0.2), 2);
  ASSERT_TRUE(line.facts().line_at_full);
  cv::Mat gone = cv::Mat::zeros(64, 64, CV_8UC1);
  gone(cv::Rect(30, 30, 4, 2)).setTo(255);
  const auto g = evidence_facts(line.map, line.rgb, 1.0, std::nullopt, line.full, gone);
  EXPECT_TRUE(g.absent);
  EXPECT_FALSE(g.line_at_full);
  EXPECT_EQ(g.extent, EvidenceFacts::Extent::Compact);
  // A mask of another size or type is refused.
  EXPECT_THROW(evidence_facts(s.map, s.rgb, 1.0, std::nullopt, cv::Mat(), cv::Mat::zeros(20, 20, CV_8UC1)),
               lriad::Error);
  EXPECT_THROW(evidence_facts(s.map, s.rgb, 1.0, std::nullopt, cv::Mat(), cv::Mat::zeros(30, 30, CV_32FC1)),
               lriad::Error);
}

// The colours no normal image shows inside the area (NormalReference::colour_novelty, in bins): a
// mean of at least kNewColour x the level there is `new_colour`. A tint no normal region shows is then
// contamination with such colours and a stain without them, whatever its size; unread (a run trained
// before), a tint names what such runs learnt: a stain, or contamination when large.
TEST(EvidenceFacts, ATintHoldingColoursNoNormalImageShowsIsContamination) {
  using P = lriad::reference::MapPart;
  Scene s;
  s.mark(cv::Rect(5, 5, 20, 10), 2.5f, cv::Scalar(0.5, 0.5, 0.5));  // 200 px: a large area at level 1
  cv::Mat colour = cv::Mat::zeros(30, 30, CV_32FC1);
  colour(cv::Rect(0, 0, 30, 3)).setTo(5.0);  // outside the area: does not count
  colour(cv::Rect(5, 5, 20, 1)).setTo(3.9);  // 20 of its 200 px at 3.9 bins: a mean of 0.39
  auto f = evidence_facts(s.map, s.rgb, 2.0, P::Region, cv::Mat(), cv::Mat(), colour);
  ASSERT_TRUE(f.above);
  ASSERT_TRUE(f.new_colour.has_value());
  EXPECT_FALSE(*f.new_colour);  // 0.39 < 0.2 x 2.0
  EXPECT_EQ(f.extent, EvidenceFacts::Extent::Large);
  EXPECT_EQ(looks_text(f), "a large area, of a tint no normal region shows");
  EXPECT_EQ(family_word(*look_family(f)), std::string("stain"));  // large, yet without new colours
  f = evidence_facts(s.map, s.rgb, 1.9, P::Region, cv::Mat(), cv::Mat(), colour);
  EXPECT_TRUE(f.new_colour.value_or(false));  // 0.39 >= 0.2 x 1.9
  EXPECT_EQ(looks_text(f), "a large area, of a tint no normal region shows, holding colours no normal image shows");
  EXPECT_EQ(family_word(*look_family(f)), std::string("contamination"));
  const std::string chain =
      build_completion({"carpet", true, chain_defect_type(true, "stain", &f, true), std::nullopt, 0, &f});
  EXPECT_NE(chain.find("of a tint no normal region shows, holding colours no normal image shows, at the"),
            std::string::npos)
      << chain;
  EXPECT_NE(chain.find("<answer>anomalous: contamination</answer>"), std::string::npos) << chain;
  // A small tinted area with new colours is contamination too.
  Scene small;
  small.mark(cv::Rect(4, 4, 4, 4), 2.5f, cv::Scalar(0.5, 0.5, 0.2));  // of another colour
  f = evidence_facts(small.map, small.rgb, 1.0, P::Region, cv::Mat(), cv::Mat(), cv::Mat(30, 30, CV_32FC1, 0.5));
  EXPECT_EQ(f.extent, EvidenceFacts::Extent::Compact);
  EXPECT_EQ(family_word(*look_family(f)), std::string("contamination"));
  // New colours name only a tint: shown by the colour patches, the area reads by its tone as before.
  f = evidence_facts(small.map, small.rgb, 1.0, P::Patches, cv::Mat(), cv::Mat(), cv::Mat(30, 30, CV_32FC1, 5.0));
  EXPECT_EQ(looks_text(f), "a small, compact mark of another colour");
  EXPECT_EQ(family_word(*look_family(f)), std::string("stain"));
  // Unread: no new_colour, and a tint names a stain, or contamination when large.
  f = evidence_facts(s.map, s.rgb, 1.0, P::Region);
  EXPECT_FALSE(f.new_colour.has_value());
  EXPECT_EQ(family_word(*look_family(f)), std::string("contamination"));
  f = evidence_facts(small.map, small.rgb, 1.0, P::Region);
  EXPECT_EQ(family_word(*look_family(f)), std::string("stain"));
  // Below the level there is no area to read.
  EXPECT_FALSE(evidence_facts(s.map, s.rgb, 3.0, P::Region, cv::Mat(), cv::Mat(), colour).new_colour.has_value());
  // A map of another size or type is refused.
  EXPECT_THROW(evidence_facts(s.map, s.rgb, 1.0, P::Region, cv::Mat(), cv::Mat(), cv::Mat::zeros(20, 20, CV_32FC1)),
               lriad::Error);
  EXPECT_THROW(evidence_facts(s.map, s.rgb, 1.0, P::Region, cv::Mat(), cv::Mat(), cv::Mat::zeros(30, 30, CV_8UC1)),
               lriad::Error);
}

TEST(Templates, GroundedChainsStateTheEvidenceAndParseBack) {
  const EvidenceFacts f = thin_dark_line();
  const std::string anomalous = build_completion({"carpet", true, "poke", std::nullopt, 0, &f});
  EXPECT_EQ(
      anomalous,
      "<think>The image shows a carpet sample. I compare it with normal carpet images: the largest deviation is a "
      "thin, long mark darker than around it, at the upper left and top, 3.4 times the normal level. There is what "
      "looks like a "
      "hole, so it is anomalous.</think><answer>anomalous: hole</answer>");  // poke is a hole
  EvidenceFacts n;
  n.where = Region::Bottom;
  n.ratio = 0.8;
  const std::string normal = build_completion({"carpet", false, "", std::nullopt, 1, &n});
  EXPECT_EQ(
      normal,
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
  EXPECT_NE(normal_above.find("1.3 times the normal level. Nothing there seems defective, so it is normal."),
            std::string::npos)
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
                .find("its largest deviation, a thin, long mark darker than around it, lies at the upper left and top, "
                      "3.4 times"),
            std::string::npos);
  // A type no family holds is named as it is; an unnamed defect is "a defect", which names no type.
  EXPECT_NE(build_completion({"carpet", true, "combined", std::nullopt, 2, &f}).find("like a combined, so"),
            std::string::npos);
  const std::string unnamed = build_completion({"carpet", true, "anomaly", std::nullopt, 2, &f});
  EXPECT_NE(unnamed.find("3.4 times the normal level. There is what looks like a defect, so it is "
                         "anomalous.</think><answer>anomalous</answer>"),
            std::string::npos)
      << unnamed;
  const auto u = parse_completion(unnamed);
  EXPECT_EQ(u.named_type, "");
  EXPECT_EQ(u.finding_verdict, 1);
  EXPECT_TRUE(u.consistent);
}
