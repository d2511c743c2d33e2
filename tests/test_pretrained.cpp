// Issue 24: a pretrained PaliGemma through lriad's commands. The tiny golden PaliGemma
// (tests/golden/paligemma_tiny, random weights) is imported with `lriad model import`, fine-tuned by
// `lriad train --init` (SFT then GRPO on LoRA adapters, the base frozen), and read by `eval`,
// `predict` and `model info`; an interrupted run resumes to the uninterrupted run's adapters.
#include <gtest/gtest.h>

#include <signal.h>

#include <filesystem>
#include <cstring>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "fixtures.h"
#include "lriad/io/safetensors.h"

using lriad::test::read_text;
using lriad::test::run_command;
using lriad::test::TempDir;

namespace fs = std::filesystem;

namespace {

std::string bin() { return LRIAD_BIN; }

// A two-category synthetic dataset and the golden PaliGemma imported as `base`. Its config allows
// 4096 positions instead of 256 (RoPE has no learned positions): the tiny tokenizer's 192 pieces
// spell lriad's prompts and chains in many tokens.
struct Fixture {
  TempDir dir;
  std::string tree = dir / "tree", hf = dir / "hf", base = dir / "base";
  Fixture() {
    auto r = run_command(bin() + " synth --out " + tree + " --only fabric,hex_nut --per-category 20 --size 64", true);
    EXPECT_EQ(r.code, 0) << r.out;
    fs::copy(std::string(LRIAD_SOURCE_DIR) + "/tests/golden/paligemma_tiny", hf);
    auto config = nlohmann::json::parse(read_text(hf + "/config.json"));
    config["text_config"]["max_position_embeddings"] = 4096;
    std::ofstream(hf + "/config.json") << config.dump(2);
    r = run_command(bin() + " model import --hf " + hf + " --out " + base, true);
    EXPECT_EQ(r.code, 0) << r.out;
  }
  // `lriad --threads 1 train --init base`: the evidence at 32 px, SFT then GRPO, a checkpoint each step.
  std::vector<std::string> train(const std::string& out, int sft, int grpo) const {
    std::vector<std::string> a = {
        "--threads", "1",      "train",  "--config", std::string(LRIAD_SOURCE_DIR) + "/configs/tiny.json",
        "--format",  "mvtec",  "--root", tree,       "--out",
        out,         "--init", base};
    const std::vector<std::string> sets = {"model.image_size=32",
                                           "model.reference_fine_size=64",
                                           "model.reference_bank=400",
                                           "sampling.max_new_tokens=12",
                                           "sft.steps=" + std::to_string(sft),
                                           "sft.batch_size=2",
                                           "sft.warmup_steps=1",
                                           "grpo.steps=" + std::to_string(grpo),
                                           "grpo.batch_size=2",
                                           "grpo.num_generations=2",
                                           "grpo.warmup_steps=1",
                                           "grpo.mask_truncated_completions=false",
                                           "train.eval_every=3",
                                           "train.val_size=4",
                                           "train.save_every=1",
                                           "train.log_completions_every=1",
                                           "pretrained.lora_rank=4"};
    lriad::test::add_sets(a, sets);
    return a;
  }
  std::string command(const std::vector<std::string>& args) const { return lriad::test::shell_command(bin(), args); }
};

// The adapters' B matrices (zero when fresh) of a weights file, as floats by name.
std::map<std::string, std::vector<float>> lora_b(const std::string& path) {
  const auto file = lriad::io::read_safetensors(path);
  std::map<std::string, std::vector<float>> out;
  for (const auto& [name, t] : file.tensors) {
    if (name.find("lora_B") == std::string::npos) continue;
    EXPECT_EQ(t.dtype, "F32") << name;
    std::vector<float> v(t.data.size() / sizeof(float));
    std::memcpy(v.data(), t.data.data(), t.data.size());
    out[name] = v;
  }
  return out;
}

bool any_nonzero(const std::map<std::string, std::vector<float>>& tensors) {
  for (const auto& [name, v] : tensors)
    for (float x : v)
      if (x != 0) return true;
  return false;
}

}  // namespace

