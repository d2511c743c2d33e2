// train/: the mask-free training source (no test image by default), short end-to-end `run_training`
// runs with resume, the prefetcher and the evidence gate and check (GRPO: test_grpo.cpp).
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "fixtures.h"
#include "train_fixtures.h"
#include "lriad/data/dataset.h"
#include "lriad/io/error.h"
#include "lriad/demo/synth.h"
#include "lriad/model/generate.h"
#include "lriad/model/verdict.h"
#include "lriad/text/evidence.h"
#include "lriad/text/prompt.h"
#include "lriad/text/tokenizer.h"
#include "lriad/model/weights.h"
#include "lriad/train/evidence_check.h"
#include "lriad/train/grpo.h"
#include "lriad/train/prefetch.h"
#include "lriad/train/source.h"
#include "lriad/train/trainer.h"

using namespace lriad;
using lriad::test::small_run;
using lriad::test::TempDir;

namespace {

std::string strip_kind(const std::string& source) { return source.substr(0, source.find('#')); }

void make_demo(const std::string& root, int categories, int per_category) {
  demo::SynthOptions s;
  s.out = root;
  s.categories = categories;
  s.per_category = per_category;
  s.size = 48;
  demo::generate_synthetic(s);
}

}  // namespace

TEST(TrainingSource, NoTestImageReachesTrainingByDefault) {
  TempDir dir;
  make_demo(dir / "d", 3, 20);
  RunConfig c = small_run(dir / "d");
  const data::Dataset ds = data::load_dataset(data::Format::MVTec, dir / "d", {});
  std::set<std::string> train_paths, test_paths;
  for (const auto& s : ds.samples) (s.split == data::Split::Train ? train_paths : test_paths).insert(s.image_path);
  ASSERT_FALSE(test_paths.empty());

  train::TrainingSource source(c);
  EXPECT_TRUE(source.from_test().samples.empty());
  int anomalous = 0;
  std::set<std::string> kinds;
  for (uint64_t step = 0; step < 50; ++step)
    for (int i = 0; i < 8; ++i) {
      const auto item = source.draw(step, i);
      EXPECT_EQ(test_paths.count(strip_kind(item.source)), 0u) << item.source;
      EXPECT_EQ(train_paths.count(strip_kind(item.source)), 1u) << item.source;
      EXPECT_EQ(item.image.rows, 32);
      anomalous += item.anomalous;
      if (item.anomalous) {
        kinds.insert(item.defect_type);
        EXPECT_TRUE(item.region.has_value());
      }
    }
  EXPECT_NEAR(anomalous / 400.0, c.data.anomaly_ratio, 0.1);
  EXPECT_GE(kinds.size(), 4u);  // a mix of synthetic kinds, not one
  for (const auto& v : source.validation()) {
    EXPECT_EQ(test_paths.count(strip_kind(v.source)), 0u);
    // Held out of both reference banks, so compared with both, as a test image is.
    EXPECT_EQ(v.reference_bank, reference::NormalReference::kBothBanks) << v.source;
  }
  // A draw is compared with the bank of the other half (never its own).
  for (int i = 0; i < 8; ++i) {
    const int bank = source.draw(3, i).reference_bank;
    EXPECT_TRUE(bank == 0 || bank == 1) << bank;
  }
  // Deterministic in (seed, step, index).
  train::TrainingSource again(c);
  const auto a = source.draw(7, 3), b = again.draw(7, 3);
  EXPECT_EQ(a.source, b.source);
  EXPECT_EQ(cv::norm(a.image, b.image, cv::NORM_INF), 0.0);
  // With the reference's fine comparison the images stay at its side (anomalies drawn there too).
  c.model.reference = "knn";
  c.model.reference_fine_size = 48;
  EXPECT_EQ(c.model.work_size(), 48);
  // ...for parts on a plain background only; textures stay at image_size.
  std::map<std::string, int> sides;
  train::TrainingSource fine(c);
  for (uint64_t step = 0; step < 20; ++step) {
    const auto item = fine.draw(step, 0);
    sides[item.category] = item.image.rows;
  }
  for (const auto& v : fine.validation()) EXPECT_EQ(v.image.cols, sides.at(v.category)) << v.category;
  int parts = 0, textures = 0;
  for (const auto& [cat, side] : sides) {
    const bool part = demo::synth_categories().end() !=
                      std::find_if(demo::synth_categories().begin(), demo::synth_categories().end(),
                                   [&](const demo::SynthCategoryInfo& i) { return i.name == cat && !i.is_texture; });
    EXPECT_EQ(side, part ? 48 : 32) << cat;
    (part ? parts : textures)++;
  }
  EXPECT_GT(parts, 0);
  EXPECT_GT(textures, 0);
}

