// Interruption (issue "Reliability"): Ctrl-C during `lriad train` writes a checkpoint and exits
// 130, and --resume reaches the same weights and metrics.jsonl lines as a run never stopped
// (bitwise, on CPU with --threads 1); SIGKILL at any moment, a second Ctrl-C included, leaves a
// checkpoint that resumes to the same result.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "fixtures.h"

using lriad::test::count_lines;
using lriad::test::metrics_without_times;
using lriad::test::read_text;
using lriad::test::run_command;
using lriad::test::TempDir;
using lriad::test::wait_exit;
using lriad::test::wait_for_lines;

namespace {

std::string bin() { return LRIAD_BIN; }

pid_t spawn(const std::vector<std::string>& args, const std::string& log) {
  return lriad::test::spawn(bin(), args, log);
}

struct Fixture {
  TempDir dir;
  std::string tree = dir / "tree";
  Fixture() {
    const auto r = run_command(bin() + " synth --out " + tree + " --only screw --per-category 16 --size 64", true);
    EXPECT_EQ(r.code, 0) << r.out;
  }
  // `lriad --threads 1 train` on the tree with a tiny model, sft 6 steps then grpo 4.
  std::vector<std::string> train(const std::string& out, int save_every, const std::string& tokenizer = "") const {
    std::vector<std::string> a = {
        "--threads", "1",     "train",  "--config", std::string(LRIAD_SOURCE_DIR) + "/configs/tiny.json",
        "--format",  "synth", "--root", tree,       "--out",
        out};
    for (const char* s : {"model.dim=32", "model.layers=1", "model.heads=4", "model.kv_heads=2", "model.vision_dim=32",
                          "model.vision_layers=1", "model.vision_heads=2", "model.reference_bank=400",
                          "model.max_seq_len=320", "sampling.max_new_tokens=12", "sft.steps=6", "sft.batch_size=4",
                          "vision_warmup.steps=0", "grpo.steps=4", "grpo.batch_size=2", "grpo.num_generations=3",
                          "train.eval_every=3", "train.val_size=8", "train.log_completions_every=100"}) {
      a.push_back("--set");
      a.push_back(s);
    }
    a.push_back("--set");
    a.push_back("train.save_every=" + std::to_string(save_every));
    if (!tokenizer.empty()) {
      a.push_back("--tokenizer");
      a.push_back(tokenizer);
    }
    return a;
  }
  std::vector<std::string> resume(const std::string& out) const {
    return {"--threads", "1", "train", "--resume", "--out", out};
  }
};

}  // namespace

TEST(Interrupt, CtrlCThenResumeEqualsAnUninterruptedRun) {
  Fixture f;
  const std::string a = f.dir / "a", b = f.dir / "b";
  ASSERT_EQ(wait_exit(spawn(f.train(a, 100), f.dir / "a.log")), 0) << read_text(f.dir / "a.log");
  // B: the same run, Ctrl-C after SFT step 2 (checkpoints only at the end: the stop writes one).
  const pid_t pid = spawn(f.train(b, 100, a + "/tokenizer.model"), f.dir / "b.log");
  ASSERT_TRUE(wait_for_lines(pid, b + "/metrics.jsonl", 2)) << read_text(f.dir / "b.log");
  kill(pid, SIGINT);
  EXPECT_EQ(wait_exit(pid), 130) << read_text(f.dir / "b.log");
  const std::string log = read_text(f.dir / "b.log");
  EXPECT_NE(log.find("lriad train --resume --out " + b), std::string::npos) << log;
  const auto state = nlohmann::json::parse(read_text(b + "/trainer_state.json"));
  EXPECT_EQ(state["stage"], "sft");
  EXPECT_GE(state["step"].get<int>(), 2);
  EXPECT_LT(state["step"].get<int>(), 6) << "the run was not stopped early";
  EXPECT_TRUE(std::filesystem::exists(b + "/" + state["checkpoint"].get<std::string>() + "/optimizer.pt"));
  ASSERT_EQ(wait_exit(spawn(f.resume(b), f.dir / "b2.log")), 0) << read_text(f.dir / "b2.log");
  EXPECT_TRUE(read_text(a + "/model.safetensors") == read_text(b + "/model.safetensors")) << "weights differ";
  EXPECT_EQ(metrics_without_times(a + "/metrics.jsonl"), metrics_without_times(b + "/metrics.jsonl"));
  EXPECT_EQ(read_text(a + "/validation.jsonl"), read_text(b + "/validation.jsonl"));
  // precision "auto" was decided when B started (trainer_state.json) and the resumed process kept it.
  const auto resumed = nlohmann::json::parse(read_text(b + "/trainer_state.json"));
  EXPECT_EQ(resumed["precision"]["used"],
            nlohmann::json::parse(read_text(a + "/trainer_state.json"))["precision"]["used"]);
  EXPECT_NE(read_text(f.dir / "b2.log").find("kept from the run's start"), std::string::npos)
      << read_text(f.dir / "b2.log");
}

TEST(Interrupt, KillAtAnyMomentLeavesALoadableCheckpoint) {
  Fixture f;
  const std::string a = f.dir / "a", c = f.dir / "c";
  ASSERT_EQ(wait_exit(spawn(f.train(a, 1), f.dir / "a.log")), 0) << read_text(f.dir / "a.log");
  // A checkpoint every step, and SIGKILL at staggered moments (some land inside a save).
  pid_t pid = spawn(f.train(c, 1, a + "/tokenizer.model"), f.dir / "c.log");
  int seen = 0;
  for (int round = 0; round < 4; ++round) {
    if (!wait_for_lines(pid, c + "/metrics.jsonl", seen + 1)) break;  // finished already
    std::this_thread::sleep_for(std::chrono::milliseconds(37 * round));
    kill(pid, SIGKILL);
    wait_exit(pid);
    seen = count_lines(c + "/metrics.jsonl");
    const auto state = nlohmann::json::parse(read_text(c + "/trainer_state.json"));  // never half-written
    const std::string ckpt = state.value("checkpoint", "");
    if (!ckpt.empty()) {
      EXPECT_TRUE(std::filesystem::exists(c + "/" + ckpt + "/model.safetensors")) << ckpt;
      EXPECT_TRUE(std::filesystem::exists(c + "/" + ckpt + "/optimizer.pt")) << ckpt;
    }
    pid = spawn(f.resume(c), f.dir / "c.log");
  }
  // Ctrl-C twice: the second exits at once; the checkpoint is still good.
  if (wait_for_lines(pid, c + "/metrics.jsonl", seen + 1)) {
    kill(pid, SIGINT);
    kill(pid, SIGINT);
  }
  const int code = wait_exit(pid);
  EXPECT_TRUE(code == 130 || code == 0) << code;  // 0 if it had finished first
  ASSERT_EQ(wait_exit(spawn(f.resume(c), f.dir / "c.log")), 0) << read_text(f.dir / "c.log");
  EXPECT_TRUE(read_text(a + "/model.safetensors") == read_text(c + "/model.safetensors")) << "weights differ";
  EXPECT_EQ(metrics_without_times(a + "/metrics.jsonl"), metrics_without_times(c + "/metrics.jsonl"));
}
