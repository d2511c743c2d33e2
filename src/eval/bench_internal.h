// Private parts of `lriad bench` (bench.cpp: the timers, generation and the report; bench_sections.cpp:
// the GEMM, GRPO, eval and data sections). Not installed.
#pragma once
#include <chrono>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "lriad/eval/bench.h"
#include "lriad/model/generate.h"

namespace lriad::eval::bench_detail {

// The bench's prompts are as long as lriad's: the question and the chain's opening with the normal
// reference's measurements ("... the largest deviation is a thin, long mark, at the upper right, 1.5
// times the normal level.") are 50-70 pieces of the 1024-piece tokenizer (70 the longest on the demo).
constexpr int kPromptTokens = 64;

double seconds_since(std::chrono::steady_clock::time_point t0);
void sync(const torch::Device& device);
double median(std::vector<double> v);
double peak_rss_mib();
double section_peak_rss_mib();
void reset_peak_rss();
model::TokenRows bench_prompts(int rows);

// The sections (bench_sections.cpp).
nlohmann::json bench_gemm(const torch::Device& device, int n, torch::ScalarType dtype);
nlohmann::json bench_grpo(RunConfig config, const BenchOptions& o, bool bf16, double ceiling_gflops);
nlohmann::json bench_eval(RunConfig config, const BenchOptions& o, double deviation_ms_per_image);
nlohmann::json bench_data(RunConfig config, const BenchOptions& o, double* deviation_ms_per_image);

}  // namespace lriad::eval::bench_detail
