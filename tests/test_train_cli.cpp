// End-to-end `lriad train` then `lriad eval` on generated photographs (issue 19): a run that cannot
// learn says so loudly and still exits 0; eval of the train split makes the input training made
// and agrees with the run's last validation on the images they share.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <sstream>

#include <nlohmann/json.hpp>

#include "fixtures.h"
#include "lriad/data/image_io.h"
#include "lriad/eval/evaluator.h"

using lriad::test::read_text;
using lriad::test::run_command;
using lriad::test::TempDir;

namespace {

std::string bin() { return LRIAD_BIN; }

// A policy small enough to train in seconds on 2 cores; images 32 px, parts compared at 64.
const std::string kSmall =
    " --set model.dim=48 --set model.layers=1 --set model.heads=4 --set model.kv_heads=2 --set model.mlp_hidden=96"
    " --set model.vision_dim=32 --set model.vision_layers=1 --set model.vision_heads=2 --set tokenizer.vocab_size=1024"
    " --set model.image_size=32 --set model.patch_size=8 --set model.reference_fine_size=64 --set "
    "model.reference_bank=64"
    " --set sft.batch_size=4 --set train.val_size=8 --set data.val_fraction=0.2 --set train.log_every=100";

std::string train_command(const std::string& tree, const std::string& run, const std::string& steps) {
  return bin() + " train --config " + std::string(LRIAD_SOURCE_DIR) + "/configs/tiny.json --format mvtec --root " +
         tree + " --out " + run + kSmall + steps;
}

nlohmann::json last_line(const std::string& path) {
  std::istringstream in(read_text(path));
  std::string line, last;
  while (std::getline(in, line))
    if (!line.empty()) last = line;
  return nlohmann::json::parse(last);
}

}  // namespace

