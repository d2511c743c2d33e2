// `lriad bench`: speed figures (printed, never asserted).
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <thread>

#include <unistd.h>

#include "common.h"
#include "lriad/demo/synth.h"
#include "lriad/eval/bench.h"
#include "lriad/io/error.h"

namespace lriad::cli {
namespace {

struct GenerateCli {
  std::string config = "tiny";  // a shipped config's name (io::find_config) or a file
  std::vector<std::string> set;
  eval::GenerateBenchOptions bench;
  bool json = false;
};

struct PaliGemmaCli {
  eval::PaliGemmaBenchOptions bench;
  bool json = false;
};

struct BenchCli {
  std::string config = "tiny";  // a shipped config's name (io::find_config) or a file
  std::vector<std::string> set;
  std::string device;
  eval::BenchOptions bench;
  bool json = false;
  int nproc = 1;
  int steps = 12;
};

// Median of a stage's step times in a run's metrics.jsonl, its first two steps left out (warm-up).
double median_step(const std::string& metrics, const std::string& stage) {
  std::ifstream in(metrics);
  std::vector<double> t;
  int seen = 0;
  for (std::string line; std::getline(in, line);) {
    const auto j = nlohmann::json::parse(line);
    if (j.value("stage", "") == stage && j.contains("step_time") && ++seen > 2) t.push_back(j["step_time"]);
  }
  if (t.empty()) return -1;
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

// `lriad bench --nproc N`: the data-parallel scaling of `lriad train` on this machine. The same short
// run (a generated two-category set, `steps` SFT and GRPO steps of the config at its batch sizes)
// on one process with every thread, then on N ranks (`train --nproc N`) sharing them; per stage the
// median step time of each, the speed-up and the efficiency (speed-up / N).
nlohmann::json bench_scaling(const BenchCli& b, const GlobalOptions& global) {
  namespace fs = std::filesystem;
  const std::string dir =
      b.bench.scratch.empty()
          ? (fs::temp_directory_path() / ("lriad-bench-scaling-" + std::to_string(getpid()))).string()
          : b.bench.scratch;
  demo::SynthOptions synth;
  synth.out = dir + "/data";
  synth.categories = 2;
  synth.per_category = 40;
  synth.size = 64;
  synth.overwrite = true;
  demo::generate_synthetic(synth);
  const int cores = global.threads > 0 ? global.threads : int(std::max(1u, std::thread::hardware_concurrency()));
  std::string common = " train --config '" + b.config + "' --format mvtec --root '" + synth.out + "' --overwrite" +
                       " --set sft.steps=" + std::to_string(b.steps) + " --set grpo.steps=" + std::to_string(b.steps) +
                       " --set train.eval_every=100000 --set train.save_every=100000 --set train.val_size=4" +
                       " --set train.log_completions_every=100000";
  for (const auto& s : b.set) common += " --set '" + s + "'";
  if (!b.device.empty()) common += " --device " + b.device;
  const std::string self = fs::read_symlink("/proc/self/exe").string();  // this lriad (the shell's would be sh)
  nlohmann::json out = {{"config", b.config}, {"nproc", b.nproc}, {"threads", cores}, {"steps", b.steps}};
  for (const int n : {1, b.nproc}) {
    const std::string run = dir + "/run" + std::to_string(n), log = dir + "/run" + std::to_string(n) + ".log";
    const std::string cmd = "'" + self + "' --threads " + std::to_string(std::max(1, cores / n)) + common + " --out '" +
                            run + "'" + (n > 1 ? " --nproc " + std::to_string(n) : "") + " > '" + log + "' 2>&1";
    spdlog::info("scaling: {} rank{} ({} thread{} each)...", n, n > 1 ? "s" : "", std::max(1, cores / n),
                 cores / n > 1 ? "s" : "");
    if (std::system(cmd.c_str()) != 0)
      throw Error("bench --nproc: the training run on " + std::to_string(n) + " rank(s) failed; see " + log,
                  "run `lriad train --nproc N` by hand to see why");
    for (const std::string stage : {"sft", "grpo"})
      out[stage]["step_s"][std::to_string(n)] = median_step(run + "/metrics.jsonl", stage);
  }
  for (const std::string stage : {"sft", "grpo"}) {
    const double t1 = out[stage]["step_s"]["1"], tn = out[stage]["step_s"][std::to_string(b.nproc)];
    out[stage]["speedup"] = t1 > 0 && tn > 0 ? t1 / tn : -1.0;
    out[stage]["efficiency"] = t1 > 0 && tn > 0 ? t1 / tn / b.nproc : -1.0;
  }
  if (b.bench.scratch.empty()) fs::remove_all(dir);
  return out;
}

}  // namespace

void add_bench_command(CLI::App& app, const GlobalOptions& global) {
  auto* bench_cmd = app.add_subcommand("bench",
                                       "Measure speed and memory (figures only): GEMM ceiling, generation, "
                                       "GRPO step, evaluation, data loading");
  bench_cmd->require_subcommand(0, 1);
  auto b = std::make_shared<BenchCli>();
  bench_cmd->add_option("--config", b->config, "Config file, or a shipped config's name: tiny, small, base")
      ->capture_default_str();
  bench_cmd->add_option("--set", b->set, "Override a config value (repeatable)");
  bench_cmd->add_option("--device", b->device, "cpu or cuda[:N] (default: the config's)");
  bench_cmd->add_option("--prompts", b->bench.prompts, "Prompts per GRPO batch (B)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  bench_cmd->add_option("--group", b->bench.group, "Completions per prompt (G)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  bench_cmd->add_option("--max-new-tokens", b->bench.max_new_tokens, "Completion length (L)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  bench_cmd->add_option("--repeats", b->bench.repeats, "Timed runs per measurement (median)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  bench_cmd->add_option("--gemm-size", b->bench.gemm_size, "n of the GEMM ceiling's n x n product")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  bench_cmd->add_option("--sections", b->bench.sections, "gemm,generate,grpo,eval,data (default: all)")->delimiter(',');
  bench_cmd->add_option("--precision", b->bench.precisions, "Precisions of the GRPO step: fp32,bf16 (default: both)")
      ->delimiter(',');
  bench_cmd->add_option("--scratch", b->bench.scratch,
                        "Folder for the data section's generated images (default: temporary)");
  bench_cmd->add_flag("--json", b->json, "Print one JSON object");
  bench_cmd
      ->add_option("--nproc", b->nproc,
                   "Measure data-parallel scaling instead: a short `lriad train` on 1, then N ranks (step times, "
                   "speed-up, efficiency)")
      ->check(CLI::Range(2, 64));
  bench_cmd->add_option("--steps", b->steps, "SFT and GRPO steps of each --nproc run")
      ->capture_default_str()
      ->check(CLI::Range(4, 100000));
  bench_cmd->callback([b, bench_cmd, &global] {
    if (!bench_cmd->get_subcommands().empty()) return;  // `bench generate` ran
    if (b->nproc > 1) {
      const auto j = bench_scaling(*b, global);
      if (b->json) {
        std::cout << j.dump(2) << "\n";
        return;
      }
      std::printf("config %s, %d threads, %d steps a stage: median step time on 1 rank and on %d\n", b->config.c_str(),
                  j["threads"].get<int>(), b->steps, b->nproc);
      for (const std::string stage : {"sft", "grpo"})
        std::printf("  %-5s %8.3f s  %8.3f s  speed-up %.2fx  efficiency %.0f%%\n", stage.c_str(),
                    j[stage]["step_s"]["1"].get<double>(), j[stage]["step_s"][std::to_string(b->nproc)].get<double>(),
                    j[stage]["speedup"].get<double>(), 100 * j[stage]["efficiency"].get<double>());
      return;
    }
    start_torch_runtime(global);
    std::vector<std::string> set = b->set;
    if (!b->device.empty()) set.push_back("device=" + b->device);
    const RunConfig config = load_config(b->config, set);
    const auto result = eval::run_bench(config, b->bench);
    std::cout << (b->json ? result.dump(2) + "\n" : eval::format_bench(result)) << std::flush;
  });
  auto pg = std::make_shared<PaliGemmaCli>();
  auto* pal = bench_cmd->add_subcommand("paligemma", "A pretrained PaliGemma's GRPO step with LoRA: time and memory");
  pal->add_option("--hf", pg->bench.hf, "Checkpoint folder: config.json, *.safetensors")->required();
  pal->add_option("--device", pg->bench.device, "cpu or cuda")->capture_default_str();
  pal->add_option("--dtype", pg->bench.dtype, "Weights in fp32 or bf16")->capture_default_str();
  pal->add_option("--group", pg->bench.group, "Completions per prompt (G)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  pal->add_option("--max-new", pg->bench.max_new, "Tokens per completion at most")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  pal->add_option("--lora-rank", pg->bench.lora_rank, "LoRA rank")->capture_default_str()->check(CLI::PositiveNumber);
  pal->add_option("--recompute", pg->bench.recompute, "Recompute each block's activations in backward")
      ->capture_default_str();
  pal->add_option("--repeats", pg->bench.repeats, "Timed steps (median), after one warm-up")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  pal->add_flag("--json", pg->json, "Print one JSON object");
  pal->callback([pg, &global] {
    start_torch_runtime(global);
    const auto j = eval::bench_paligemma(pg->bench);
    if (pg->json) {
      std::cout << j.dump(2) << "\n";
      return;
    }
    std::printf("%s on %s (%s), G=%d, %d new tokens at most, LoRA rank %d, recompute %s\n", pg->bench.hf.c_str(),
                pg->bench.device.c_str(), pg->bench.dtype.c_str(), pg->bench.group, pg->bench.max_new,
                pg->bench.lora_rank, pg->bench.recompute ? "on" : "off");
    std::printf("  load %.2f s, %lld parameters, %lld in the adapters\n", j["load_s"].get<double>(),
                (long long)j["parameters"].get<int64_t>(), (long long)j["adapter_parameters"].get<int64_t>());
    std::printf("  sampling the group %.3f s (%.1f tokens/s); the whole GRPO step %.3f s\n",
                j["sample_s"].get<double>(), j["tokens_per_s"].get<double>(), j["step_s"].get<double>());
    std::printf("  peak resident memory %.0f MiB\n", j["peak_rss_mib"].get<double>());
  });

  auto g = std::make_shared<GenerateCli>();
  auto* gen = bench_cmd->add_subcommand("generate", "Tokens/s of sampling with and without the KV cache");
  gen->add_option("--config", g->config, "Config file, or a shipped config's name: tiny, small, base")
      ->capture_default_str();
  gen->add_option("--set", g->set, "Override a config value (repeatable)");
  gen->add_option("--prompts", g->bench.prompts, "Prompts per batch (B)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  gen->add_option("--group", g->bench.group, "Completions per prompt (G)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  gen->add_option("--max-new-tokens", g->bench.max_new_tokens, "Tokens generated per row")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  gen->add_option("--repeats", g->bench.repeats, "Timed runs per variant")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  gen->add_option("--variants", g->bench.variants, "cache+shared, cache, no-cache")->delimiter(',');
  gen->add_flag("--json", g->json, "Print one JSON object");
  gen->callback([g, &global] {
    start_torch_runtime(global);
    const RunConfig config = load_config(g->config, g->set);
    const auto rows = eval::bench_generate(config, g->bench);
    if (g->json) {
      std::cout << eval::to_json(rows, g->bench).dump(2) << "\n";
      return;
    }
    std::printf("config %s on %s, B=%d G=%d, %d new tokens per row, median of %d\n", config.name.c_str(),
                config.device.c_str(), g->bench.prompts, g->bench.group, g->bench.max_new_tokens, g->bench.repeats);
    for (const auto& r : rows)
      std::printf("  %-13s %8.3f s  %9.1f tokens/s\n", r.variant.c_str(), r.seconds, r.tokens_per_s);
  });
}

}  // namespace lriad::cli
