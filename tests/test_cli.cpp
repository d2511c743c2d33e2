// End-to-end: the lriad binary on generated trees (synth -> data stats), errors and exit codes.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <sstream>

#include "fixtures.h"

using lriad::test::run_command;
using lriad::test::TempDir;

namespace {
std::string bin() { return LRIAD_BIN; }
}  // namespace

TEST(Cli, DataStatsJsonOnAnMvtecTree) {
  TempDir dir;
  lriad::test::make_mvtec_tree(dir.path());
  auto r = run_command(bin() + " data stats --format mvtec --root " + dir.path() + " --json");
  ASSERT_EQ(r.code, 0) << r.out;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["categories"]["alpha"]["test"]["by_defect"]["crack"], 2);
  EXPECT_EQ(j["totals"]["test"]["anomalous"], 5);
  // --category a,b is the same as --category a --category b
  auto one = run_command(bin() + " data stats -f mvtec -r " + dir.path() + " --json --category alpha,beta");
  auto two = run_command(bin() + " data stats -f mvtec -r " + dir.path() + " --json --category alpha --category beta");
  ASSERT_EQ(one.code, 0);
  EXPECT_EQ(nlohmann::json::parse(one.out)["totals"], nlohmann::json::parse(two.out)["totals"]);
  auto only = run_command(bin() + " data stats -f mvtec -r " + dir.path() + " --json --category beta");
  EXPECT_EQ(nlohmann::json::parse(only.out)["categories"].size(), 1u);
}

TEST(Cli, ErrorsExitNonZeroAndNameThePath) {
  TempDir dir;
  auto r = run_command(bin() + " data stats --format mvtec --root " + dir / "missing", true);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.out.find(dir / "missing"), std::string::npos) << r.out;
  lriad::test::make_mvtec_tree(dir.path());
  r = run_command(bin() + " data stats --format mvtec --root " + dir.path() + " --category nope", true);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.out.find("alpha, beta"), std::string::npos) << r.out;
  r = run_command(bin() + " data stats --format coco --root " + dir.path(), true);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.out.find("mvtec, visa, folder"), std::string::npos) << r.out;
}

TEST(Cli, SynthThenStatsAgree) {
  TempDir dir;
  const std::string out = dir / "demo";
  auto r = run_command(bin() + " synth --out " + out + " --categories 2 --per-category 20 --size 64 --seed 3", true);
  ASSERT_EQ(r.code, 0) << r.out;
  r = run_command(bin() + " data stats --format mvtec --root " + out + " --json");
  ASSERT_EQ(r.code, 0) << r.out;
  auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["categories"].size(), 2u);
  for (auto& [name, c] : j["categories"].items()) {
    EXPECT_EQ(c["train"]["total"].get<int>() + c["test"]["total"].get<int>(), 20) << name;
    EXPECT_EQ(c["train"]["anomalous"], 0) << name;
    EXPECT_GT(c["test"]["anomalous"].get<int>(), 0) << name;
    EXPECT_EQ(c["test"]["masks"], c["test"]["anomalous"]) << name;
    EXPECT_EQ(c["image_sizes"]["64x64"], 20) << name;
  }
  // Writing into the same non-empty directory again is refused.
  r = run_command(bin() + " synth --out " + out + " --categories 1 --per-category 20 --size 64", true);
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.out.find(out), std::string::npos) << r.out;
}

TEST(Cli, InfoReportsThreadsAndBlas) {
  auto r = run_command(bin() + " --threads 2 info --json");
  ASSERT_EQ(r.code, 0) << r.out;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["threads"], 2);
  EXPECT_FALSE(j["blas_is_reference"].get<bool>()) << j["blas"];
  r = run_command(bin() + " info --json");
  j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["threads"], j["cores"]);  // every core by default (Debian's LibTorch starts with 1)
}

