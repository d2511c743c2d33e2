// `lriad bench`'s sections: GEMM ceiling, GRPO step, evaluation, training data.
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
#include "lriad/train/trainer.h"

#include "lriad/io/error.h"
#include "lriad/io/fs.h"
#include <torch/cuda.h>

#include "lriad/model/generate.h"
#include "lriad/model/policy_input.h"
#include "lriad/train/input_maker.h"
#include "lriad/model/precision.h"
#include "bench_internal.h"

namespace lriad::eval::bench_detail {

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
    t["ref_policy"].push_back(u.times.ref_policy);
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
// training batches (draw + synthetic anomaly + deviation) made in the step or by the prefetcher while
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
  demo::SynthOptions so;
  so.out = root;
  so.only = {"screw", "wood"};  // a part (compared in a pose, finely) and a texture (maps updated incrementally)
  so.per_category = std::max(8, o.data_images * 2);  // about half become training normals
  so.overwrite = true;
  spdlog::info("bench: writing {} demo images to {}", so.per_category, root);
  demo::generate_synthetic(so);
  config.data.format = "synth";
  config.data.root = root;
  config.data.categories = {"screw", "wood"};
  config.data.train_from_test = 0;
  train::fit_fine_size(config);  // as a run on these images would (the demo's 128 px)
  nlohmann::json j;

  // 1. Decode + resize (what TrainingSource does once, at start).
  const auto files = data::list_images(root + "/screw/train/good");
  auto t0 = std::chrono::steady_clock::now();
  for (const auto& f : files) data::load_image_tensor(f, config.model.image_size);
  j["decode_resize_images_per_s"] = double(files.size()) / seconds_since(t0);
  j["decode_resize_images"] = files.size();

  // 2. Synthetic anomalies painted (every kind, 10 seeds each) on a generated wood image, at 64 and
  // 128 px: ms per anomaly (a unit test timed this once; timing lives here).
  {
    const auto wood = data::list_images(root + "/wood/train/good");
    for (int side : {64, 128}) {
      const cv::Mat img = data::resize_square(data::read_image(wood.at(0)), side);
      const cv::Mat donor = data::resize_square(data::read_image(wood.at(1)), side);
      int calls = 0;
      t0 = std::chrono::steady_clock::now();
      for (auto kind : anomaly::all_anomaly_kinds())
        for (uint64_t seed = 0; seed < 10; ++seed, ++calls) anomaly::make_anomaly(img, donor, kind, seed);
      j["synthetic_anomaly_ms"][std::to_string(side)] = 1000 * seconds_since(t0) / calls;
    }
  }

  // 3. Batches as the trainer makes them.
  train::TrainingSource source(config);
  std::unique_ptr<reference::NormalReference> reference;
  if (config.model.reference == "knn") {
    t0 = std::chrono::steady_clock::now();
    reference = std::make_unique<reference::NormalReference>(train::build_normal_reference(source, config));
    j["reference_build_s"] = seconds_since(t0);
    // Where training and eval would put its nearest-patch products (reference::NormalReference::to).
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
        if (!item.base.empty() && reference->updatable(item.category, item.image.rows))
          anomalies.push_back(std::move(item));
      }
    if (!anomalies.empty()) {
      train::InputMaker warm(config.model, reference.get());
      for (const auto& a : anomalies) warm(a);  // fills the distances
      t0 = std::chrono::steady_clock::now();
      for (const auto& a : anomalies)
        model::policy_input(a.image, a.category, a.reference_bank, config.model, reference.get());
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
  // Each phase below draws its own steps (batches of other items), so that none finds the items of
  // an earlier phase prepared: [0, n) the batch rate, [n, 2n) in the step, [2n, 3n) with the prefetcher.
  // n = 12: the first step of a prefetched stage waits for a whole batch (nothing was made before it),
  // once per stage in training (hundreds of steps), so with few steps it would be most of the wait;
  // it is reported apart (first_wait_ms).
  const int steps = 12;
  t0 = std::chrono::steady_clock::now();
  for (int s = 0; s < steps; ++s) prepare(s);
  j["batch_items_per_s"] = double(steps * batch) / seconds_since(t0);
  j["batch_size"] = batch;
  j["steps"] = steps;

  // A stand-in for an SFT step: policy forward + backward on the prepared batch.
  const torch::Device device(config.device);
  auto policy = model::make_policy(config.model, config.seed);
  policy->to(device);
  policy->train();
  const auto prompts = bench_prompts(batch);
  const auto completion = torch::randint(10, 200, {batch, o.max_new_tokens}, torch::kInt64).to(device);
  const auto mask = torch::ones({batch, o.max_new_tokens}, torch::kBool).to(device);
  for (int depth : {0, 2}) {
    const int first = depth == 0 ? steps : 2 * steps;
    train::Prefetcher<torch::Tensor> prefetch(prepare, first, first + steps, depth, [] { torch::set_num_threads(1); });
    double wait = 0, total = 0, first_wait = 0;
    for (int s = first; s < first + steps; ++s) {
      const auto st = std::chrono::steady_clock::now();
      const auto images = prefetch.take(s).to(device);
      wait += prefetch.last_wait();
      if (s == first) first_wait = prefetch.last_wait();
      policy->zero_grad();
      model::AutocastGuard autocast(device, model::use_bf16(config));
      policy->completion_logits(images, prompts, completion, mask).to(torch::kFloat).logsumexp(-1).mean().backward();
      sync(device);
      total += seconds_since(st);
    }
    const std::string key = depth == 0 ? "in_step" : "prefetch";
    j[key] = {{"step_ms", 1000 * total / steps},
              {"data_wait_ms", 1000 * wait / steps},
              {"data_wait_share", wait / total},
              {"first_wait_ms", 1000 * first_wait}};
  }
  return j;
}

}  // namespace lriad::eval::bench_detail