TEST(TrainingSource, TrainFromTestTakesAStratifiedRecordedShare) {
  TempDir dir;
  make_demo(dir / "d", 2, 40);
  RunConfig c = small_run(dir / "d");
  c.data.train_from_test = 0.5;
  train::TrainingSource source(c);
  const auto& taken = source.from_test().samples;
  ASSERT_FALSE(taken.empty());
  const data::Dataset ds = data::load_dataset(data::Format::MVTec, dir / "d", {});
  std::map<std::string, int> all, used;
  for (const auto& s : ds.samples)
    if (s.split == data::Split::Test) all[s.category + "/" + s.defect_type]++;
  for (const auto& s : taken) {
    EXPECT_EQ(s.split, data::Split::Test);
    used[s.category + "/" + s.defect_type]++;
  }
  for (const auto& [k, n] : all) EXPECT_NEAR(used[k], n * 0.5, 0.51) << k;
  train::save_train_from_test(source.from_test(), dir / "t.csv");
  std::ifstream in(dir / "t.csv");
  int lines = 0;
  for (std::string l; std::getline(in, l);) ++lines;
  EXPECT_EQ(lines, int(taken.size()) + 1);
}

TEST(Training, ShortRunWritesTheRunDirectoryAndResumes) {
  TempDir dir;
  make_demo(dir / "d", 2, 20);
  RunConfig c = small_run(dir / "d");
  c.vision_warmup.steps = 2;  // stage 0 and the auxiliary probe run too
  c.vision_warmup.batch_size = 4;
  c.sft.vision_aux = 0.0;
  c.sft.steps = 4;
  c.sft.batch_size = 4;
  c.grpo.steps = 2;
  c.grpo.batch_size = 2;
  c.grpo.num_generations = 3;
  c.sampling.max_new_tokens = 8;
  c.train.eval_every = 2;
  c.train.save_every = 2;
  c.train.log_completions_every = 1;
  train::TrainOptions o;
  o.out = dir / "run";
  const auto s = train::run_training(c, o);
  ASSERT_EQ(s.stages.size(), 3u);
  EXPECT_EQ(s.stages[0].stage, "vision");
  EXPECT_EQ(s.stages[1].steps, 4);
  EXPECT_EQ(s.stages[2].steps, 2);
  for (const char* f : {"config.json", "tokenizer.model", "model.safetensors", "sft.safetensors", "best.safetensors",
                        "checkpoints/grpo-00002/optimizer.pt", "checkpoints/grpo-00002/model.safetensors",
                        "trainer_state.json", "metrics.jsonl", "validation.jsonl", "completions/step_00002.jsonl"})
    EXPECT_TRUE(std::filesystem::exists(dir / ("run/" + std::string(f)))) << f;
  std::ifstream in(dir / "run/metrics.jsonl");
  int lines = 0;
  for (std::string l; std::getline(in, l);) {
    const auto j = nlohmann::json::parse(l);
    if (j["stage"] == "grpo")
      for (const char* k : {"reward", "reward_std", "kl", "clip_ratio/region_mean", "completions/mean_length",
                            "frac_reward_zero_std", "entropy", "learning_rate", "rewards/focal/mean"})
        EXPECT_TRUE(j.contains(k)) << k;
    ++lines;
  }
  EXPECT_EQ(lines, 8);
  // best.safetensors is the validation with the highest selection score (the later of equals), and
  // each line's score is its balanced accuracy plus 0.05 x its type agreement (unless at chance).
  {
    std::ifstream vin(dir / "run/validation.jsonl");
    double top = -1;
    std::string top_at;
    int validations = 0;
    for (std::string l; std::getline(vin, l); ++validations) {
      const auto j = nlohmann::json::parse(l);
      const double type = j.at("type_agreement").get<double>(), score = j.at("selection_score").get<double>();
      EXPECT_GE(type, 0.0);
      EXPECT_LE(type, 1.0);
      EXPECT_LE(j.at("typed_items").get<int>(), j.at("items").get<int>());
      EXPECT_NEAR(score, j["balanced_accuracy"].get<double>() + (j["at_chance"].get<bool>() ? 0.0 : 0.05 * type),
                  1e-12);
      if (score >= top)
        top = score, top_at = j["stage"].get<std::string>() + ":" + std::to_string(j["step"].get<int>());
    }
    EXPECT_GE(validations, 2);
    const auto state = nlohmann::json::parse(lriad::test::read_text(dir / "run/trainer_state.json"));
    EXPECT_DOUBLE_EQ(state.at("best_score").get<double>(), top);
    EXPECT_EQ(state.at("best_at").get<std::string>(), top_at);
  }
  // An existing run is refused without --overwrite/--resume; resuming a finished run adds nothing.
  EXPECT_THROW(train::run_training(c, o), Error);
  o.resume = true;
  const auto r = train::run_training(c, o);
  EXPECT_TRUE(r.stages.empty());
  // Interrupted after SFT step 2: resuming replays SFT 3-4 and GRPO without duplicate log lines.
  double old_best = -1;
  {
    std::ifstream st(dir / "run/trainer_state.json");
    auto j = nlohmann::json::parse(st);
    j["stage"] = "sft";
    j["step"] = 2;
    old_best = j["best_balanced_accuracy"].get<double>();
    j.erase("best_score");  // as a run written before the score
    std::ofstream(dir / "run/trainer_state.json") << j.dump();
    // And begun before its chains read lines at full side: resuming keeps it so (eval reads none).
    auto record = nlohmann::json::parse(lriad::test::read_text(dir / "run/policy_input.json"));
    EXPECT_EQ(record.at("reads_lines"), true);  // what a new run writes
    record["reads_lines"] = false;
    std::ofstream(dir / "run/policy_input.json") << record.dump();
  }
  const auto again = train::run_training(c, o);
  ASSERT_EQ(again.stages.size(), 2u);
  EXPECT_EQ(again.stages[0].steps, 2);
  EXPECT_EQ(nlohmann::json::parse(lriad::test::read_text(dir / "run/policy_input.json")).at("reads_lines"), false);
  {
    // The older best counts as if its chains named every type: it stays (its score old_best + 0.05),
    // or a validation that scores at least that replaced it.
    const auto state = nlohmann::json::parse(lriad::test::read_text(dir / "run/trainer_state.json"));
    EXPECT_GE(state.at("best_score").get<double>(), old_best + 0.05 - 1e-12);
  }
  std::ifstream in2(dir / "run/metrics.jsonl");
  std::vector<std::string> keys;
  for (std::string l; std::getline(in2, l);) {
    const auto j = nlohmann::json::parse(l);
    keys.push_back(j["stage"].get<std::string>() + std::to_string(j["step"].get<int>()));
  }
  EXPECT_EQ(keys, (std::vector<std::string>{"vision1", "vision2", "sft1", "sft2", "sft3", "sft4", "grpo1", "grpo2"}));
}