TEST(Cli, ModelInitThenInfoReportsComponentsAndVocabulary) {
  TempDir dir;
  const std::string run = dir / "run";
  const std::string small =
      " --set model.dim=32 --set model.layers=1 --set model.heads=4 --set model.kv_heads=2"
      " --set model.vision_dim=32 --set model.vision_layers=1 --set model.vision_heads=2"
      " --set tokenizer.vocab_size=320 --set model.reference=none";
  auto r = run_command(bin() + " model init --config " + std::string(LRIAD_SOURCE_DIR) + "/configs/tiny.json --out " +
                       run + small);
  ASSERT_EQ(r.code, 0) << r.out;
  r = run_command(bin() + " model info --run " + run + " --json");
  ASSERT_EQ(r.code, 0) << r.out;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["vocab_size"], 320);
  EXPECT_EQ(j["config"]["model"]["vocab_size"], 320);  // the embedding follows the vocabulary
  const int64_t vision = j["parameters"]["vision"], decoder = j["parameters"]["decoder"];
  EXPECT_GT(vision, 0);
  EXPECT_GT(decoder, 320 * 32);  // at least the tied embedding
  EXPECT_EQ(j["parameters"]["total"].get<int64_t>(), vision + decoder);
  EXPECT_EQ(j["metadata"]["format"], "lriad-policy");
  // A second init into the same directory is refused and says how to proceed.
  r = run_command(
      bin() + " model init --config " + std::string(LRIAD_SOURCE_DIR) + "/configs/tiny.json --out " + run + small,
      true);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.out.find("--overwrite"), std::string::npos) << r.out;
  // Info on a directory without weights names it.
  r = run_command(bin() + " model info --run " + dir / "nothing", true);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.out.find(dir / "nothing"), std::string::npos) << r.out;
}

// A freshly initialised tiny policy evaluated on a generated MVTec tree: the files and their schema.
TEST(Cli, EvalAndPredictOnATinyCheckpoint) {
  TempDir dir;
  const std::string run = dir / "run", tree = dir / "tree", out = dir / "eval";
  lriad::test::make_mvtec_tree(tree);
  const std::string small =
      " --set model.dim=32 --set model.layers=1 --set model.heads=4 --set model.kv_heads=2"
      " --set model.vision_dim=32 --set model.vision_layers=1 --set model.vision_heads=2"
      " --set tokenizer.vocab_size=1024 --set sampling.max_new_tokens=12";
  auto r =
      run_command(bin() + " model init --config " + std::string(LRIAD_SOURCE_DIR) +
                      "/configs/tiny.json --set data.format=mvtec --set data.root=" + tree + " --out " + run + small,
                  true);
  ASSERT_EQ(r.code, 0) << r.out;
  r = run_command(bin() + " eval --run " + run + " --format mvtec --root " + tree + " --out " + out, true);
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("report: " + out + "/report.html"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("balanced accuracy"), std::string::npos) << r.out;
  const auto m = nlohmann::json::parse(lriad::test::read_text(out + "/metrics.json"));
  for (const char* key : {"accuracy",
                          "balanced_accuracy",
                          "precision",
                          "recall",
                          "specificity",
                          "f1",
                          "auroc",
                          "average_precision",
                          "n",
                          "n_normal",
                          "n_anomalous",
                          "format_rate",
                          "consistency_rate",
                          "localization_agreement",
                          "per_category",
                          "per_defect_type",
                          "run",
                          "dataset",
                          "split",
                          "timestamp"})
    EXPECT_TRUE(m.contains(key)) << key;
  EXPECT_EQ(m["n"], 8);  // alpha: 2 good + 3 defective, beta: 1 good + 2 defective
  EXPECT_EQ(m["n_anomalous"], 5);
  EXPECT_EQ(m["split"], "test");
  EXPECT_EQ(m["per_category"].size(), 2u);
  EXPECT_TRUE(m["per_defect_type"].contains("crack"));
  std::istringstream lines(lriad::test::read_text(out + "/predictions.jsonl"));
  std::string line;
  int count = 0;
  while (std::getline(lines, line)) {
    const auto p = nlohmann::json::parse(line);
    for (const char* key : {"image", "category", "label", "defect_type", "pred", "score", "pred_defect_type",
                            "completion", "well_formed"})
      EXPECT_TRUE(p.contains(key)) << key;
    EXPECT_TRUE(p["pred"] == 0 || p["pred"] == 1);
    EXPECT_GE(p["score"].get<double>(), 0.0);
    EXPECT_LE(p["score"].get<double>(), 1.0);
    ++count;
  }
  EXPECT_EQ(count, 8);
  EXPECT_NE(lriad::test::read_text(out + "/report.html").find("id=\"gallery\""), std::string::npos);

  // Images used for training (data.train_from_test) are left out and counted.
  lriad::test::write_text(run + "/train_from_test.csv", "category,label,defect_type,image\nalpha,anomalous,crack," +
                                                            tree + "/alpha/test/crack/000.png\n");
  r = run_command(bin() + " eval --run " + run + " --format mvtec --root " + tree + " --category alpha --out " + out,
                  true);
  ASSERT_EQ(r.code, 0) << r.out;
  const auto m2 = nlohmann::json::parse(lriad::test::read_text(out + "/metrics.json"));
  EXPECT_EQ(m2["n"], 4);
  EXPECT_EQ(m2["excluded_train_from_test"], 1);

  // predict: one JSON object per image; --samples shows the votes; bad paths are named.
  const std::string img = tree + "/alpha/test/crack/000.png";
  r = run_command(bin() + " predict --run " + run + " --json " + img + " " + tree + "/beta/test/good/000.png");
  ASSERT_EQ(r.code, 0) << r.out;
  std::istringstream pl(r.out);
  count = 0;
  while (std::getline(pl, line)) {
    const auto p = nlohmann::json::parse(line);
    EXPECT_TRUE(p.contains("completion"));
    EXPECT_TRUE(p.contains("score"));
    ++count;
  }
  EXPECT_EQ(count, 2);
  EXPECT_NE(r.out.find("\"category\":\"alpha\""), std::string::npos);  // from the MVTec layout
  r = run_command(bin() + " predict --run " + run + " --samples 3 --temperature 1.0 " + img);
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("votes:"), std::string::npos) << r.out;
  r = run_command(bin() + " predict --run " + run + " " + dir / "nope.png", true);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.out.find(dir / "nope.png"), std::string::npos) << r.out;
  r = run_command(bin() + " predict --run " + run + " " + tree, true);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.out.find("directory"), std::string::npos) << r.out;
  lriad::test::write_text(dir / "notes.png", "not an image");
  r = run_command(bin() + " predict --run " + run + " --category alpha " + dir / "notes.png", true);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.out.find(dir / "notes.png"), std::string::npos) << r.out;
}

