// Issue 25: data-parallel training. Two ranks over Gloo on loopback (`lriad train --nproc 2`) reproduce
// the single-process run of the same global batch; a rank that dies stops the other within the
// timeout, naming it, and the run resumes from its last checkpoint on another number of ranks.
#include <gtest/gtest.h>

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "fixtures.h"
#include "lriad/io/safetensors.h"

using lriad::test::read_text;
using lriad::test::run_command;
using lriad::test::TempDir;

namespace fs = std::filesystem;

namespace {

std::string bin() { return LRIAD_BIN; }

struct Fixture {
  TempDir dir;
  std::string tree = dir / "tree";
  Fixture() {
    const auto r = run_command(bin() + " synth --out " + tree + " --only screw --per-category 16 --size 64", true);
    EXPECT_EQ(r.code, 0) << r.out;
  }
  // `lriad --threads 1 train` of a tiny model in fp32: SFT (batch 4) then GRPO (2 prompts x 3), at most
  // `max_new` new tokens (56 holds a whole chain: GRPO's completions end and differ).
  std::vector<std::string> train(const std::string& out, int sft_steps, int save_every, int max_new = 12) const {
    std::vector<std::string> a = {
        "--threads", "1",     "train",  "--config", std::string(LRIAD_SOURCE_DIR) + "/configs/tiny.json",
        "--format",  "synth", "--root", tree,       "--out",
        out};
    const std::vector<std::string> sets = {"precision=fp32",
                                           "model.dim=32",
                                           "model.layers=1",
                                           "model.heads=4",
                                           "model.kv_heads=2",
                                           "model.vision_dim=32",
                                           "model.vision_layers=1",
                                           "model.vision_heads=2",
                                           "model.reference_bank=400",
                                           "model.max_seq_len=320",
                                           "sampling.max_new_tokens=" + std::to_string(max_new),
                                           "sft.steps=" + std::to_string(sft_steps),
                                           "sft.batch_size=4",
                                           "sft.lr=3e-3",
                                           "grpo.steps=4",
                                           "grpo.batch_size=2",
                                           "grpo.num_generations=3",
                                           "grpo.mask_truncated_completions=false",
                                           "train.eval_every=3",
                                           "train.val_size=8",
                                           "train.log_completions_every=2",
                                           "train.save_every=" + std::to_string(save_every)};
    lriad::test::add_sets(a, sets);
    return a;
  }
  std::string command(const std::vector<std::string>& args) const { return lriad::test::shell_command(bin(), args); }
};

// Every float32 tensor of a weights file, by name.
std::map<std::string, std::vector<float>> floats(const std::string& path) {
  std::map<std::string, std::vector<float>> out;
  for (const auto& [name, t] : lriad::io::read_safetensors(path).tensors) {
    if (t.dtype != "F32") continue;
    std::vector<float> v(t.data.size() / sizeof(float));
    std::memcpy(v.data(), t.data.data(), t.data.size());
    out[name] = v;
  }
  return out;
}

}  // namespace

TEST(DataParallel, TwoRanksReproduceOneProcessOfTheSameBatch) {
  Fixture f;
  const std::string one = f.dir / "one", two = f.dir / "two";
  auto r = run_command(f.command(f.train(one, 40, 100, 56)), true);
  ASSERT_EQ(r.code, 0) << r.out;
  auto args = f.train(two, 40, 100, 56);
  args.push_back("--nproc");
  args.push_back("2");
  r = run_command(f.command(args), true);
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("rank 0 of 2"), std::string::npos) << r.out;

  // The weights after 40 SFT and 4 GRPO steps: equal up to float rounding (sums over two halves, which
  // 44 Adam steps amplify: 1.1e-4 at most when measured).
  const auto a = floats(one + "/model.safetensors"), b = floats(two + "/model.safetensors");
  ASSERT_FALSE(a.empty());
  ASSERT_EQ(a.size(), b.size());
  double worst = 0;
  for (const auto& [name, v] : a) {
    ASSERT_TRUE(b.count(name)) << name;
    for (size_t i = 0; i < v.size(); ++i) worst = std::max(worst, double(std::abs(v[i] - b.at(name)[i])));
  }
  EXPECT_LT(worst, 1e-3) << "largest weight difference between 1 and 2 ranks";
  // The sampled chains too: rank 0's share is the first rows of the single process's batch.
  for (const std::string step : {"step_00002.jsonl", "step_00004.jsonl"}) {
    const std::string single = read_text(one + "/completions/" + step),
                      ranked = read_text(two + "/completions/" + step);
    ASSERT_FALSE(ranked.empty()) << step;
    EXPECT_EQ(single.substr(0, ranked.size()), ranked) << step << ": rank 0's completions are not the first rows";
  }
  // metrics.jsonl: the same lines, the same figures up to rounding (the wall-clock ones aside; a
  // gradient norm differed by 2e-3 relative when measured, a sampled chain's reward would by far more).
  const auto ma = lriad::test::metrics_without_times(one + "/metrics.jsonl");
  const auto mb = lriad::test::metrics_without_times(two + "/metrics.jsonl");
  ASSERT_EQ(ma.size(), 44u);
  ASSERT_EQ(ma.size(), mb.size());
  // GRPO learned something in them (its gathered rewards and summed gradients were used), else the
  // comparison would say nothing about them.
  double grpo_grad = 0, reward_std = 0;
  for (const auto& m : ma)
    if (m["stage"] == "grpo") grpo_grad += m["grad_norm"].get<double>(), reward_std += m["reward_std"].get<double>();
  EXPECT_GT(grpo_grad, 0.0) << "no GRPO update had a gradient";
  EXPECT_GT(reward_std, 0.0) << "every GRPO reward tied";
  for (size_t i = 0; i < ma.size(); ++i) {
    ASSERT_EQ(ma[i].size(), mb[i].size()) << ma[i].dump() << "\n" << mb[i].dump();
    for (const auto& [key, value] : ma[i].items()) {
      ASSERT_TRUE(mb[i].contains(key)) << key;
      if (value.is_number())
        EXPECT_NEAR(value.get<double>(), mb[i][key].get<double>(), 1e-2 * std::max(1.0, std::abs(value.get<double>())))
            << "line " << i << " " << key;
      else
        EXPECT_EQ(value, mb[i][key]) << "line " << i << " " << key;
    }
  }
  // Rank 0 alone wrote the run: the same files as the single process's.
  std::set<std::string> files_one, files_two;
  for (const auto& e : fs::recursive_directory_iterator(one)) files_one.insert(fs::relative(e.path(), one).string());
  for (const auto& e : fs::recursive_directory_iterator(two)) files_two.insert(fs::relative(e.path(), two).string());
  EXPECT_EQ(files_one, files_two);
}