TEST(Prefetcher, DeliversEveryStepInOrderAtMostDepthAhead) {
  for (int depth : {0, 1, 2, 3}) {
    std::atomic<int> produced{0}, taken{0}, most_ahead{0};
    train::Prefetcher<int> p(
        [&](int step) {
          const int ahead = produced.load() - taken.load();
          if (ahead > most_ahead.load()) most_ahead = ahead;
          ++produced;
          return step * step;
        },
        3, 12, depth);
    for (int step = 3; step < 12; ++step) {
      if (step == 5) std::this_thread::sleep_for(std::chrono::milliseconds(30));  // let the producer run ahead
      EXPECT_EQ(p.take(step), step * step) << "depth " << depth;
      ++taken;
      EXPECT_GE(p.last_wait(), 0.0);
    }
    EXPECT_EQ(produced.load(), 9);
    // The queue holds at most `depth` batches; the producer may hold one more in its hands.
    EXPECT_LE(most_ahead.load(), std::max(0, depth)) << "depth " << depth;
    if (depth >= 2) EXPECT_GE(most_ahead.load(), 1) << "the producer never ran ahead";
    EXPECT_THROW(p.take(12), Error);  // past the end
  }
}

TEST(Prefetcher, RethrowsTheProducersErrorAfterTheGoodBatchesAndStopsCleanly) {
  train::Prefetcher<int> p(
      [](int step) {
        if (step == 2) throw Error("cannot read image 2");
        return step;
      },
      0, 5, 2);
  EXPECT_EQ(p.take(0), 0);
  EXPECT_EQ(p.take(1), 1);
  try {
    p.take(2);
    FAIL() << "expected the producer's error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("image 2"), std::string::npos);
  }
  EXPECT_THROW(p.take(1), Error);  // out of order
  // Destroying a prefetcher whose producer is blocked on a full queue stops it (a hang here
  // would time the test out).
  std::atomic<int> produced{0};
  {
    train::Prefetcher<int> q([&](int step) { return ++produced, step; }, 0, 1000, 2);
    EXPECT_EQ(q.take(0), 0);
  }
  EXPECT_LE(produced.load(), 4);
}

