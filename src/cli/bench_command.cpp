// `lriad bench`: speed figures (printed, never asserted).
#include <spdlog/spdlog.h>

#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "common.h"
#include "lriad/eval/bench.h"

namespace lriad::cli {
namespace {

struct GenerateCli {
  std::string config = "tiny";  // a shipped config's name (io::find_config) or a file
  std::vector<std::string> set;
  eval::GenerateBenchOptions bench;
  bool json = false;
};

struct BenchCli {
  std::string config = "tiny";  // a shipped config's name (io::find_config) or a file
  std::vector<std::string> set;
  std::string device;
  eval::BenchOptions bench;
  bool json = false;
};

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
  bench_cmd->callback([b, bench_cmd, &global] {
    if (!bench_cmd->get_subcommands().empty()) return;  // `bench generate` ran
    start_torch_runtime(global);
    std::vector<std::string> set = b->set;
    if (!b->device.empty()) set.push_back("device=" + b->device);
    const RunConfig config = load_config(b->config, set);
    const auto result = eval::run_bench(config, b->bench);
    std::cout << (b->json ? result.dump(2) + "\n" : eval::format_bench(result)) << std::flush;
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
