// Measurements printed by `lriad bench`: figures, never pass/fail (timed tests do not exist).
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "lriad/io/config.h"

namespace lriad::eval {

struct GenerateBenchOptions {
  int prompts = 2;          // B
  int group = 8;            // G completions per prompt
  int max_new_tokens = 48;  // every row runs to the limit (eos is disabled) so runs compare
  int repeats = 3;          // timed runs per variant (after one warm-up run)
  std::vector<std::string> variants = {"cache+shared", "cache", "no-cache"};
};

struct GenerateBenchRow {
  std::string variant;
  double seconds = 0;       // median of the repeats
  double tokens_per_s = 0;  // generated tokens (B*G*max_new_tokens) / seconds
};

// Times generation of a freshly initialised policy built from `config` (vocabulary from the
// config, or 512 when it is 0) on random images. Variants: "cache+shared" (KV cache, prefix
// encoded once per prompt), "cache" (KV cache, prefix encoded per row), "no-cache".
std::vector<GenerateBenchRow> bench_generate(const RunConfig& config, const GenerateBenchOptions& options);
nlohmann::json to_json(const std::vector<GenerateBenchRow>& rows, const GenerateBenchOptions& options);

// Everything `lriad bench` measures, on random weights of `config` (issue "Performance").
struct BenchOptions {
  int prompts = 8;          // B
  int group = 8;            // G
  int max_new_tokens = 64;  // L
  int repeats = 3;          // timed runs per measurement (median), after one warm-up
  int gemm_size = 2048;     // n of the n x n x n product
  int eval_batch = 16;      // images per greedy batch
  int data_images = 24;     // normal images of the generated category for the data section
  std::vector<std::string> precisions = {"fp32", "bf16"};  // of the GRPO step
  std::string scratch;  // folder for the generated images ("" = a temporary folder, removed after)
  // gemm, generate, grpo, eval, data (every section by default)
  std::vector<std::string> sections = {"gemm", "generate", "grpo", "eval", "data"};
};

// A pretrained PaliGemma's GRPO step (`lriad bench paligemma`): the checkpoint folder loaded in
// `dtype`, LoRA adapters of `lora_rank` on the decoder's projections, G completions of max_new
// tokens at most (rows stop at EOS) sampled for one random image, then the step: log-
// probabilities, the KL to the base (adapters off), the loss, backward and Adam on the adapters.
struct PaliGemmaBenchOptions {
  std::string hf;  // the checkpoint folder
  std::string device = "cpu";
  std::string dtype = "bf16";  // fp32 | bf16
  int group = 4;
  int max_new = 32;
  int lora_rank = 8;
  bool recompute = true;  // activation recomputation per block
  int repeats = 2;        // timed steps (median), after one warm-up
};
// {load_s, parameters, adapter_parameters, sample_s (the group's sampling alone), step_s (the whole
// step), tokens_per_s (of the sampling), peak_rss_mib, peak_cuda_mib (null: not exposed by
// LibTorch's C++ API without CUDA's headers), and the options}.
nlohmann::json bench_paligemma(const PaliGemmaBenchOptions& options);

// One JSON object: runtime, and one key per section run, plus peak_rss_mib. Progress on stderr.
nlohmann::json run_bench(const RunConfig& config, const BenchOptions& options);
// The same figures as a few readable lines.
std::string format_bench(const nlohmann::json& bench);

}  // namespace lriad::eval
