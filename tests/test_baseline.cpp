// The evidence-only baseline: numpy's linear quantile by hand, thresholds per category with the
// pooled fallback and their file, the peak of the deviation channel, and its metrics, table and
// report section on hand-made predictions.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include "fixtures.h"
#include "lriad/eval/baseline.h"
#include "lriad/eval/report.h"
#include "lriad/eval/summary.h"
#include "lriad/io/error.h"
#include "lriad/train/baseline.h"

using namespace lriad;
using lriad::test::TempDir;

TEST(Baseline, QuantileIsNumpysLinearInterpolation) {
  // sorted {1,2,3,4,5}, q = 0.95: h = (5 - 1) * 0.95 = 3.8 -> x[3] + 0.8 (x[4] - x[3]) = 4 + 0.8 = 4.8
  EXPECT_NEAR(train::quantile({5, 1, 4, 2, 3}, 0.95), 4.8, 1e-12);
  // {1,2,3,4}, q = 0.5: h = 1.5 -> 2 + 0.5 * (3 - 2) = 2.5 (numpy's median)
  EXPECT_NEAR(train::quantile({4, 3, 2, 1}, 0.5), 2.5, 1e-12);
  // the ends are the minimum and the maximum; one value is its own quantile
  EXPECT_EQ(train::quantile({5, 1, 4}, 0.0), 1.0);
  EXPECT_EQ(train::quantile({5, 1, 4}, 1.0), 5.0);
  EXPECT_EQ(train::quantile({7}, 0.95), 7.0);
  // {0, 10}, q = 0.95: h = 0.95 -> 0 + 0.95 * 10 = 9.5
  EXPECT_NEAR(train::quantile({10, 0}, 0.95), 9.5, 1e-12);
  EXPECT_THROW(train::quantile({}, 0.95), Error);
  EXPECT_THROW(train::quantile({1, 2}, 1.5), Error);
}

