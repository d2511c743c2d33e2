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

#include "lriad/data/anomaly.h"
#include "lriad/data/image_io.h"
#include "lriad/data/image_tensor.h"
#include "lriad/data/reference.h"
#include "lriad/data/synth.h"
#include "lriad/io/runtime.h"
#include "lriad/model/flops.h"
#include "lriad/train/grpo.h"
#include "lriad/train/prefetch.h"
#include "lriad/train/source.h"

#include "lriad/io/error.h"
#include "lriad/io/fs.h"  // list_images
#include <torch/cuda.h>

#include "lriad/model/generate.h"
#include "lriad/model/policy_input.h"
#include "lriad/train/input_maker.h"
#include "lriad/model/precision.h"

namespace lriad::eval {
namespace {

// The bench's prompts are as long as lriad's: the question and the chain's opening with the normal
// reference's measurements ("... the largest deviation is a thin, long mark, at the upper right, 1.5
// times the normal level.") are 50-70 pieces of the 1024-piece tokenizer (70 the longest on the demo).
constexpr int kPromptTokens = 64;

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

}  // namespace

std::vector<GenerateBenchRow> bench_generate(const RunConfig& config_in, const GenerateBenchOptions& o) {
  RunConfig config = config_in;
  if (config.model.vocab_size == 0) config.model.vocab_size = 512;
  config.validate();
  const torch::Device device(config.device);
  auto policy = model::make_policy(config.model, config.seed);
  policy->to(device);
  policy->eval();
  const int64_t s = config.model.image_size;
  const torch::Tensor images = torch::rand({o.prompts, int64_t(config.model.image_channels()), s, s}).to(device);  // (B,C,S,S)
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
  for (const auto& r : rows) j["results"].push_back({{"variant", r.variant}, {"seconds", r.seconds}, {"tokens_per_s", r.tokens_per_s}});
  return j;
}

}  // namespace lriad::eval

// ---------------------------------------------------------------------------------------------
// `lriad bench`: every section.

