// Evaluation summary (golden numbers on hand-made predictions), localisation on constructed
// masks, the report's pieces, and a cross-check of the metrics against scikit-learn.
#include <gtest/gtest.h>

#include <cstdio>
#include <random>
#include <sstream>

#include <opencv2/core.hpp>

#include "fixtures.h"
#include "lriad/eval/metrics.h"
#include "lriad/io/error.h"
#include "lriad/eval/report.h"
#include "lriad/eval/summary.h"

using namespace lriad::eval;
using lriad::test::run_command;
using lriad::test::TempDir;
using lriad::text::Region;

namespace {

Prediction make(const std::string& cat, int label, int pred, double score, const std::string& type = "good",
                const std::string& pred_type = "") {
  Prediction p;
  p.image = cat + "/" + std::to_string(label) + "_" + std::to_string(score) + ".png";
  p.category = cat;
  p.label = label;
  p.pred = pred;
  p.parsed = true;
  p.score = score;
  p.defect_type = type;
  p.pred_defect_type = pred_type;
  p.well_formed = true;
  p.consistent = true;
  p.length = 10;
  p.completion = "<think>x</think><answer>" + std::string(pred ? "anomalous" : "normal") + "</answer>";
  return p;
}

// Category a: three anomalies (one missed, one with the wrong type), three normals (one false
// alarm, one score tying an anomaly's); category b: two normals only.
std::vector<Prediction> golden_set() {
  std::vector<Prediction> ps = {make("a", 1, 1, 0.9, "crack", "crack"),
                                make("a", 1, 0, 0.4, "crack"),
                                make("a", 1, 1, 0.6, "hole", "crack"),
                                make("a", 0, 0, 0.4),
                                make("a", 0, 1, 0.7),
                                make("a", 0, 0, 0.1),
                                make("b", 0, 0, 0.2),
                                make("b", 0, 0, 0.3)};
  ps[1].parsed = false;  // unparseable: counted wrong (pred = 1 - label), reported
  ps[1].well_formed = false;
  ps[1].consistent = false;
  ps[4].consistent = false;
  ps[0].localized = true;
  ps[2].localized = false;
  ps[5].length = 30;
  ps[5].truncated = true;
  return ps;
}

}  // namespace