TEST(DataParallel, ADeadRankStopsTheOtherNamingItAndTheRunResumesOnOneProcess) {
  Fixture f;
  const std::string run = f.dir / "run";
  // Two ranks as a launcher starts them (torchrun's variables), a 10 s timeout, a checkpoint each step.
  const std::string port = std::to_string(21000 + int(getpid() % 11000));
  setenv("WORLD_SIZE", "2", 1);
  setenv("MASTER_ADDR", "127.0.0.1", 1);
  setenv("MASTER_PORT", port.c_str(), 1);
  setenv("LRIAD_DIST_TIMEOUT", "10", 1);
  setenv("RANK", "0", 1);
  const pid_t rank0 = lriad::test::spawn(bin(), f.train(run, 400, 1), f.dir / "rank0.log");
  setenv("RANK", "1", 1);
  const pid_t rank1 = lriad::test::spawn(bin(), f.train(run, 400, 1), f.dir / "rank1.log");
  for (const char* v : {"WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "LRIAD_DIST_TIMEOUT", "RANK"}) unsetenv(v);
  ASSERT_TRUE(lriad::test::wait_for_lines(rank0, run + "/metrics.jsonl", 3)) << read_text(f.dir / "rank0.log");
  kill(rank1, SIGKILL);
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(lriad::test::wait_exit(rank1), 128 + SIGKILL);
  const int code = lriad::test::wait_exit(rank0);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const std::string log = read_text(f.dir / "rank0.log");
  EXPECT_EQ(code, 1) << log;
  EXPECT_LT(seconds, 20.0) << "rank 0 must stop within the timeout (10 s)";
  EXPECT_NE(log.find("rank 1"), std::string::npos) << log;

  // The last checkpoint is whole: the run continues on one process to its end.
  const auto state = nlohmann::json::parse(read_text(run + "/trainer_state.json"));
  EXPECT_EQ(state["stage"], "sft");
  EXPECT_GE(state["step"].get<int>(), 2);
  const auto r = run_command(bin() + " --threads 1 train --resume --out " + run +
                                 " --set sft.steps=" + std::to_string(state["step"].get<int>() + 2),
                             true);
  ASSERT_EQ(r.code, 0) << r.out;
  const auto done = nlohmann::json::parse(read_text(run + "/trainer_state.json"));
  EXPECT_EQ(done["stage"], "done");
}

// Ctrl-C reaches rank 0 only (here: SIGINT to it alone): every rank still stops at the same step, rank 0
// writes the checkpoint, all exit 130 without being killed, and --resume on 2 ranks goes on from there.
TEST(DataParallel, CtrlCOnRankZeroStopsEveryRankAtOneStepAndTheRunResumes) {
  Fixture f;
  const std::string run = f.dir / "run";
  auto args = f.train(run, 400, 1000);
  args.push_back("--nproc");
  args.push_back("2");
  const pid_t pid = lriad::test::spawn(bin(), args, f.dir / "run.log");
  ASSERT_TRUE(lriad::test::wait_for_lines(pid, run + "/metrics.jsonl", 3)) << read_text(f.dir / "run.log");
  kill(pid, SIGINT);
  EXPECT_EQ(lriad::test::wait_exit(pid), 130) << read_text(f.dir / "run.log");
  const std::string log = read_text(f.dir / "run.log");
  EXPECT_EQ(log.find("exited with status"), std::string::npos) << "rank 1 stopped by itself: " << log;
  const auto state = nlohmann::json::parse(read_text(run + "/trainer_state.json"));
  ASSERT_EQ(state["stage"], "sft");
  const int step = state["step"].get<int>();
  EXPECT_LT(step, 400) << "the run was not stopped early";
  EXPECT_EQ(lriad::test::count_lines(run + "/metrics.jsonl"), step) << "one line a step, up to the checkpoint";
  const auto r = run_command(bin() + " --threads 1 train --resume --out " + run +
                                 " --nproc 2 --set sft.steps=" + std::to_string(step + 2) + " --set grpo.steps=1",
                             true);
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(nlohmann::json::parse(read_text(run + "/trainer_state.json"))["stage"], "done");
}
