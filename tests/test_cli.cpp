// End-to-end: the lriad binary on generated trees (synth -> data stats), errors and exit codes.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

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
  const std::string small = " --set model.dim=32 --set model.layers=1 --set model.heads=4 --set model.kv_heads=2"
                            " --set model.vision_dim=32 --set model.vision_layers=1 --set model.vision_heads=2"
                            " --set tokenizer.vocab_size=320";
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
  r = run_command(bin() + " model init --config " + std::string(LRIAD_SOURCE_DIR) + "/configs/tiny.json --out " + run +
                      small, true);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.out.find("--overwrite"), std::string::npos) << r.out;
  // Info on a directory without weights names it.
  r = run_command(bin() + " model info --run " + dir / "nothing", true);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.out.find(dir / "nothing"), std::string::npos) << r.out;
}