TEST(Summary, GoldenNumbersOnHandMadePredictions) {
  const auto m = summarize(golden_set());
  // tp 2, fn 1, fp 1, tn 4
  EXPECT_EQ(m["confusion"]["tp"], 2);
  EXPECT_EQ(m["confusion"]["fn"], 1);
  EXPECT_EQ(m["confusion"]["fp"], 1);
  EXPECT_EQ(m["confusion"]["tn"], 4);
  EXPECT_EQ(m["n"], 8);
  EXPECT_EQ(m["n_anomalous"], 3);
  EXPECT_NEAR(m["accuracy"].get<double>(), 0.75, 1e-12);
  EXPECT_NEAR(m["recall"].get<double>(), 2.0 / 3, 1e-12);
  EXPECT_NEAR(m["specificity"].get<double>(), 0.8, 1e-12);
  EXPECT_NEAR(m["balanced_accuracy"].get<double>(), (2.0 / 3 + 0.8) / 2, 1e-12);
  EXPECT_NEAR(m["precision"].get<double>(), 2.0 / 3, 1e-12);
  EXPECT_NEAR(m["f1"].get<double>(), 2.0 / 3, 1e-12);
  // anomalies {.9,.4,.6} vs normals {.4,.7,.1,.2,.3}: 5 + (3 + 1/2) + 4 = 12.5 of 15 pairs
  EXPECT_NEAR(m["auroc"].get<double>(), 12.5 / 15, 1e-12);
  // thresholds .9 (P 1, R 1/3), .7 (P 1/2), .6 (P 2/3, R 2/3), .4 (P 3/5, R 1)
  EXPECT_NEAR(m["average_precision"].get<double>(), 1.0 / 3 + 2.0 / 9 + 1.0 / 5, 1e-12);
  EXPECT_NEAR(m["format_rate"].get<double>(), 7.0 / 8, 1e-12);
  EXPECT_NEAR(m["consistency_rate"].get<double>(), 6.0 / 8, 1e-12);
  EXPECT_EQ(m["unparseable"], 1);
  EXPECT_NEAR(m["truncation_rate"].get<double>(), 1.0 / 8, 1e-12);
  EXPECT_NEAR(m["mean_length"].get<double>(), 100.0 / 8, 1e-12);
  EXPECT_EQ(m["max_length"], 30);
  EXPECT_NEAR(m["localization_agreement"].get<double>(), 0.5, 1e-12);
  EXPECT_EQ(m["n_localized"], 2);
  EXPECT_NEAR(m["defect_type_accuracy"].get<double>(), 0.5, 1e-12);  // crack right, hole named crack
  // Per category: a's AUROC with its tie; b has no anomalies -> AUROC and AP null, not a crash.
  const auto& a = m["per_category"]["a"];
  EXPECT_NEAR(a["auroc"].get<double>(), 6.5 / 9, 1e-12);
  EXPECT_NEAR(a["accuracy"].get<double>(), 4.0 / 6, 1e-12);
  const auto& b = m["per_category"]["b"];
  EXPECT_TRUE(b["auroc"].is_null());
  EXPECT_TRUE(b["average_precision"].is_null());
  EXPECT_TRUE(b["localization_agreement"].is_null());
  EXPECT_NEAR(b["balanced_accuracy"].get<double>(), 1.0, 1e-12);  // the recall of the one class present
  // Macro: mean over categories; AUROC over the categories that have one.
  EXPECT_NEAR(m["macro"]["accuracy"].get<double>(), (4.0 / 6 + 1.0) / 2, 1e-12);
  EXPECT_NEAR(m["macro"]["auroc"].get<double>(), 6.5 / 9, 1e-12);
  EXPECT_EQ(m["macro"]["categories"], 2);
  // Per defect type: recall and type accuracy on the flagged ones.
  EXPECT_NEAR(m["per_defect_type"]["crack"]["recall"].get<double>(), 0.5, 1e-12);
  EXPECT_NEAR(m["per_defect_type"]["crack"]["type_accuracy"].get<double>(), 1.0, 1e-12);
  EXPECT_NEAR(m["per_defect_type"]["hole"]["recall"].get<double>(), 1.0, 1e-12);
  EXPECT_NEAR(m["per_defect_type"]["hole"]["type_accuracy"].get<double>(), 0.0, 1e-12);
  EXPECT_FALSE(m["per_defect_type"].contains("good"));
  const std::string table = format_table(m);
  EXPECT_NE(table.find("macro"), std::string::npos);
  EXPECT_NE(table.find("0.750"), std::string::npos) << table;
}

TEST(Summary, AllNormalPredictionsAndNoMasks) {
  std::vector<Prediction> ps = {make("a", 1, 0, 0.3, "crack"), make("a", 0, 0, 0.3), make("a", 0, 0, 0.3)};
  const auto m = summarize(ps);
  EXPECT_EQ(m["precision"], 0.0);  // zero division -> 0, like sklearn's zero_division=0
  EXPECT_EQ(m["recall"], 0.0);
  EXPECT_EQ(m["f1"], 0.0);
  EXPECT_NEAR(m["balanced_accuracy"].get<double>(), 0.5, 1e-12);
  EXPECT_NEAR(m["auroc"].get<double>(), 0.5, 1e-12);  // all scores tie
  EXPECT_TRUE(m["localization_agreement"].is_null());
  EXPECT_TRUE(m["defect_type_accuracy"].is_null());
  EXPECT_TRUE(m["per_defect_type"]["crack"]["type_accuracy"].is_null());
}