// The demo in VisA's published layout end to end: synth --layout visa, data stats, a few
// training steps and eval, all through --format visa.
TEST(Cli, SynthVisaThenStatsTrainAndEval) {
  TempDir dir;
  const std::string tree = dir / "visa", run = dir / "run", out = dir / "eval";
  auto r = run_command(
      bin() + " synth --layout visa --out " + tree + " --categories 2 --per-category 30 --size 64 --seed 3", true);
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("--format visa"), std::string::npos) << r.out;
  r = run_command(bin() + " data stats --format visa --root " + tree + " --json");
  ASSERT_EQ(r.code, 0) << r.out;
  const auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["categories"].size(), 2u);
  int test_images = 0, test_anomalous = 0;
  for (auto& [name, c] : j["categories"].items()) {
    EXPECT_EQ(c["train"]["total"].get<int>() + c["test"]["total"].get<int>(), 30) << name;
    EXPECT_EQ(c["train"]["anomalous"], 0) << name;
    EXPECT_GT(c["test"]["anomalous"].get<int>(), 0) << name;
    EXPECT_EQ(c["test"]["masks"], c["test"]["anomalous"]) << name;
    EXPECT_EQ(c["image_sizes"]["85x64"], 30) << name;  // width round(64 * 4 / 3), height 64
    test_images += c["test"]["total"].get<int>();
    test_anomalous += c["test"]["anomalous"].get<int>();
  }
  // 30 per category: defects round(0.235 * 30) = 7, test normal round(0.165 * 30) = 5.
  EXPECT_EQ(test_images, 2 * (7 + 5));
  EXPECT_EQ(test_anomalous, 2 * 7);

  std::string train = bin() + " --threads 1 train --config " + std::string(LRIAD_SOURCE_DIR) +
                      "/configs/tiny.json --format visa --root " + tree + " --out " + run;
  for (const char* s : {"model.dim=32", "model.layers=1", "model.heads=4", "model.kv_heads=2", "model.vision_dim=32",
                        "model.vision_layers=1", "model.vision_heads=2", "tokenizer.vocab_size=320",
                        "model.reference=none", "model.max_seq_len=320", "sampling.max_new_tokens=12", "sft.steps=3",
                        "sft.batch_size=4", "vision_warmup.steps=0", "grpo.steps=1", "grpo.batch_size=2",
                        "grpo.num_generations=3", "train.val_size=4", "train.log_completions_every=100"})
    train += std::string(" --set ") + s;
  r = run_command(train, true);
  ASSERT_EQ(r.code, 0) << r.out;
  r = run_command(bin() + " eval --run " + run + " --format visa --root " + tree + " --out " + out, true);
  ASSERT_EQ(r.code, 0) << r.out;
  const auto m = nlohmann::json::parse(lriad::test::read_text(out + "/metrics.json"));
  EXPECT_EQ(m["n"], test_images);
  EXPECT_EQ(m["n_anomalous"], test_anomalous);
  EXPECT_EQ(m["per_category"].size(), 2u);
}