TEST(Pretrained, TrainEvalPredictAndInfoOnAnImportedPaliGemma) {
  Fixture f;
  const std::string base_weights = read_text(f.base + "/model.safetensors");
  const std::string run = f.dir / "run";
  auto r = run_command(f.command(f.train(run, 2, 2)), true);
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("policy: PaliGemma"), std::string::npos) << r.out;

  // The base is read, never written; the run's config names it; its weight files hold adapters.
  EXPECT_TRUE(read_text(f.base + "/model.safetensors") == base_weights) << "the base weights changed";
  const auto config = nlohmann::json::parse(read_text(run + "/config.json"));
  EXPECT_EQ(config["pretrained"]["base"], fs::canonical(f.base).string());
  const auto header = lriad::io::read_safetensors_header(run + "/model.safetensors");
  EXPECT_EQ(header.metadata.at("format"), "lriad-lora");
  EXPECT_EQ(header.metadata.at("stage"), "grpo");
  for (const auto& [name, t] : header.tensors) EXPECT_NE(name.find(".lora_"), std::string::npos) << name;

  // SFT moved the adapters off their zero start; GRPO moved them again, against a KL to the base
  // (the adapters off) that is above 0 from its first step on.
  const auto sft = lora_b(run + "/sft.safetensors"), last = lora_b(run + "/model.safetensors");
  ASSERT_FALSE(sft.empty());
  EXPECT_TRUE(any_nonzero(sft)) << "SFT left the adapters at zero";
  EXPECT_TRUE(sft != last) << "GRPO did not change the adapters";
  int grpo_lines = 0;
  for (const auto& line : lriad::test::metrics_without_times(run + "/metrics.jsonl")) {
    if (line["stage"] != "grpo") continue;
    ++grpo_lines;
    EXPECT_GT(line["kl"].get<double>(), 0.0) << line.dump();
    EXPECT_TRUE(line.contains("rewards/focal/mean")) << line.dump();
  }
  EXPECT_EQ(grpo_lines, 2);
  EXPECT_TRUE(fs::exists(run + "/completions/step_00001.jsonl"));

  // eval: every test image, the evidence-only baseline beside the policy, chains opened with the
  // reference's measurements as training opened them.
  r = run_command(bin() + " eval --run " + run + " --out " + (f.dir / "eval"), true);
  ASSERT_EQ(r.code, 0) << r.out;
  const auto metrics = nlohmann::json::parse(read_text(f.dir / "eval/metrics.json"));
  EXPECT_TRUE(metrics.contains("baseline")) << metrics.dump();
  std::ifstream predictions(f.dir / "eval/predictions.jsonl");
  int n = 0;
  for (std::string l; std::getline(predictions, l); ++n) {
    const auto p = nlohmann::json::parse(l);
    EXPECT_EQ(p["completion"].get<std::string>().rfind("<think>", 0), 0u) << l;
    EXPECT_GE(p["score"].get<double>(), 0.0);
    EXPECT_LE(p["score"].get<double>(), 1.0);
  }
  int images = 0;
  for (const auto& e : fs::recursive_directory_iterator(f.tree))
    images += e.path().extension() == ".png" && e.path().parent_path().parent_path().filename() == "test";
  EXPECT_EQ(n, images) << "every test image";
  EXPECT_GT(images, 0);

  // predict on the run and on the imported run itself; model info of both.
  const std::string image = f.tree + "/fabric/test/good/000.png";
  r = run_command(bin() + " predict --run " + run + " " + image, true);
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("verdict:"), std::string::npos) << r.out;
  r = run_command(bin() + " predict --run " + f.base + " --category fabric " + image, true);
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("verdict:"), std::string::npos) << r.out;
  r = run_command(bin() + " model info --run " + run, true);
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("lriad-lora"), std::string::npos) << r.out;
  r = run_command(bin() + " model info --run " + f.base, true);
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("language_model"), std::string::npos) << r.out;

  // export: the adapters merged into the base's projections, a Hugging Face folder lriad imports again.
  const std::string exported = f.dir / "exported";
  r = run_command(bin() + " model export --run " + run + " --out " + exported, true);
  ASSERT_EQ(r.code, 0) << r.out;
  const auto merged = lriad::io::read_safetensors(exported + "/model.safetensors");
  const auto original = lriad::io::read_safetensors(f.base + "/model.safetensors");
  EXPECT_EQ(merged.metadata.at("format"), "pt");
  ASSERT_EQ(merged.tensors.size(), original.tensors.size());
  int changed = 0, kept = 0;
  for (const auto& [name, t] : original.tensors) {
    ASSERT_TRUE(merged.tensors.count(name)) << name;
    const bool same = merged.tensors.at(name).data == t.data;
    const bool adapted =
        name.find("language_model") != std::string::npos && name.find("_proj.weight") != std::string::npos;
    if (adapted)
      changed += !same;
    else
      kept += same;
    if (!adapted) EXPECT_TRUE(same) << name << " is not adapted and must not change";
  }
  EXPECT_EQ(changed, 14) << "every adapted projection of the 2 decoder layers";
  EXPECT_GT(kept, 0);
  EXPECT_TRUE(fs::exists(exported + "/config.json") && fs::exists(exported + "/tokenizer.model"));
  r = run_command(bin() + " model import --hf " + exported + " --out " + (f.dir / "reimported"), true);
  EXPECT_EQ(r.code, 0) << r.out;
}