TEST(Summary, PredictionJsonRoundTrip) {
  auto p = golden_set()[0];
  p.mask = "m.png";
  p.votes = {1, -1, 0};
  const auto j = to_json(p);
  for (const char* key :
       {"image", "category", "label", "defect_type", "pred", "score", "pred_defect_type", "completion", "well_formed"})
    EXPECT_TRUE(j.contains(key)) << key;
  const auto q = prediction_from_json(nlohmann::json::parse(j.dump()));
  EXPECT_EQ(to_json(q), j);
}

TEST(Localization, RegionAgainstConstructedMasks) {
  cv::Mat mask = cv::Mat::zeros(30, 30, CV_8UC1);
  mask(cv::Rect(12, 12, 5, 5)).setTo(1);  // the centre cell only
  EXPECT_TRUE(region_overlaps_mask(Region::Center, mask));
  for (Region r : {Region::UpperLeft, Region::Top, Region::Right, Region::LowerRight})
    EXPECT_FALSE(region_overlaps_mask(r, mask));
  cv::Mat corner = cv::Mat::zeros(31, 31, CV_8UC1);
  corner.at<uchar>(0, 30) = 1;  // last column: the right third of an odd width
  EXPECT_TRUE(region_overlaps_mask(Region::UpperRight, corner));
  EXPECT_FALSE(region_overlaps_mask(Region::Top, corner));
  cv::Mat straddle = cv::Mat::zeros(30, 30, CV_8UC1);
  straddle(cv::Rect(8, 8, 4, 4)).setTo(1);  // over the boundary of four cells
  EXPECT_TRUE(region_overlaps_mask(Region::UpperLeft, straddle));
  EXPECT_TRUE(region_overlaps_mask(Region::Center, straddle));
  EXPECT_FALSE(region_overlaps_mask(Region::Bottom, straddle));
  EXPECT_FALSE(region_overlaps_mask(Region::Center, cv::Mat()));
}

