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
  std::string config = "configs/tiny.json";
  std::vector<std::string> set;
  eval::GenerateBenchOptions bench;
  bool json = false;
};

}  // namespace

void add_bench_command(CLI::App& app, const GlobalOptions& global) {
  auto* bench_cmd = app.add_subcommand("bench", "Measure speed (figures only)");
  bench_cmd->require_subcommand(1);
  auto g = std::make_shared<GenerateCli>();
  auto* gen = bench_cmd->add_subcommand("generate", "Tokens/s of sampling with and without the KV cache");
  gen->add_option("--config", g->config, "Config file")->capture_default_str();
  gen->add_option("--set", g->set, "Override a config value (repeatable)");
  gen->add_option("--prompts", g->bench.prompts, "Prompts per batch (B)")->capture_default_str()->check(CLI::PositiveNumber);
  gen->add_option("--group", g->bench.group, "Completions per prompt (G)")->capture_default_str()->check(CLI::PositiveNumber);
  gen->add_option("--max-new-tokens", g->bench.max_new_tokens, "Tokens generated per row")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  gen->add_option("--repeats", g->bench.repeats, "Timed runs per variant")->capture_default_str()->check(CLI::PositiveNumber);
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
    for (const auto& r : rows) std::printf("  %-13s %8.3f s  %9.1f tokens/s\n", r.variant.c_str(), r.seconds, r.tokens_per_s);
  });
}

}  // namespace lriad::cli