TEST(Pretrained, ABaseThatIsNoImportedRunIsRefusedNamingIt) {
  TempDir dir;
  const auto r = run_command(
      bin() + " train --config tiny --out " + (dir / "run") + " --set pretrained.base=" + (dir / "nowhere"), true);
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find(dir / "nowhere"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("lriad model import"), std::string::npos) << r.out;
  EXPECT_FALSE(fs::exists(dir / "run")) << "nothing is written before the base is checked";
}

TEST(Pretrained, CtrlCThenResumeEqualsAnUninterruptedRun) {
  Fixture f;
  const std::string a = f.dir / "a", b = f.dir / "b";
  ASSERT_EQ(lriad::test::wait_exit(lriad::test::spawn(bin(), f.train(a, 2, 8), f.dir / "a.log")), 0)
      << read_text(f.dir / "a.log");
  // B: the same run, Ctrl-C once GRPO has logged a step.
  const pid_t pid = lriad::test::spawn(bin(), f.train(b, 2, 8), f.dir / "b.log");
  ASSERT_TRUE(lriad::test::wait_for_lines(pid, b + "/metrics.jsonl", 3)) << read_text(f.dir / "b.log");
  kill(pid, SIGINT);
  ASSERT_EQ(lriad::test::wait_exit(pid), 130) << read_text(f.dir / "b.log");
  const auto state = nlohmann::json::parse(read_text(b + "/trainer_state.json"));
  EXPECT_EQ(state["stage"], "grpo");
  EXPECT_LT(state["step"].get<int>(), 8) << "the run was not stopped early";
  ASSERT_EQ(lriad::test::wait_exit(
                lriad::test::spawn(bin(), {"--threads", "1", "train", "--resume", "--out", b}, f.dir / "b2.log")),
            0)
      << read_text(f.dir / "b2.log");
  EXPECT_TRUE(read_text(a + "/model.safetensors") == read_text(b + "/model.safetensors"))
      << "the resumed adapters differ from the uninterrupted run's";
  EXPECT_EQ(lriad::test::metrics_without_times(a + "/metrics.jsonl"),
            lriad::test::metrics_without_times(b + "/metrics.jsonl"));
}