TEST(Baseline, ThresholdsPerCategoryWithThePooledFallbackAndTheirFile) {
  // a: {1,2,3,4,5} -> 4.8 (above); b: {10} -> 10; c: none -> the pooled {1,2,3,4,5,10}:
  // h = 5 * 0.95 = 4.75 -> 5 + 0.75 * (10 - 5) = 8.75
  // a: three held-out peaks and two training ones; b: one training peak only; c: none.
  const auto t = train::fit_thresholds({{"a", {1, 2, 3}}}, {{"a", {4, 5}}, {"b", {10}}}, {"a", "b", "c"}, 0.95);
  ASSERT_TRUE(t.usable());
  EXPECT_EQ(t.n_pooled, 6);
  EXPECT_NEAR(t.pooled, 8.75, 1e-12);
  EXPECT_NEAR(t.threshold("a"), 4.8, 1e-12);
  EXPECT_EQ(t.threshold("b"), 10.0);
  EXPECT_NEAR(t.threshold("c"), 8.75, 1e-12);
  EXPECT_TRUE(t.categories.at("c").pooled);
  EXPECT_FALSE(t.categories.at("a").pooled);
  EXPECT_FALSE(t.categories.at("b").pooled);  // a training peak of its own is enough
  EXPECT_EQ(t.categories.at("a").peaks, (std::vector<double>{1, 2, 3, 4, 5}));  // held-out first
  EXPECT_EQ(t.categories.at("a").held_out, 3);
  EXPECT_EQ(t.categories.at("b").held_out, 0);
  EXPECT_TRUE(t.with_training);
  EXPECT_NEAR(t.threshold("unseen"), 8.75, 1e-12);  // a category the run did not train on

  TempDir dir;
  const std::string path = dir / "baseline.json";
  train::save_baseline(t, path);
  const auto j = nlohmann::json::parse(lriad::test::read_text(path));
  EXPECT_EQ(j["format"], "lriad-baseline");
  EXPECT_EQ(j["format_version"], 2);
  EXPECT_EQ(j["categories"]["a"]["n_normals"], 5);
  EXPECT_EQ(j["categories"]["a"]["n_held_out"], 3);
  EXPECT_EQ(j["categories"]["a"]["q"], 0.95);
  EXPECT_EQ(j["categories"]["b"]["peaks"], nlohmann::json::array({10.0}));
  const auto back = train::load_baseline(path);
  EXPECT_EQ(back.q, 0.95);
  EXPECT_EQ(back.n_pooled, 6);
  for (const char* c : {"a", "b", "c"}) {
    EXPECT_EQ(back.threshold(c), t.threshold(c)) << c;
    EXPECT_EQ(back.categories.at(c).peaks, t.categories.at(c).peaks) << c;
    EXPECT_EQ(back.categories.at(c).pooled, t.categories.at(c).pooled) << c;
    EXPECT_EQ(back.categories.at(c).held_out, t.categories.at(c).held_out) << c;
  }
  EXPECT_TRUE(back.with_training);
  // A version-1 file (before the training normals' peaks): its peaks are all held-out ones, its
  // thresholds read as written; a later version is refused.
  auto v1 = j;
  v1["format_version"] = 1;
  for (auto& [name, c] : v1["categories"].items()) c.erase("n_held_out");
  const auto old = train::thresholds_from_json(v1, "v1.json");
  EXPECT_FALSE(old.with_training);
  EXPECT_EQ(old.categories.at("a").held_out, 5);
  EXPECT_EQ(old.threshold("a"), t.threshold("a"));
  auto v3 = j;
  v3["format_version"] = 3;
  EXPECT_THROW(train::thresholds_from_json(v3, "v3.json"), lriad::Error);

  // No held-out normal anywhere: no threshold, and the file says null.
  const auto empty = train::fit_thresholds({}, {}, {"a"}, 0.95);
  EXPECT_FALSE(empty.usable());
  EXPECT_TRUE(train::to_json(empty)["categories"]["a"]["threshold"].is_null());
  EXPECT_FALSE(train::thresholds_from_json(train::to_json(empty), "x").usable());

  // A file of another version or a damaged one is refused, naming it.
  auto other = train::to_json(t);
  other["format_version"] = 99;
  lriad::test::write_text(path, other.dump());
  try {
    train::load_baseline(path);
    FAIL() << "version 99 accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
  lriad::test::write_text(path, "{\"format\": \"lriad-baseline\"");
  EXPECT_THROW(train::load_baseline(path), Error);
}

TEST(Baseline, EvidencePeakIsTheMaxOfTheDeviationChannel) {
  auto input = torch::zeros({4, 2, 2});
  input[0].fill_(9.0);  // RGB values never count
  input[3] = torch::tensor({{0.5f, 2.5f}, {1.0f, 0.0f}});
  EXPECT_EQ(train::evidence_peak(input), 2.5);
  EXPECT_THROW(train::evidence_peak(torch::zeros({3, 2, 2})), Error);  // no deviation channel
}

namespace {

eval::Prediction peak(const std::string& cat, int label, double value) {
  eval::Prediction p;
  p.image = cat + "/" + std::to_string(label) + "_" + std::to_string(value) + ".png";
  p.category = cat;
  p.label = label;
  p.pred = label;  // the policy is right everywhere; the baseline's verdicts come from the peaks
  p.parsed = true;
  p.score = label ? 0.9 : 0.1;
  p.defect_type = label ? "crack" : "good";
  p.evidence_peak = value;
  return p;
}

// a (threshold 1.0): anomalies 3.0 (caught), 0.8 (missed); normals 0.5, 1.2 (false alarm), 0.9.
// b (no threshold of its own: pooled 2.0): anomaly 2.5 (caught), normal 1.5.
std::vector<eval::Prediction> peak_set() {
  return {peak("a", 1, 3.0), peak("a", 1, 0.8), peak("a", 0, 0.5), peak("a", 0, 1.2),
          peak("a", 0, 0.9), peak("b", 1, 2.5), peak("b", 0, 1.5)};
}

eval::BaselineRule peak_rule() {
  eval::BaselineRule rule;
  rule.q = 0.95;
  rule.thresholds = {{"a", 1.0}};
  rule.pooled = 2.0;
  return rule;
}

}  // namespace

TEST(Baseline, MetricsOnHandMadePeaks) {
  const auto b = eval::summarize_baseline(peak_set(), peak_rule());
  EXPECT_EQ(b["method"],
            "peak of the normal reference's deviation map; threshold = 0.95 quantile of normal training images' "
            "peaks per category (held-out ones compared with both banks, the others with the bank they are not in)");
  auto held_out_only = peak_rule();  // as a run with a version-1 baseline.json reports it
  held_out_only.with_training = false;
  EXPECT_EQ(eval::summarize_baseline(peak_set(), held_out_only)["method"],
            "peak of the normal reference's deviation map; threshold = 0.95 quantile of held-out normal "
            "training images' peaks per category");
  EXPECT_EQ(b["q"], 0.95);
  EXPECT_EQ(b["thresholds"]["a"], 1.0);
  EXPECT_EQ(b["thresholds"]["b"], 2.0);
  // all: TP 2 (3.0, 2.5), FN 1 (0.8), TN 3 (0.5, 0.9, 1.5), FP 1 (1.2)
  // recall_anomalous 2/3, recall_normal 3/4, balanced (2/3 + 3/4) / 2 = 17/24, accuracy 5/7
  EXPECT_EQ(b["confusion"]["tp"], 2);
  EXPECT_EQ(b["confusion"]["fp"], 1);
  EXPECT_NEAR(b["recall_anomalous"].get<double>(), 2.0 / 3, 1e-12);
  EXPECT_NEAR(b["recall_normal"].get<double>(), 0.75, 1e-12);
  EXPECT_NEAR(b["balanced_accuracy"].get<double>(), 17.0 / 24, 1e-12);
  EXPECT_NEAR(b["accuracy"].get<double>(), 5.0 / 7, 1e-12);
  // AUROC over (anomaly, normal) pairs by peak: 3.0 and 2.5 beat all 4 normals, 0.8 beats 0.5
  // only: (4 + 4 + 1) / 12 = 0.75
  EXPECT_NEAR(b["auroc"].get<double>(), 0.75, 1e-12);
  // a: recall_anomalous 1/2, recall_normal 2/3, balanced 7/12; AUROC (3 + 1) / 6 = 2/3; accuracy 3/5
  const auto& a = b["per_category"]["a"];
  EXPECT_NEAR(a["balanced_accuracy"].get<double>(), 7.0 / 12, 1e-12);
  EXPECT_NEAR(a["auroc"].get<double>(), 2.0 / 3, 1e-12);
  EXPECT_NEAR(a["accuracy"].get<double>(), 0.6, 1e-12);
  EXPECT_EQ(a["threshold"], 1.0);
  // b at the pooled 2.0: both right, balanced 1, AUROC 1
  EXPECT_EQ(b["per_category"]["b"]["balanced_accuracy"], 1.0);
  EXPECT_EQ(b["per_category"]["b"]["auroc"], 1.0);
  // macro: balanced (7/12 + 1) / 2 = 19/24, AUROC (2/3 + 1) / 2 = 5/6
  EXPECT_NEAR(b["macro"]["balanced_accuracy"].get<double>(), 19.0 / 24, 1e-12);
  EXPECT_NEAR(b["macro"]["auroc"].get<double>(), 5.0 / 6, 1e-12);

  // A peak equal to the threshold is normal (anomalous means above it).
  const auto at = eval::summarize_baseline({peak("a", 0, 1.0)}, peak_rule());
  EXPECT_EQ(at["recall_normal"], 1.0);
  // An image without a peak (a run without the reference) cannot be scored.
  auto ps = peak_set();
  ps[2].evidence_peak.reset();
  EXPECT_THROW(eval::summarize_baseline(ps, peak_rule()), Error);
}

TEST(Baseline, TableReportAndPredictionsShowIt) {
  const auto ps = peak_set();
  auto m = eval::summarize(ps);
  m["baseline"] = eval::summarize_baseline(ps, peak_rule());
  const std::string table = eval::format_table(m);
  EXPECT_NE(table.find("b.bacc b.auroc"), std::string::npos) << table;
  EXPECT_NE(table.find("0.583   0.667"), std::string::npos) << table;  // a: 7/12, 2/3
  EXPECT_NE(table.find("0.708   0.750"), std::string::npos) << table;  // all: 17/24, 0.75
  const std::string html = eval::render_report(m, ps);
  EXPECT_NE(html.find("<table id=\"baseline\""), std::string::npos);
  EXPECT_NE(html.find("0.583"), std::string::npos);
  // Without one: no extra columns, and the report says why.
  m["baseline"] = nullptr;
  m["baseline_reason"] = "model.reference=none: no normal reference to score with";
  EXPECT_EQ(eval::format_table(m).find("b.bacc"), std::string::npos);
  EXPECT_NE(eval::render_report(m, ps).find("model.reference=none"), std::string::npos);
  // predictions.jsonl carries the peak, and reads it back.
  const auto j = eval::to_json(ps[0]);
  EXPECT_EQ(j["evidence_peak"], 3.0);
  EXPECT_EQ(eval::prediction_from_json(j).evidence_peak, 3.0);
}