// One SFT step cannot teach the policy anything: validation is at chance, and the run says so
// after SFT (which answer per category, what to check) and in its closing summary, exit status 0.
TEST(TrainCli, ARunAtChanceSaysSoAndStillCompletes) {
  TempDir dir;
  lriad::test::make_photo_tree(dir / "tree", "mvtec", 6);
  const auto r = run_command(train_command(dir / "tree", dir / "run", " --set sft.steps=1 --set grpo.steps=0"), true);
  ASSERT_EQ(r.code, 0) << r.out;  // the run completed
  EXPECT_NE(r.out.find("validation after the warm start (SFT) is AT CHANCE"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("the policy answers"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("sft.lr"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("FAILED: AT CHANCE"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("`lriad eval` of this run will be meaningless"), std::string::npos) << r.out;
  const auto state = nlohmann::json::parse(read_text(dir / "run/trainer_state.json"));
  EXPECT_TRUE(state["at_chance"].get<bool>());
  const auto v = last_line(dir / "run/validation.jsonl");
  EXPECT_TRUE(v["at_chance"].get<bool>());
  EXPECT_EQ(v["answered_anomalous"].size(), 2u);  // carpet and screw
  for (const auto& [cat, a] : v["answered_anomalous"].items()) {
    EXPECT_GT(a["normal_items"].get<int>(), 0) << cat;
    EXPECT_GT(a["anomalous_items"].get<int>(), 0) << cat;
  }
}

// A fine comparison asked for at more pixels than the images have (96 x 64 JPGs, 128 asked) is made
// at their largest side, said in the log, and kept in the run's config.json for eval.
TEST(TrainCli, TheFineComparisonIsNeverFinerThanTheImages) {
  TempDir dir;
  lriad::test::make_photo_tree(dir / "tree", "visa", 6);
  const auto r =
      run_command(bin() + " train --config " + std::string(LRIAD_SOURCE_DIR) +
                      "/configs/tiny.json --format visa --root " + (dir / "tree") + " --out " + (dir / "run") + kSmall +
                      " --set model.reference_fine_size=128 --set sft.steps=1 --set grpo.steps=0",
                  true);
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("model.reference_fine_size 128 lowered to 96"), std::string::npos) << r.out;
  const auto config = nlohmann::json::parse(read_text(dir / "run/config.json"));
  EXPECT_EQ(config["model"]["reference_fine_size"].get<int>(), 96);
}

// 20 SFT steps, then `lriad eval --split train` with the same weights.
TEST(TrainCli, EvalOfTheTrainSplitMakesTheInputTrainingMade) {
  TempDir dir;
  const std::string tree = dir / "tree", run = dir / "run", out = dir / "eval";
  lriad::test::make_photo_tree(tree, "mvtec", 10);
  auto r =
      run_command(train_command(tree, run, " --set sft.steps=20 --set grpo.steps=0 --set train.eval_every=20"), true);
  ASSERT_EQ(r.code, 0) << r.out;
  r = run_command(bin() + " eval --run " + run + " --split train --weights model.safetensors --out " + out, true);
  ASSERT_EQ(r.code, 0) << r.out;
  // Every training image found the bank training compared it with (the validation normals: both).
  const auto record = nlohmann::json::parse(read_text(run + "/policy_input.json"));
  EXPECT_EQ(record["format_version"], 5);
  EXPECT_EQ(record["states_parts"], true);   // its chains state the part of the map, and eval gives it
  EXPECT_EQ(record["reads_lines"], true);    // and read lines at the side it kept images at, as eval does
  EXPECT_EQ(record["reads_absence"], true);  // and where a part shows background, as eval does
  EXPECT_EQ(record["reads_colour"], true);   // and the colours no normal image shows, as eval does
  // tiny.json compares textures finely too: the texture is kept at the fine side like the part.
  EXPECT_EQ(record["work_side_categories"], nlohmann::json::array({"carpet", "screw"}));
  std::map<std::string, int> pred;
  std::map<std::string, std::string> category;
  std::istringstream lines(read_text(out + "/predictions.jsonl"));
  for (std::string line; std::getline(lines, line);) {
    const auto p = nlohmann::json::parse(line);
    pred[p["image"].get<std::string>()] = p["pred"].get<int>();
    category[p["image"].get<std::string>()] = p["category"].get<std::string>();
  }
  ASSERT_EQ(pred.size(), record["reference_banks"].size());  // the train split: 2 x 10 normals

  // 1. The validation normals are train-split images: eval's verdicts on them are the last
  // validation's (same weights: model.safetensors is saved at that step; same input: both banks,
  // as validation; greedy decoding). Only the batches differ (validation: its 8 items; eval: 16
  // images), and a padded batch agrees with one row at a time to float rounding, which may flip a
  // verdict at a near tie: at most one of the n validation normals may differ.
  const auto v = last_line(run + "/validation.jsonl");
  int n = 0, said_normal = 0;
  for (const auto& [path, bank] : record["reference_banks"].items())
    if (bank.get<int>() == -1) {
      ++n;
      said_normal += pred.at(path) == 0;
    }
  ASSERT_EQ(n, 4);  // val_size 8: 2 normals (and their anomalies) per category
  EXPECT_LE(std::abs(double(said_normal) / n - v["recall_normal"].get<double>()), 1.0 / n + 1e-9)
      << said_normal << " of " << n << " vs " << v["recall_normal"];

  // 2. The normals training drew: eval's verdict is the Inspector's on the same image given the
  // bank training used (the tensor itself is compared bit for bit in test_policy_input), one at a
  // time here against batches of 16 in eval: again at most one near tie may flip.
  lriad::eval::Inspector inspector(run, "cpu", "model.safetensors");
  int compared = 0, differ = 0;
  for (const auto& [path, bank] : record["reference_banks"].items()) {
    if (bank.get<int>() == -1) continue;
    EXPECT_EQ(inspector.training_bank(path), bank.get<int>());
    const auto p = inspector.inspect({{lriad::data::read_image(path), category.at(path), path, bank.get<int>()}}, {});
    ASSERT_EQ(p.size(), 1u);
    differ +=
        (p[0].parsed ? p[0].pred : 1) != pred.at(path);  // eval counts an unparsed answer as wrong: 1 for a normal
    ++compared;
  }
  EXPECT_EQ(compared, 16);
  EXPECT_LE(differ, 1);
}