// The evidence-only baseline (issue 19): a short trained run writes baseline.json, and eval
// reports the baseline beside the policy with the same thresholds; a run without the file gets
// the same thresholds rebuilt from its config; a run without the reference reports null and why.
TEST(Cli, TrainedRunReportsTheEvidenceOnlyBaseline) {
  TempDir dir;
  const std::string run = dir / "run", tree = dir / "tree";
  lriad::test::make_mvtec_tree(tree);
  const std::string small =
      " --set model.dim=32 --set model.layers=1 --set model.heads=4 --set model.kv_heads=2"
      " --set model.vision_dim=32 --set model.vision_layers=1 --set model.vision_heads=2"
      " --set tokenizer.vocab_size=1024 --set sampling.max_new_tokens=8 --set model.max_seq_len=256"
      " --set model.reference_bank=256";  // a small bank: each map in milliseconds
  const std::string tiny = std::string(LRIAD_SOURCE_DIR) + "/configs/tiny.json";
  auto r = run_command(bin() + " train --config " + tiny + " --format mvtec --root " + tree + " --out " + run + small +
                           " --set sft.steps=1 --set vision_warmup.steps=0 --set grpo.steps=0 --set train.val_size=4",
                       true);
  ASSERT_EQ(r.code, 0) << r.out;
  // alpha holds out 1 of its 4 normal training images, beta (3) none: each threshold is the quantile
  // of all its normals' peaks (the held-out one compared with both banks, the others with one).
  const auto file = nlohmann::json::parse(lriad::test::read_text(run + "/baseline.json"));
  EXPECT_EQ(file["format"], "lriad-baseline");
  EXPECT_EQ(file["format_version"], 2);
  EXPECT_EQ(file["q"], 0.95);
  EXPECT_EQ(file["categories"]["alpha"]["n_normals"], 4);
  EXPECT_EQ(file["categories"]["alpha"]["n_held_out"], 1);
  EXPECT_EQ(file["categories"]["alpha"]["peaks"].size(), 4u);
  EXPECT_EQ(file["categories"]["beta"]["n_normals"], 3);
  EXPECT_EQ(file["categories"]["beta"]["n_held_out"], 0);
  EXPECT_EQ(file["categories"]["beta"]["pooled"], false);
  for (const char* cat : {"alpha", "beta"}) {  // numpy's linear 0.95 quantile of its peaks
    auto p = file["categories"][cat]["peaks"].get<std::vector<double>>();
    std::sort(p.begin(), p.end());
    const double h = 0.95 * double(p.size() - 1), lo = p[size_t(h)], hi = p[std::min(size_t(h) + 1, p.size() - 1)];
    EXPECT_NEAR(file["categories"][cat]["threshold"].get<double>(), lo + (h - std::floor(h)) * (hi - lo), 1e-12) << cat;
  }

  r = run_command(bin() + " eval --run " + run + " --out " + dir / "e1", true);
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("b.bacc b.auroc"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("evidence-only baseline"), std::string::npos) << r.out;
  const auto m = nlohmann::json::parse(lriad::test::read_text(dir / "e1/metrics.json"));
  ASSERT_TRUE(m["baseline"].is_object()) << m.dump(2);
  EXPECT_EQ(m["family_from_look_written"], true);  // tiny.json: the chains' family is the look's (FamilySlot)
  const auto& b = m["baseline"];
  for (const char* key : {"balanced_accuracy", "auroc", "accuracy", "recall_anomalous", "recall_normal"}) {
    ASSERT_TRUE(b[key].is_number()) << key;
    EXPECT_GE(b[key].get<double>(), 0.0) << key;
    EXPECT_LE(b[key].get<double>(), 1.0) << key;
  }
  EXPECT_EQ(b["q"], 0.95);
  EXPECT_NE(b["method"].get<std::string>().find("normal training images' peaks per category (held-out ones"),
            std::string::npos)
      << b["method"];
  for (const char* cat : {"alpha", "beta"}) {
    EXPECT_EQ(b["thresholds"][cat], file["categories"][cat]["threshold"]) << cat;
    ASSERT_TRUE(b["per_category"].contains(cat)) << cat;
    EXPECT_TRUE(b["per_category"][cat]["balanced_accuracy"].is_number()) << cat;
    EXPECT_TRUE(b["per_category"][cat]["auroc"].is_number()) << cat;
  }
  std::istringstream lines(lriad::test::read_text(dir / "e1/predictions.jsonl"));
  int count = 0;
  for (std::string line; std::getline(lines, line); ++count)
    EXPECT_TRUE(nlohmann::json::parse(line)["evidence_peak"].is_number()) << line;
  EXPECT_EQ(count, 8);
  EXPECT_NE(lriad::test::read_text(dir / "e1/report.html").find("<table id=\"baseline\""), std::string::npos);

  // A run made before baseline.json: the thresholds are rebuilt from the config's normal images, their
  // peaks made as training makes them (no training context here): the same thresholds.
  std::filesystem::remove(run + "/baseline.json");
  r = run_command(bin() + " eval --run " + run + " --out " + dir / "e2", true);
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("no baseline.json"), std::string::npos) << r.out;
  const auto m2 = nlohmann::json::parse(lriad::test::read_text(dir / "e2/metrics.json"));
  EXPECT_EQ(m2["baseline"]["thresholds"], b["thresholds"]);

  // model.reference=none: no baseline, and metrics.json says why.
  r = run_command(bin() + " model init --config " + tiny + " --set data.format=mvtec --set data.root=" + tree +
                      " --out " + dir / "plain" + small + " --set model.reference=none",
                  true);
  ASSERT_EQ(r.code, 0) << r.out;
  r = run_command(bin() + " eval --run " + dir / "plain" + " --category alpha --out " + dir / "e3", true);
  ASSERT_EQ(r.code, 0) << r.out;
  const auto m3 = nlohmann::json::parse(lriad::test::read_text(dir / "e3/metrics.json"));
  EXPECT_TRUE(m3.contains("baseline") && m3["baseline"].is_null());
  EXPECT_EQ(m3["family_from_look_written"], false);  // no reference, no look to write a family from
  EXPECT_NE(m3["baseline_reason"].get<std::string>().find("model.reference=none"), std::string::npos);
}

