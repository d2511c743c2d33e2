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
