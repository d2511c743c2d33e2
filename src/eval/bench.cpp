#include "lriad/eval/bench.h"

#include <ATen/CPUGeneratorImpl.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>

#include "lriad/anomaly/anomaly.h"
#include "lriad/data/image_io.h"
#include "lriad/data/image_tensor.h"
#include "lriad/reference/reference.h"
#include "lriad/demo/synth.h"
#include "lriad/io/runtime.h"
#include "lriad/model/flops.h"
#include "lriad/train/grpo.h"
#include "lriad/train/prefetch.h"
#include "lriad/train/source.h"

#include "lriad/io/error.h"
#include "lriad/io/fs.h"
#include <torch/cuda.h>

#include "lriad/model/generate.h"
#include "lriad/model/policy_input.h"
#include "lriad/train/input_maker.h"
#include "lriad/model/precision.h"
#include "bench_internal.h"

namespace lriad::eval {
namespace bench_detail {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void sync(const torch::Device& device) {
  if (device.is_cuda()) torch::cuda::synchronize();
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

double peak_rss_mib() {
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  return double(ru.ru_maxrss) / 1024.0;  // KiB on Linux
}

// The peak resident memory since the last reset_peak_rss (VmHWM of /proc/self/status), MiB; the
// process's peak where that is not readable.
double section_peak_rss_mib() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;  // "VmHWM:  123456 kB"
  return peak_rss_mib();
}

// Ends a bench section: the memory it freed goes back to the system (glibc keeps freed blocks for
// reuse, so one process running every section held each section's leftovers: 2.4 GiB against at
// most 1.64 GiB for any section alone), and the peak counter restarts (Linux >= 4.0:
// clear_refs 5), so each section reports its own peak.
void reset_peak_rss() {
#if defined(__GLIBC__)
  malloc_trim(0);
#endif
  std::ofstream("/proc/self/clear_refs") << "5";
}

model::TokenRows bench_prompts(int rows) {
  model::TokenRows prompts;
  for (int b = 0; b < rows; ++b) {
    std::vector<int64_t> row;
    for (int t = 0; t < kPromptTokens; ++t) row.push_back(10 + (t * 7 + b) % 200);
    prompts.push_back(row);
  }
  return prompts;
}

}  // namespace bench_detail

using namespace bench_detail;

std::vector<GenerateBenchRow> bench_generate(const RunConfig& config_in, const GenerateBenchOptions& o) {
  RunConfig config = config_in;
  if (config.model.vocab_size == 0) config.model.vocab_size = 512;
  config.validate();
  const torch::Device device(config.device);
  auto policy = model::make_policy(config.model, config.seed);
  policy->to(device);
  policy->eval();
  const int64_t s = config.model.image_size;
  const torch::Tensor images =
      torch::rand({o.prompts, int64_t(config.model.image_channels()), s, s}).to(device);  // (B,C,S,S)
  const model::TokenRows prompts = bench_prompts(o.prompts);
  for (const auto& variant : o.variants)
    if (variant != "no-cache" && variant != "cache" && variant != "cache+shared")
      throw Error("unknown generation bench variant " + variant, "use cache+shared, cache or no-cache");
  auto run_once = [&](const std::string& variant, uint64_t seed) {
    model::GenerateOptions g;
    g.group = o.group;
    g.max_new_tokens = o.max_new_tokens;
    g.eos_id = -1;  // never stops early: every variant generates the same number of tokens
    g.use_cache = variant != "no-cache";
    g.share_prefix = variant == "cache+shared";
    g.seed = seed;
    model::AutocastGuard autocast(device, model::use_bf16(config));
    const auto t0 = std::chrono::steady_clock::now();
    model::generate(policy, images, prompts, g);
    sync(device);
    return seconds_since(t0);
  };
  // The cached variants take turns within each repeat, so that a slow spell of a shared machine
  // falls on both and their ratio holds; run 0 warms up. The no-cache path recomputes every prefix
  // at every token (minutes for a GRPO batch on a CPU): one run, after the others.
  std::map<std::string, std::vector<double>> times;
  for (int r = 0; r <= o.repeats; ++r)
    for (const auto& variant : o.variants) {
      if (variant == "no-cache") continue;
      const double dt = run_once(variant, uint64_t(r));
      if (r > 0) times[variant].push_back(dt);
      spdlog::debug("bench: {} run {}: {:.2f} s", variant, r, dt);
    }
  for (const auto& variant : o.variants)
    if (variant == "no-cache") times[variant].push_back(run_once(variant, uint64_t(o.repeats)));
  std::vector<GenerateBenchRow> rows;
  for (const auto& variant : o.variants) {
    GenerateBenchRow row;
    row.variant = variant;
    row.seconds = median(times[variant]);
    row.tokens_per_s = double(o.prompts) * o.group * o.max_new_tokens / row.seconds;
    rows.push_back(row);
  }
  return rows;
}

nlohmann::json to_json(const std::vector<GenerateBenchRow>& rows, const GenerateBenchOptions& o) {
  nlohmann::json j;
  j["prompts"] = o.prompts;
  j["group"] = o.group;
  j["max_new_tokens"] = o.max_new_tokens;
  j["repeats"] = o.repeats;
  for (const auto& r : rows)
    j["results"].push_back({{"variant", r.variant}, {"seconds", r.seconds}, {"tokens_per_s", r.tokens_per_s}});
  return j;
}

nlohmann::json run_bench(const RunConfig& config_in, const BenchOptions& o) {
  RunConfig config = config_in;
  if (config.model.vocab_size == 0) config.model.vocab_size = 512;
  config.validate();
  const torch::Device device(config.device);
  auto want = [&](const std::string& s) {
    return std::find(o.sections.begin(), o.sections.end(), s) != o.sections.end();
  };
  for (const auto& s : o.sections)
    if (s != "gemm" && s != "generate" && s != "grpo" && s != "eval" && s != "data")
      throw Error("unknown bench section " + s, "use gemm, generate, grpo, eval or data");
  nlohmann::json j;
  j["config"] = config.name;
  j["device"] = config.device;
  j["runtime"] = io::describe(io::current_runtime());
  j["threads"] = torch::get_num_threads();
  j["B"] = o.prompts;
  j["G"] = o.group;
  j["L"] = o.max_new_tokens;
  double ceiling32 = 0, ceiling16 = 0;
  auto& sections = j["peak_rss_mib_by_section"];
  double peak = 0;  // the process's: the largest section's
  auto section_done = [&](const std::string& name) {
    sections[name] = section_peak_rss_mib();
    peak = std::max(peak, sections[name].get<double>());
    reset_peak_rss();
  };
  reset_peak_rss();
  if (want("gemm") || want("grpo")) {
    spdlog::info("bench: GEMM ceiling");
    const auto g32 = bench_gemm(device, o.gemm_size, torch::kFloat32);
    const auto g16 = bench_gemm(device, o.gemm_size, torch::kBFloat16);
    ceiling32 = g32["gflops"].get<double>();
    ceiling16 = g16["gflops"].get<double>();
    j["gemm"] = {{"fp32", g32}, {"bf16", g16}};
    // What precision "auto" picks for this device (the probe lriad runs at start-up) and why.
    RunConfig automatic = config;
    automatic.precision = "auto";
    const auto choice = model::choose_precision(automatic);
    j["precision_auto"] = {
        {"bf16", choice.bf16}, {"reason", choice.reason}, {"cpu_bf16", io::current_runtime().cpu_bf16}};
    section_done("gemm");
  }
  if (want("generate")) {
    spdlog::info("bench: generation (B={} G={} L={})", o.prompts, o.group, o.max_new_tokens);
    GenerateBenchOptions go;
    go.prompts = o.prompts;
    go.group = o.group;
    go.max_new_tokens = o.max_new_tokens;
    go.repeats = o.repeats;
    const auto rows = bench_generate(config, go);
    auto& g = j["generate"];
    for (const auto& r : rows) g[r.variant] = {{"seconds", r.seconds}, {"tokens_per_s", r.tokens_per_s}};
    if (g.contains("cache+shared") && g.contains("no-cache"))
      g["shared_over_no_cache"] =
          g["cache+shared"]["tokens_per_s"].get<double>() / g["no-cache"]["tokens_per_s"].get<double>();
    if (g.contains("cache+shared") && g.contains("cache"))
      g["shared_over_cache"] =
          g["cache+shared"]["tokens_per_s"].get<double>() / g["cache"]["tokens_per_s"].get<double>();
    section_done("generate");
  }
  if (want("grpo")) {
    for (const auto& p : o.precisions) {
      if (p != "fp32" && p != "bf16") throw Error("unknown precision " + p, "use fp32 or bf16");
      const bool bf16 = p == "bf16";
      spdlog::info("bench: GRPO step ({})", bf16 ? "bf16" : "fp32");
      j["grpo"][bf16 ? "bf16" : "fp32"] = bench_grpo(config, o, bf16, bf16 ? ceiling16 : ceiling32);
      section_done("grpo_" + p);
    }
  }
  double deviation_ms = 0;
  if (want("data")) {
    spdlog::info("bench: data loading");
    j["data"] = bench_data(config, o, &deviation_ms);
    section_done("data");
  }
  if (want("eval")) {
    spdlog::info("bench: evaluation");
    j["eval"] = bench_eval(config, o, deviation_ms);
    if (!want("data") && config.model.reference == "knn")
      j["eval"]["note"] = "deviation maps not timed (run the data section)";
    section_done("eval");
  }
  j["peak_rss_mib"] = std::max(peak, section_peak_rss_mib());
  if (device.is_cuda()) j["peak_cuda_mib"] = nullptr;  // not exposed by LibTorch's C++ API without CUDA headers
  return j;
}

std::string format_bench(const nlohmann::json& j) {
  std::string out;
  auto line = [&](const std::string& s) { out += s + "\n"; };
  auto num = [](const nlohmann::json& v, int prec = 1) {
    if (!v.is_number()) return std::string("-");
    char b[64];
    std::snprintf(b, sizeof(b), "%.*f", prec, v.get<double>());
    return std::string(b);
  };
  line("config " + j.value("config", "") + " on " + j.value("device", "") + ", " +
       std::to_string(j.value("threads", 0)) + " threads; B=" + std::to_string(j.value("B", 0)) +
       " G=" + std::to_string(j.value("G", 0)) + " L=" + std::to_string(j.value("L", 0)));
  line(j.value("runtime", ""));
  if (j.contains("gemm"))
    line("GEMM ceiling (n=" + std::to_string(j["gemm"]["fp32"].value("n", 0)) + "): fp32 " +
         num(j["gemm"]["fp32"]["gflops"]) + " GFLOP/s, bf16 " + num(j["gemm"]["bf16"]["gflops"]) + " GFLOP/s");
  if (j.contains("precision_auto"))
    line("precision auto: " + j["precision_auto"]["reason"].get<std::string>() + "; native bf16: " +
         (j["precision_auto"]["cpu_bf16"].get<std::string>().empty()
              ? std::string("no")
              : j["precision_auto"]["cpu_bf16"].get<std::string>()));
  if (j.contains("generate")) {
    const auto& g = j["generate"];
    std::string s = "generation tokens/s:";
    for (const char* v : {"cache+shared", "cache", "no-cache"})
      if (g.contains(v)) s += std::string(" ") + v + " " + num(g[v]["tokens_per_s"], 0);
    s += "; shared/no-cache " + num(g.value("shared_over_no_cache", nlohmann::json()), 2) + "x, shared/cache " +
         num(g.value("shared_over_cache", nlohmann::json()), 2) + "x";
    line(s);
  }
  if (j.contains("grpo"))
    for (const auto& [p, g] : j["grpo"].items()) {
      const auto& ms = g["ms"];
      line("GRPO step " + p + " (ms): generate " + num(ms["generate"], 0) + ", KL reference policy " +
           num(ms["ref_policy"], 0) + ", policy forward " + num(ms["policy_forward"], 0) + ", backward " +
           num(ms["backward"], 0) + ", optimizer " + num(ms["optimizer"], 0) + ", total " + num(ms["total"], 0) +
           "; generation " + num(g["generate_share"].get<double>() * 100, 0) + "% of the step; forward+backward " +
           num(g["policy_forward_backward_gflops"]) + " GFLOP/s = MFU " +
           num(g["mfu_policy_forward_backward"].get<double>() * 100, 0) + "%, step MFU " +
           num(g["mfu_step"].get<double>() * 100, 0) + "%");
    }
  if (j.contains("data")) {
    const auto& d = j["data"];
    line("data: decode+resize " + num(d["decode_resize_images_per_s"], 0) + " images/s; reference map " +
         num(d.value("reference_ms_per_image", nlohmann::json()), 1) + " ms/image; batches " +
         num(d["batch_items_per_s"], 1) + " items/s; data wait in the step " +
         num(d["in_step"]["data_wait_share"].get<double>() * 100, 0) + "%, with the prefetcher " +
         num(d["prefetch"]["data_wait_share"].get<double>() * 100, 0) + "% over " + num(d.value("steps", 0), 0) +
         " steps (of which the first step's wait, once a stage: " + num(d["prefetch"].value("first_wait_ms", 0.0), 0) +
         " ms)");
    if (d.contains("anomaly_maps_per_s"))
      line("data: synthetic anomalies' maps " + num(d["anomaly_maps_per_s"]["whole"], 1) + "/s made whole, " +
           num(d["anomaly_maps_per_s"]["updated"], 1) + "/s updated from their normal image's");
  }
  if (j.contains("eval"))
    line("evaluation: " + num(j["eval"]["images_per_s"], 1) + " images/s (greedy, batch " +
         std::to_string(j["eval"].value("batch", 0)) + ", " + std::to_string(j["eval"].value("tokens_per_image", 0)) +
         " tokens)");
  std::string by_section;
  if (j.contains("peak_rss_mib_by_section"))
    for (const auto& [name, mib] : j["peak_rss_mib_by_section"].items())
      by_section += (by_section.empty() ? "" : ", ") + name + " " + num(mib, 0);
  line("peak resident memory " + num(j["peak_rss_mib"], 0) + " MiB" +
       (by_section.empty() ? "" : " (by section, MiB: " + by_section + ")"));
  return out;
}

}  // namespace lriad::eval