// `lriad bench` reports figures only (no test times anything); this checks the memory report's
// wiring: each section asked for has its own peak, and the process's peak is the largest.
TEST(Cli, BenchReportsEachSectionsPeakMemory) {
  auto r = run_command(bin() + " bench --sections gemm,data --gemm-size 128 --json");
  ASSERT_EQ(r.code, 0) << r.out;
  const auto j = nlohmann::json::parse(r.out);
  ASSERT_TRUE(j.contains("peak_rss_mib_by_section")) << r.out;
  const auto& s = j["peak_rss_mib_by_section"];
  ASSERT_EQ(s.size(), 2u) << s.dump();
  EXPECT_GT(s["gemm"].get<double>(), 0);
  EXPECT_GT(s["data"].get<double>(), 0);
  EXPECT_GE(j["peak_rss_mib"].get<double>(), std::max(s["gemm"].get<double>(), s["data"].get<double>()));
  EXPECT_EQ(j["data"].value("reference_device", ""), "cpu") << j["data"].dump();  // where its banks' products ran
  ASSERT_TRUE(j["data"].contains("synthetic_anomaly_ms")) << j["data"].dump();    // painting anomalies is timed here
  EXPECT_GT(j["data"]["synthetic_anomaly_ms"].value("128", 0.0), 0);
}