TEST(Report, Base64AndEscaping) {
  // RFC 4648 test vectors.
  const std::vector<std::pair<std::string, std::string>> v = {{"", ""},
                                                              {"f", "Zg=="},
                                                              {"fo", "Zm8="},
                                                              {"foo", "Zm9v"},
                                                              {"foob", "Zm9vYg=="},
                                                              {"fooba", "Zm9vYmE="},
                                                              {"foobar", "Zm9vYmFy"}};
  for (const auto& [in, out] : v) EXPECT_EQ(base64(in), out) << in;
  EXPECT_EQ(html_escape("<a href=\"x\">&'"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
}

TEST(Report, HtmlHasTheSectionsAndErrorsComeFirst) {
  TempDir dir;
  auto ps = golden_set();
  lriad::test::write_png(dir / "img.png", 40, 30);
  lriad::test::write_mask(dir / "mask.png", 40, 30);
  for (auto& p : ps) p.image = dir / "img.png";
  ps[0].mask = dir / "mask.png";
  ps[3].image = dir / "missing.png";  // no thumbnail, still a card
  ps[2].completion = "<think>a <b> tag</think>";
  auto m = summarize(ps);
  m["run"] = "runs/x";
  write_outputs(dir.path(), m, ps);
  const std::string html = lriad::test::read_text(dir / "report.html");
  for (const char* id : {"id=\"summary\"", "id=\"per-category\"", "id=\"confusion\"", "id=\"roc\"", "id=\"gallery\"",
                         "class=\"roc-curve\"", "data:image/jpeg;base64,"})
    EXPECT_NE(html.find(id), std::string::npos) << id;
  EXPECT_NE(html.find("a &lt;b&gt; tag"), std::string::npos);  // completions are escaped
  // Cards: false negative before false positive before true positives and negatives.
  const auto fn = html.find("card fn"), fp = html.find("card fp"), tp = html.find("card tp"), tn = html.find("card tn");
  ASSERT_NE(fn, std::string::npos);
  EXPECT_LT(fn, fp);
  EXPECT_LT(fp, tp);
  EXPECT_LT(tp, tn);
  // metrics.json and predictions.jsonl sit next to it.
  EXPECT_EQ(nlohmann::json::parse(lriad::test::read_text(dir / "metrics.json"))["n"], 8);
  std::istringstream lines(lriad::test::read_text(dir / "predictions.jsonl"));
  std::string line;
  int count = 0;
  while (std::getline(lines, line)) count += !line.empty();
  EXPECT_EQ(count, 8);
}

// The heat map: red where the deviation is at twice the normal level, blue where there is none, the
// map stretched onto a non-square image, and the stated region's cell boxed in yellow.
TEST(Report, HeatOverlayColoursTheDeviationAndBoxesTheStatedRegion) {
  const cv::Mat bgr(60, 90, CV_8UC3, cv::Scalar(128, 128, 128));  // H 60, W 90
  cv::Mat map = cv::Mat::zeros(30, 30, CV_32FC1);
  map(cv::Rect(0, 0, 10, 10)).setTo(3.0f);  // the upper left cell, above kHeatSaturation
  const cv::Mat out = heat_overlay(bgr, map, Region::Right);
  ASSERT_EQ(out.size(), bgr.size());
  const auto hot = out.at<cv::Vec3b>(10, 15), cold = out.at<cv::Vec3b>(30, 45), box = out.at<cv::Vec3b>(30, 60);
  EXPECT_GT(hot[2], hot[0] + 40) << hot;          // red over blue in the upper left (x 15 of 90 = map x 5)
  EXPECT_GT(cold[0], cold[2] + 40) << cold;       // blue over red at the centre
  EXPECT_EQ(box, cv::Vec3b(0, 255, 255)) << box;  // the right cell's left edge (x 60), yellow
  EXPECT_NE(out.at<cv::Vec3b>(30, 30), cv::Vec3b(0, 255, 255));  // no box around the centre cell
  EXPECT_THROW(heat_overlay(bgr, cv::Mat::zeros(30, 30, CV_32FC3), std::nullopt), lriad::Error);
}

// A card shows the heat map next to the image where the prediction holds its map, and only there.
TEST(Report, CardsShowTheHeatMapWhereThePredictionHasOne) {
  TempDir dir;
  lriad::test::write_png(dir / "img.png", 40, 30);
  auto ps = golden_set();
  for (auto& p : ps) p.image = dir / "img.png";
  ps[0].evidence_map = cv::Mat::ones(16, 16, CV_32FC1);
  ps[0].region = "upper left";
  const std::string html = render_report(summarize(ps), ps);
  size_t maps = 0, images = 0;
  for (size_t at = html.find("alt=\"deviation map: "); at != std::string::npos;
       at = html.find("alt=\"deviation map: ", at + 1))
    ++maps;
  for (size_t at = html.find("alt=\"image: "); at != std::string::npos; at = html.find("alt=\"image: ", at + 1))
    ++images;
  EXPECT_EQ(maps, 1u);
  EXPECT_EQ(images, ps.size());
  EXPECT_NE(html.find("the region its chain names boxed in yellow"), std::string::npos);
}

// The same predictions through scikit-learn (Debian's python3-sklearn); skipped where it is missing.
TEST(Sklearn, MetricsAgreeWithScikitLearn) {
  // Debian's interpreter first: a python3 earlier on PATH (pyenv, venv) may lack Debian's modules.
  std::string python;
  for (const std::string candidate : {"/usr/bin/python3", "python3"})
    if (run_command(candidate + " -c 'import sklearn' 2>/dev/null").code == 0) {
      python = candidate;
      break;
    }
  if (python.empty()) GTEST_SKIP() << "python3-sklearn not installed";
  std::mt19937 rng(7);
  std::vector<int> y, p;
  std::vector<double> s;
  std::ostringstream csv;
  for (int i = 0; i < 300; ++i) {
    const int label = rng() % 3 == 0;
    const double score = std::round(((rng() % 1000) / 1000.0 * 0.7 + label * 0.3) * 20) / 20;  // coarse: many ties
    const int pred = score > 0.5;
    y.push_back(label);
    p.push_back(pred);
    s.push_back(score);
    csv << label << "," << pred << "," << score << "\n";
  }
  TempDir dir;
  lriad::test::write_text(dir / "p.csv", csv.str());
  lriad::test::write_text(
      dir / "check.py",
      "import sys, json\n"
      "from sklearn import metrics as M\n"
      "rows=[l.split(',') for l in open(sys.argv[1]) if l.strip()]\n"
      "y=[int(r[0]) for r in rows]; p=[int(r[1]) for r in rows]; s=[float(r[2]) for r in rows]\n"
      "tn,fp,fn,tp=M.confusion_matrix(y,p).ravel()\n"
      "print(json.dumps({'accuracy':M.accuracy_score(y,p),'balanced_accuracy':M.balanced_accuracy_score(y,p),"
      "'precision':M.precision_score(y,p,zero_division=0),'recall':M.recall_score(y,p),"
      "'specificity':tn/(tn+fp),'f1':M.f1_score(y,p),'auroc':M.roc_auc_score(y,s),"
      "'average_precision':M.average_precision_score(y,s)}))\n");
  const auto r = run_command(python + " " + dir / "check.py" + " " + dir / "p.csv");
  ASSERT_EQ(r.code, 0) << r.out;
  const auto ref = nlohmann::json::parse(r.out);
  const auto m = binary_metrics(y, p, s);
  EXPECT_NEAR(m.accuracy, ref["accuracy"].get<double>(), 1e-12);
  EXPECT_NEAR(m.balanced_accuracy, ref["balanced_accuracy"].get<double>(), 1e-12);
  EXPECT_NEAR(m.precision, ref["precision"].get<double>(), 1e-12);
  EXPECT_NEAR(m.recall, ref["recall"].get<double>(), 1e-12);
  EXPECT_NEAR(m.specificity, ref["specificity"].get<double>(), 1e-12);
  EXPECT_NEAR(m.f1, ref["f1"].get<double>(), 1e-12);
  EXPECT_NEAR(*m.auroc, ref["auroc"].get<double>(), 1e-12);
  EXPECT_NEAR(*m.average_precision, ref["average_precision"].get<double>(), 1e-12);
}

// The explanations beside their baselines (summary.h): localisation of "always the centre" and of
// "the evidence's peak cell", the stated region against the evidence, family accuracy against the
// most frequent family, and phrase collapse. Hand-made predictions, hand-counted figures.
TEST(Summary, ExplanationsStandBesideTheirBaselines) {
  auto chain = [](const std::string& think, const std::string& answer) {
    return "<think>" + think + "</think><answer>" + answer + "</answer>";
  };
  std::vector<Prediction> ps = {make("a", 1, 1, 0.9, "poke", "hole"),
                                make("a", 1, 1, 0.8, "crack", "crack"),
                                make("a", 1, 1, 0.7, "poke", "crack"),
                                make("a", 1, 1, 0.7, "combined", "crack"),
                                make("a", 0, 0, 0.1),
                                make("a", 0, 1, 0.6, "good", "hole")};
  // Localisation on the three masked, correctly flagged anomalies: centre holds defect pixels in 1,
  // the evidence's peak cell in 2, the stated region in 3.
  for (int i = 0; i < 3; ++i) {
    ps[size_t(i)].localized = true;
    ps[size_t(i)].centre_localized = i == 0;
    ps[size_t(i)].peak_localized = i < 2;
  }
  // Stated regions against the evidence: 0 agrees (a second cell), 1 disagrees, 4 (normal) agrees.
  ps[0].region = "top";
  ps[0].evidence_regions = {Region::UpperLeft, Region::Top};
  ps[1].region = "left";
  ps[1].evidence_regions = {Region::Right};
  ps[4].region = "center";
  ps[4].evidence_regions = {Region::Center};
  ps[2].evidence_regions = {Region::Center};
  // Anomalous answers: three share one chain.
  const std::string same = chain("There is a thin, long mark, like a crack, so it is anomalous.", "anomalous: crack");
  ps[0].completion = chain("There is a small, compact mark, like a hole, so it is anomalous.", "anomalous: hole");
  ps[1].completion = ps[2].completion = ps[3].completion = same;
  ps[5].completion = chain("There is a small mark, like a hole, so it is anomalous.", "anomalous: hole");
  ps[1].region = ps[2].region = ps[3].region = "left";
  // The family the evidence's look suggests: right for 0 (hole), wrong for 2 (scratch for a poke),
  // none for 1 (below the level: a miss).
  ps[0].evidence_family = "hole";
  ps[2].evidence_family = "scratch";
  const auto m = summarize(ps);
  EXPECT_NEAR(m["localization_agreement"].get<double>(), 1.0, 1e-12);
  EXPECT_NEAR(m["localization_baselines"]["centre"].get<double>(), 1.0 / 3, 1e-12);
  EXPECT_NEAR(m["localization_baselines"]["evidence_peak"].get<double>(), 2.0 / 3, 1e-12);
  // Stated and known: 0 (agrees), 1 and 2 ("left", later; disagree), 4 (agrees); 3 has no evidence.
  EXPECT_NEAR(m["region_matches_evidence"].get<double>(), 0.5, 1e-12);
  // Families of the flagged anomalies that map: poke -> hole (said hole: right), crack (right),
  // poke -> hole (said crack: wrong); "combined" maps to none. Most frequent family: hole, 2 of 3.
  EXPECT_NEAR(m["defect_family_accuracy"].get<double>(), 2.0 / 3, 1e-12);
  EXPECT_NEAR(m["family_baseline_most_frequent"].get<double>(), 2.0 / 3, 1e-12);
  EXPECT_NEAR(m["family_baseline_look"].get<double>(), 1.0 / 3, 1e-12);
  EXPECT_EQ(prediction_from_json(to_json(ps[0])).evidence_family, "hole");
  // poke answered "hole" counts now; "combined" answered "crack" does not: 2 of 4.
  EXPECT_NEAR(m["defect_type_accuracy"].get<double>(), 0.5, 1e-12);
  // Collapse among the 5 anomalous answers: one chain 3 of 5, region "left" 3 of 5, type crack 3 of 5.
  EXPECT_EQ(m["collapse"]["n"], 5);
  EXPECT_NEAR(m["collapse"]["chain"].get<double>(), 0.6, 1e-12);
  EXPECT_NEAR(m["collapse"]["region"].get<double>(), 0.6, 1e-12);
  EXPECT_NEAR(m["collapse"]["type"].get<double>(), 0.6, 1e-12);
  EXPECT_EQ(m["per_defect_type"]["poke"]["family"], "hole");
  EXPECT_TRUE(m["per_defect_type"]["combined"]["family"].is_null());
  // Without evidence (no reference) the peak cell's baseline is unknown, not 0.
  auto no_evidence = ps;
  for (auto& p : no_evidence) p.peak_localized.reset();
  EXPECT_TRUE(summarize(no_evidence)["localization_baselines"]["evidence_peak"].is_null());
  for (auto& p : no_evidence) p.evidence_regions.clear(), p.evidence_family.clear();
  EXPECT_TRUE(summarize(no_evidence)["family_baseline_look"].is_null());
  // A user's map names a folder dataset's own words.
  const lriad::text::DefectMap user = {{"combined", lriad::text::DefectFamily::Crack}};
  EXPECT_NEAR(summarize(ps, &user)["defect_family_accuracy"].get<double>(), 3.0 / 4, 1e-12);
  // The report shows them and flags the collapse.
  const std::string page = render_report(m, ps, ReportOptions{});
  EXPECT_NE(page.find("id=\"explanations\""), std::string::npos);
  EXPECT_NE(page.find("Phrase collapse"), std::string::npos);
  // predictions.jsonl keeps the new fields.
  const auto back = prediction_from_json(to_json(ps[0]));
  EXPECT_EQ(back.evidence_regions, ps[0].evidence_regions);
  EXPECT_EQ(back.centre_localized, ps[0].centre_localized);
  EXPECT_EQ(back.peak_localized, ps[0].peak_localized);
}