TEST(Training, NonFiniteStepsAreSkippedCountedAndStopWithTheCheckpointIntact) {
  TempDir dir;
  make_demo(dir / "d", 1, 16);
  RunConfig c = small_run(dir / "d");
  c.sft.steps = 8;
  c.sft.batch_size = 4;
  c.sft.lr = 1e30;  // the first update blows the weights up; every later loss is not finite
  c.sft.warmup_steps = 0;
  c.grpo.steps = 0;
  c.train.save_every = 1;
  c.train.eval_every = 100;
  c.train.max_consecutive_skips = 2;
  train::TrainOptions o;
  o.out = dir / "run";
  try {
    train::run_training(c, o);
    FAIL() << "expected the run to stop";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("non-finite steps in a row"), std::string::npos) << msg;
    EXPECT_NE(msg.find(o.out), std::string::npos) << msg;
  }
  // Skipped steps are in metrics.jsonl with the term that was not finite.
  std::ifstream in(dir / "run/metrics.jsonl");
  int skipped = 0, lines = 0;
  for (std::string l; std::getline(in, l); ++lines) {
    const auto j = nlohmann::json::parse(l);
    ASSERT_TRUE(j.contains("skipped")) << l;
    if (j["skipped"] == 1) {
      ++skipped;
      EXPECT_TRUE(j["nonfinite"] == "loss" || j["nonfinite"] == "gradient") << l;
    }
  }
  EXPECT_GE(skipped, 1);
  EXPECT_LT(lines, 8);
  // The state names a complete checkpoint that loads.
  std::ifstream st(dir / "run/trainer_state.json");
  const auto state = nlohmann::json::parse(st);
  const std::string ckpt = dir / ("run/" + state["checkpoint"].get<std::string>());
  EXPECT_TRUE(std::filesystem::exists(ckpt + "/optimizer.pt"));
  RunConfig saved = load_config(dir / "run/config.json");
  auto policy = model::make_policy(saved.model, 0);
  EXPECT_NO_THROW(model::load_weights(*policy, ckpt + "/model.safetensors"));
}

// The focal reward's p and eval's anomaly score are read where the chain of thought commits to a
// verdict, not at <answer> (where the chain has already written it and p is ~1).
TEST(EvidenceGate, ShowsOnlyAPeakAboveTheLevelInsideTheFootprint) {
  auto input = torch::zeros({4, 8, 8});
  input[3][2][2] = 3.0;  // the peak, at map pixel (2,2)
  input[3][6][6] = 1.5;  // a lower bump elsewhere
  cv::Mat at_peak = cv::Mat::zeros(16, 16, CV_8UC1), elsewhere = at_peak.clone();
  at_peak(cv::Rect(4, 4, 2, 2)) = 1;                           // 16 px -> 8 px: pixels 4-5 become map pixel 2
  elsewhere(cv::Rect(12, 12, 2, 2)) = 1;                       // map pixel 6, grown by one: 5-7, away from (2,2)
  EXPECT_TRUE(train::evidence_shows(input, at_peak, 2.0));     // 3.0 > 2.0
  EXPECT_FALSE(train::evidence_shows(input, at_peak, 3.0));    // 3.0 is not above 3.0
  EXPECT_FALSE(train::evidence_shows(input, elsewhere, 2.0));  // only 1.5 there
  EXPECT_TRUE(train::evidence_shows(input, elsewhere, 1.0));   // 1.5 > 1.0
  EXPECT_TRUE(train::evidence_shows(input, cv::Mat(), 2.9));   // no footprint: the whole map's peak
}