namespace lriad::eval {
namespace {

// GFLOP/s of an n x n x n product in `dtype`, repeated for at least half a second.
nlohmann::json bench_gemm(const torch::Device& device, int n, torch::ScalarType dtype) {
  const double gflops = model::gemm_gflops(device, n, dtype, 0.5);
  return {{"n", n}, {"seconds", 2.0 * n * n * double(n) / gflops / 1e9}, {"gflops", gflops}};
}

// One GRPO step of B prompts x G completions of L tokens on random weights, by phase.
nlohmann::json bench_grpo(RunConfig config, const BenchOptions& o, bool bf16, double ceiling_gflops) {
  config.precision = bf16 ? "bf16" : "fp32";
  const torch::Device device(config.device);
  auto policy = model::make_policy(config.model, config.seed);
  policy->to(device);
  model::Policy reference{nullptr};
  if (config.grpo.beta > 0) {
    reference = model::make_policy(config.model, config.seed);
    reference->to(device);
    reference->eval();
    for (auto& p : reference->parameters()) p.set_requires_grad(false);
  }
  torch::optim::AdamW optimizer(policy->parameters(), torch::optim::AdamWOptions(config.grpo.lr));
  const int64_t s = config.model.image_size, N = int64_t(o.prompts) * o.group;
  const auto images = torch::rand({o.prompts, int64_t(config.model.image_channels()), s, s}).to(device);  // (B,C,S,S)
  const auto prompts = bench_prompts(o.prompts);
  std::map<std::string, std::vector<double>> t;
  for (int r = 0; r <= o.repeats; ++r) {
    model::GenerateOptions g;
    g.group = o.group;
    g.max_new_tokens = o.max_new_tokens;
    g.eos_id = -1;  // every completion runs to L tokens
    g.seed = uint64_t(r);
    g.sampling.temperature = config.grpo.temperature;
    policy->eval();
    auto t0 = std::chrono::steady_clock::now();
    model::Generation gen;
    {
      torch::NoGradGuard no_grad;
      model::AutocastGuard autocast(device, bf16);
      gen = model::generate(policy, images, prompts, g);
    }
    sync(device);
    const double generate = seconds_since(t0);
    train::GrpoBatch batch;
    batch.images = images.repeat_interleave(o.group, 0);  // (N,C,S,S)
    for (const auto& p : prompts)
      for (int k = 0; k < o.group; ++k) batch.prompts.push_back(p);
    batch.tokens = gen.tokens;
    batch.mask = gen.mask;
    batch.truncated = torch::zeros({N}, torch::kBool);  // L is the budget here, not a cut-off chain
    batch.group = o.group;
    auto gen_r = at::detail::createCPUGenerator(uint64_t(r) + 1);
    const auto u = train::grpo_update(policy, reference ? &reference : nullptr, optimizer, batch, config.grpo,
                                      o.max_new_tokens, bf16, [&](const torch::Tensor&) {
                                        return torch::rand({N}, gen_r).to(torch::kDouble);  // seeded random rewards
                                      });
    if (r == 0) continue;  // warm-up
    t["generate"].push_back(generate);
    t["reference"].push_back(u.times.reference);
    t["policy_forward"].push_back(u.times.forward);
    t["backward"].push_back(u.times.backward);
    t["reward"].push_back(u.times.reward);
    t["optimizer"].push_back(u.times.optimizer);
    t["total"].push_back(seconds_since(t0));
  }
  nlohmann::json j;
  j["precision"] = config.precision;
  for (const auto& [k, v] : t) j["ms"][k] = 1000 * median(v);
  const auto f = model::forward_flops(config.model, kPromptTokens, o.max_new_tokens);
  const double fwd_bwd_flops = 3.0 * f.total() * double(N);
  const double fwd_bwd_s = (median(t["policy_forward"]) + median(t["backward"]));
  j["policy_forward_backward_gflop"] = fwd_bwd_flops / 1e9;
  j["policy_forward_backward_gflops"] = fwd_bwd_flops / fwd_bwd_s / 1e9;
  j["mfu_policy_forward_backward"] = fwd_bwd_flops / fwd_bwd_s / 1e9 / ceiling_gflops;
  // The whole step's useful work: policy forward+backward, reference forward, and generation
  // (with the KV cache about one forward pass per row).
  const double step_flops = fwd_bwd_flops + (reference ? 2.0 : 1.0) * f.total() * double(N);
  j["mfu_step"] = step_flops / median(t["total"]) / 1e9 / ceiling_gflops;
  j["generate_share"] = median(t["generate"]) / median(t["total"]);
  j["gemm_ceiling_gflops"] = ceiling_gflops;
  j["parameters"] = model::parameter_counts(*policy).back().second;
  return j;
}

// Greedy batched evaluation on random weights: generation to L tokens (an upper bound: real
// chains stop at eos) plus, with a normal reference, its deviation map per image.
nlohmann::json bench_eval(RunConfig config, const BenchOptions& o, double deviation_ms_per_image) {
  const torch::Device device(config.device);
  auto policy = model::make_policy(config.model, config.seed);
  policy->to(device);
  policy->eval();
  const int64_t s = config.model.image_size;
  const auto images = torch::rand({o.eval_batch, int64_t(config.model.image_channels()), s, s}).to(device);
  const auto prompts = bench_prompts(o.eval_batch);
  std::vector<double> times;
  for (int r = 0; r <= o.repeats; ++r) {
    model::GenerateOptions g;
    g.max_new_tokens = o.max_new_tokens;
    g.eos_id = -1;
    g.sampling.greedy = true;
    const auto t0 = std::chrono::steady_clock::now();
    {
      torch::NoGradGuard no_grad;
      model::AutocastGuard autocast(device, model::use_bf16(config));
      model::generate(policy, images, prompts, g);
    }
    sync(device);
    if (r > 0) times.push_back(seconds_since(t0));
  }
  const double per_image = median(times) / o.eval_batch + deviation_ms_per_image / 1000;
  return {{"batch", o.eval_batch},
          {"tokens_per_image", o.max_new_tokens},
          {"generate_ms_per_image", 1000 * median(times) / o.eval_batch},
          {"reference_ms_per_image", deviation_ms_per_image},
          {"images_per_s", 1.0 / per_image}};
}

// Data: decode + resize of a generated category, the normal reference's deviation maps, and
// training batches (draw + synthesise + deviation) made in the step or by the prefetcher while
// a policy forward+backward runs, with the time the step waits for them.
nlohmann::json bench_data(RunConfig config, const BenchOptions& o, double* deviation_ms_per_image) {
  namespace fs = std::filesystem;
  std::string root = o.scratch;
  const bool temporary = root.empty();
  if (temporary) root = (fs::temp_directory_path() / ("lriad-bench-" + std::to_string(::getpid()))).string();
  struct Cleanup {
    std::string dir;
    bool on;
    ~Cleanup() {
      std::error_code ec;
      if (on) fs::remove_all(dir, ec);
    }
  } cleanup{root, temporary};
  data::SynthOptions so;
  so.out = root;
  so.only = {"screw", "wood"};  // a part (compared in a pose, finely) and a texture (maps updated incrementally)
  so.per_category = std::max(8, o.data_images * 2);  // about half become training normals
  so.overwrite = true;
  spdlog::info("bench: writing {} demo images to {}", so.per_category, root);
  data::generate_synthetic(so);
  config.data.format = "synth";
  config.data.root = root;
  config.data.categories = {"screw", "wood"};
  config.data.train_from_test = 0;
  nlohmann::json j;

  // 1. Decode + resize (what TrainingSource does once, at start).
  const auto files = io::list_images(root + "/screw/train/good");
  auto t0 = std::chrono::steady_clock::now();
  for (const auto& f : files) data::load_image_tensor(f, config.model.image_size);
  j["decode_resize_images_per_s"] = double(files.size()) / seconds_since(t0);
  j["decode_resize_images"] = files.size();

  // 2. Synthetic anomalies painted (every kind, 10 seeds each) on a generated wood image, at 64 and
  // 128 px: ms per anomaly (a unit test timed this once; timing lives here).
  {
    const auto wood = io::list_images(root + "/wood/train/good");
    for (int side : {64, 128}) {
      const cv::Mat img = data::resize_square(data::read_image(wood.at(0)), side);
      const cv::Mat donor = data::resize_square(data::read_image(wood.at(1)), side);
      int calls = 0;
      t0 = std::chrono::steady_clock::now();
      for (auto kind : data::all_anomaly_kinds())
        for (uint64_t seed = 0; seed < 10; ++seed, ++calls) data::make_anomaly(img, donor, kind, seed);
      j["synthetic_anomaly_ms"][std::to_string(side)] = 1000 * seconds_since(t0) / calls;
    }
  }

  // 3. Batches as the trainer makes them.
  train::TrainingSource source(config);
  std::unique_ptr<data::NormalReference> reference;
  if (config.model.reference == "knn") {
    t0 = std::chrono::steady_clock::now();
    reference = std::make_unique<data::NormalReference>(train::build_normal_reference(source, config));
    j["reference_build_s"] = seconds_since(t0);
    // Where training and eval would put its nearest-patch products (data::NormalReference::to).
    const torch::Device device(config.device);
    if (device.is_cuda()) reference->to(device);
    j["reference_device"] = device.str();
    const cv::Mat& img = source.validation().empty() ? cv::Mat() : source.validation().front().image;
    if (!img.empty()) {
      std::vector<double> d;
      for (int r = 0; r < 5; ++r) {
        t0 = std::chrono::steady_clock::now();
        reference->deviation(img, "screw", 0);
        d.push_back(seconds_since(t0));
      }
      *deviation_ms_per_image = 1000 * median(d);
      j["reference_ms_per_image"] = *deviation_ms_per_image;
    }
  }
  // Synthetic anomalies' maps, made whole against updated from their normal image's patch
  // distances (train/input_maker.h; the distances made beforehand, as training keeps them).
  if (reference) {
    std::vector<train::TrainItem> anomalies;
    for (uint64_t step = 0; anomalies.size() < 16 && step < 64; ++step)
      for (int i = 0; i < 8; ++i) {
        auto item = source.draw(step, i);
        if (!item.base.empty() && reference->updatable(item.category, item.image.rows)) anomalies.push_back(std::move(item));
      }
    if (!anomalies.empty()) {
      train::InputMaker warm(config.model, reference.get());
      for (const auto& a : anomalies) warm(a);  // fills the distances
      t0 = std::chrono::steady_clock::now();
      for (const auto& a : anomalies) model::policy_input(a.image, a.category, a.reference_bank, config.model, reference.get());
      const double whole = double(anomalies.size()) / seconds_since(t0);
      t0 = std::chrono::steady_clock::now();
      for (const auto& a : anomalies) warm(a);
      const double updated = double(anomalies.size()) / seconds_since(t0);
      j["anomaly_maps_per_s"] = {{"whole", whole}, {"updated", updated}, {"items", anomalies.size()}};
    }
  }
  const int batch = std::max(1, std::min(8, config.sft.batch_size));
  train::InputMaker inputs(config.model, reference.get());  // as the trainer makes them
  auto prepare = [&](int step) {
    std::vector<torch::Tensor> images;
    for (int i = 0; i < batch; ++i) {
      const auto item = source.draw(uint64_t(step), i);
      images.push_back(item.input.defined() ? item.input : inputs(item));
    }
    return torch::stack(images);  // (B,C,S,S)
  };
  const int steps = 4;
  t0 = std::chrono::steady_clock::now();
  for (int s = 0; s < steps; ++s) prepare(s);
  j["batch_items_per_s"] = double(steps * batch) / seconds_since(t0);
  j["batch_size"] = batch;

  // A stand-in for an SFT step: policy forward + backward on the prepared batch.
  const torch::Device device(config.device);
  auto policy = model::make_policy(config.model, config.seed);
  policy->to(device);
  policy->train();
  const auto prompts = bench_prompts(batch);
  const auto completion = torch::randint(10, 200, {batch, o.max_new_tokens}, torch::kInt64).to(device);
  const auto mask = torch::ones({batch, o.max_new_tokens}, torch::kBool).to(device);
  for (int depth : {0, 2}) {
    train::Prefetcher<torch::Tensor> prefetch(prepare, 0, steps, depth, [] { torch::set_num_threads(1); });
    double wait = 0, total = 0;
    for (int s = 0; s < steps; ++s) {
      const auto st = std::chrono::steady_clock::now();
      const auto images = prefetch.take(s).to(device);
      wait += prefetch.last_wait();
      policy->zero_grad();
      model::AutocastGuard autocast(device, model::use_bf16(config));
      policy->completion_logits(images, prompts, completion, mask).to(torch::kFloat).logsumexp(-1).mean().backward();
      sync(device);
      total += seconds_since(st);
    }
    const std::string key = depth == 0 ? "in_step" : "prefetch";
    j[key] = {{"step_ms", 1000 * total / steps}, {"data_wait_ms", 1000 * wait / steps}, {"data_wait_share", wait / total}};
  }
  return j;
}

}  // namespace

nlohmann::json run_bench(const RunConfig& config_in, const BenchOptions& o) {
  RunConfig config = config_in;
  if (config.model.vocab_size == 0) config.model.vocab_size = 512;
  config.validate();
  const torch::Device device(config.device);
  auto want = [&](const std::string& s) { return std::find(o.sections.begin(), o.sections.end(), s) != o.sections.end(); };
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
    j["precision_auto"] = {{"bf16", choice.bf16}, {"reason", choice.reason}, {"cpu_bf16", io::current_runtime().cpu_bf16}};
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
      g["shared_over_no_cache"] = g["cache+shared"]["tokens_per_s"].get<double>() / g["no-cache"]["tokens_per_s"].get<double>();
    if (g.contains("cache+shared") && g.contains("cache"))
      g["shared_over_cache"] = g["cache+shared"]["tokens_per_s"].get<double>() / g["cache"]["tokens_per_s"].get<double>();
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
    if (!want("data") && config.model.reference == "knn") j["eval"]["note"] = "deviation maps not timed (run the data section)";
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
  line("config " + j.value("config", "") + " on " + j.value("device", "") + ", " + std::to_string(j.value("threads", 0)) +
       " threads; B=" + std::to_string(j.value("B", 0)) + " G=" + std::to_string(j.value("G", 0)) +
       " L=" + std::to_string(j.value("L", 0)));
  line(j.value("runtime", ""));
  if (j.contains("gemm"))
    line("GEMM ceiling (n=" + std::to_string(j["gemm"]["fp32"].value("n", 0)) + "): fp32 " + num(j["gemm"]["fp32"]["gflops"]) +
         " GFLOP/s, bf16 " + num(j["gemm"]["bf16"]["gflops"]) + " GFLOP/s");
  if (j.contains("precision_auto"))
    line("precision auto: " + j["precision_auto"]["reason"].get<std::string>() + "; native bf16: " +
         (j["precision_auto"]["cpu_bf16"].get<std::string>().empty() ? std::string("no")
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
      line("GRPO step " + p + " (ms): generate " + num(ms["generate"], 0) + ", reference " + num(ms["reference"], 0) +
           ", policy forward " + num(ms["policy_forward"], 0) + ", backward " + num(ms["backward"], 0) + ", optimizer " +
           num(ms["optimizer"], 0) + ", total " + num(ms["total"], 0) + "; generation " +
           num(g["generate_share"].get<double>() * 100, 0) + "% of the step; forward+backward " +
           num(g["policy_forward_backward_gflops"]) + " GFLOP/s = MFU " + num(g["mfu_policy_forward_backward"].get<double>() * 100, 0) +
           "%, step MFU " + num(g["mfu_step"].get<double>() * 100, 0) + "%");
    }
  if (j.contains("data")) {
    const auto& d = j["data"];
    line("data: decode+resize " + num(d["decode_resize_images_per_s"], 0) + " images/s; reference map " +
         num(d.value("reference_ms_per_image", nlohmann::json()), 1) + " ms/image; batches " + num(d["batch_items_per_s"], 1) +
         " items/s; data wait in the step " + num(d["in_step"]["data_wait_share"].get<double>() * 100, 0) +
         "%, with the prefetcher " + num(d["prefetch"]["data_wait_share"].get<double>() * 100, 0) + "%");
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
    for (const auto& [name, mib] : j["peak_rss_mib_by_section"].items()) by_section += (by_section.empty() ? "" : ", ") + name + " " + num(mib, 0);
  line("peak resident memory " + num(j["peak_rss_mib"], 0) + " MiB" + (by_section.empty() ? "" : " (by section, MiB: " + by_section + ")"));
  return out;
}

}  // namespace lriad::eval
