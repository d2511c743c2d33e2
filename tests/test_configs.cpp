// End-to-end: the workstation configs (configs/small.json, configs/base.json) with their normal
// reference train for a few steps on CPU and evaluate, on a generated dataset whose images are as
// large as the config's fine comparison (so both the patch bank and the fine comparison of parts run).
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "fixtures.h"

using lriad::test::read_text;
using lriad::test::run_command;
using lriad::test::TempDir;

namespace {

const std::string kBin = LRIAD_BIN;

std::string config_path(const std::string& name) {
  return std::string(LRIAD_SOURCE_DIR) + "/configs/" + name + ".json";
}

// A few steps of each stage, tiny batches, short validation; the config's model and reference as
// they are unless `extra` overrides them.
const std::string kShort =
    " --device cpu --set sft.steps=2 --set sft.batch_size=2 --set sft.warmup_steps=1 --set grpo.steps=1"
    " --set grpo.batch_size=1 --set grpo.num_generations=2 --set grpo.warmup_steps=1 --set train.eval_every=2"
    " --set train.save_every=2 --set train.val_size=4 --set train.log_every=1";

// Generates 2 categories (fabric: a texture, compared with the patch bank; hex_nut: a part, compared
// in a canonical pose and at the fine size) at `size` px, trains `config` on them, evaluates the run,
// and checks the reference file and that every test image was evaluated.
void train_and_eval(const std::string& config, int size, const std::string& extra = "") {
  TempDir dir;
  const std::string data = dir / "data", run = dir / "run", eval = dir / "eval";
  auto r = run_command(
      kBin + " synth --out " + data + " --categories 2 --per-category 10 --size " + std::to_string(size) + " --seed 1",
      true);
  ASSERT_EQ(r.code, 0) << r.out;
  r = run_command(kBin + " data stats --format mvtec --root " + data + " --json");
  ASSERT_EQ(r.code, 0) << r.out;
  const int test_images = nlohmann::json::parse(r.out)["totals"]["test"]["total"];
  ASSERT_GT(test_images, 0);

  r = run_command(kBin + " train --config " + config_path(config) + " --format synth --root " + data + " --out " + run +
                      kShort + extra,
                  true);
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_TRUE(std::filesystem::exists(run + "/reference.safetensors")) << r.out;
  // The reference treated the part as a part (canonical pose, fine size) and the texture with the bank.
  EXPECT_NE(r.out.find("compared in a canonical pose: hex_nut (also at"), std::string::npos) << r.out;
  const auto resolved = nlohmann::json::parse(read_text(run + "/config.json"));
  EXPECT_EQ(resolved["model"]["reference"], "knn");

  r = run_command(kBin + " eval --run " + run + " --out " + eval + " --batch-size 4", true);
  ASSERT_EQ(r.code, 0) << r.out;
  const auto m = nlohmann::json::parse(read_text(eval + "/metrics.json"));
  EXPECT_EQ(m["n"], test_images);
  EXPECT_EQ(m["per_category"].size(), 2u);
}

}  // namespace

TEST(Configs, SmallTrainsAndEvaluatesWithItsReference) { train_and_eval("small", 256); }  // its own network: 35M

// What is tested is that base's reference settings (224 px, 7x7 patches, fine comparison at 384 px)
// and its lengths (257 image tokens in max_seq_len 448) work end to end; its 265M-parameter network
// is shrunk to keep the test to minutes on 2 CPU cores (image_size, patch_size and max_seq_len stay).
TEST(Configs, BaseTrainsAndEvaluatesWithItsReference) {
  train_and_eval("base", 384,
                 " --set model.vision_dim=64 --set model.vision_layers=1 --set model.vision_heads=2 --set model.dim=64"
                 " --set model.layers=1 --set model.heads=4 --set model.kv_heads=2 --set model.mlp_hidden=128");
}