// With a gate, a synthetic anomaly the evidence never shows is drawn `attempts` times and then
// becomes its normal image; one the evidence always shows is kept at the first draw. Validation's
// synthetic anomalies pass the same gate.
TEST(EvidenceGate, RedrawsAnInvisibleAnomalyThenFallsBackToTheNormalImage) {
  TempDir dir;
  make_demo(dir / "d", 2, 20);
  const RunConfig c = small_run(dir / "d");
  train::TrainingSource plain(c), hidden(c), shown(c);
  auto calls = std::make_shared<int>(0);
  auto gate_with = [&](float value) {
    train::EvidenceGate g;
    g.attempts = 3;
    for (const auto& cat : plain.categories()) g.level[cat] = 1.0;
    g.input = [calls, value](const train::TrainItem& t, reference::MapPart* part) {
      ++*calls;
      *part = reference::MapPart::Region;
      auto x = torch::zeros({4, t.image.rows, t.image.rows});
      x[3].fill_(value);
      return x;
    };
    return g;
  };
  hidden.set_evidence_gate(gate_with(0.5f));  // below every level: nothing shows
  for (const auto& v : hidden.validation()) EXPECT_FALSE(v.anomalous) << v.source;
  *calls = 0;
  int anomalous = 0, fell_back = 0;
  for (uint64_t step = 0; step < 20; ++step)
    for (int i = 0; i < 4; ++i) {
      const auto p = plain.draw(step, i), h = hidden.draw(step, i);
      anomalous += p.anomalous;
      EXPECT_FALSE(h.anomalous) << h.source;
      if (p.anomalous) {  // the same base image, untouched, labelled normal
        ++fell_back;
        EXPECT_EQ(h.source, strip_kind(p.source));
        EXPECT_EQ(h.reference_bank, p.reference_bank);
      }
    }
  ASSERT_GT(anomalous, 10);
  EXPECT_EQ(fell_back, anomalous);
  EXPECT_EQ(*calls, 3 * anomalous);          // every anomalous draw tried 3 times
  shown.set_evidence_gate(gate_with(5.0f));  // above every level: the first draw stands
  *calls = 0;
  for (uint64_t step = 0; step < 20; ++step)
    for (int i = 0; i < 4; ++i) {
      const auto p = plain.draw(step, i), s = shown.draw(step, i);
      EXPECT_EQ(s.anomalous, p.anomalous);
      EXPECT_EQ(s.source, p.source);
      EXPECT_EQ(cv::norm(s.image, p.image, cv::NORM_INF), 0.0);
      if (s.anomalous) EXPECT_TRUE(s.input.defined());
      if (s.anomalous) EXPECT_EQ(int(s.part), int(reference::MapPart::Region));  // kept with the input
    }
  EXPECT_EQ(*calls, anomalous);
}

// The evidence check's share: values strictly above the level.
TEST(EvidenceCheck, ShareAboveCountsValuesStrictlyAboveTheLevel) {
  // {0.5, 1.0, 1.5, 2.0} above 1.0: 1.5 and 2.0 -> 2/4 = 0.5; 1.0 itself is not above.
  EXPECT_DOUBLE_EQ(train::share_above({0.5, 1.0, 1.5, 2.0}, 1.0), 0.5);
  EXPECT_DOUBLE_EQ(train::share_above({}, 1.0), 0.0);
}

// The look purity: each look read as its most frequent family, the share so named right.
TEST(EvidenceCheck, LookPurityReadsEachLookAsItsMostFrequentFamily) {
  // "thin": scratch 6, crack 2 -> 6 right; "compact": hole 3, crack 1, stain 1 -> 3 right; "large": stain 2 -> 2.
  // (6 + 3 + 2) / (8 + 5 + 2) = 11/15.
  const std::map<std::string, std::map<std::string, int>> looks = {{"scratch", {{"thin", 6}}},
                                                                   {"crack", {{"thin", 2}, {"compact", 1}}},
                                                                   {"hole", {{"compact", 3}}},
                                                                   {"stain", {{"compact", 1}, {"large", 2}}}};
  EXPECT_DOUBLE_EQ(train::look_purity(looks), 11.0 / 15.0);
  EXPECT_DOUBLE_EQ(train::look_purity({}), 0.0);
  // Every family with one look of its own: fully told apart.
  EXPECT_DOUBLE_EQ(train::look_purity({{"scratch", {{"thin", 4}}}, {"hole", {{"compact", 1}}}}), 1.0);
}

// The check's description: a second line per category with each family's most frequent look.
TEST(EvidenceCheck, DescribeStatesEachFamilysMostFrequentLookAndThePurity) {
  train::EvidenceCheck check;
  auto& c = check.categories["carpet"];
  c.normals = 20;
  c.level = 1.25;
  c.visible = 0.5;
  c.visible_by_kind = {{"scratch", 0.75}};
  c.looks = {{"scratch", {{"a thin, long mark", 3}, {"a small, compact mark", 1}}}};
  c.look_purity = train::look_purity(c.looks);
  const auto lines = train::describe(check);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_NE(lines[0].find("carpet: normal images peak at 1.25 or less (95% of 20)"), std::string::npos) << lines[0];
  EXPECT_NE(lines[1].find("scratch mostly a thin, long mark (75%)"), std::string::npos) << lines[1];
  EXPECT_NE(lines[1].find("right for 100% at best"), std::string::npos) << lines[1];
  // A category without anomalies above its level keeps one line.
  c.looks.clear();
  EXPECT_EQ(train::describe(check).size(), 1u);
}
