// `lriad bench paligemma`: a pretrained PaliGemma's GRPO step with LoRA (see bench.h).
#include <ATen/CPUGeneratorImpl.h>
#include <spdlog/spdlog.h>

#include "bench_internal.h"
#include "lriad/model/hf_checkpoint.h"
#include "lriad/model/paligemma.h"
#include "lriad/train/paligemma_grpo.h"

namespace lriad::eval {

using namespace bench_detail;

nlohmann::json bench_paligemma(const PaliGemmaBenchOptions& o) {
  const auto type = model::paligemma_dtype(o.dtype, "--dtype");
  const auto device = model::paligemma_device(o.device, "--device");
  reset_peak_rss();
  auto t0 = std::chrono::steady_clock::now();
  const auto ckpt = model::open_hf_checkpoint(o.hf);
  model::PaliGemma m(ckpt.config);
  m->to(device, type);
  model::load_hf_weights(*m, ckpt);
  sync(device);
  const double load_s = seconds_since(t0);
  int64_t parameters = 0;
  for (const auto& p : m->parameters()) parameters += p.numel();
  model::LoraOptions lora;
  lora.rank = o.lora_rank;
  lora.alpha = 2.0 * o.lora_rank;
  m->add_lora(lora);
  m->recompute_blocks = o.recompute;
  std::vector<torch::Tensor> adapters;
  int64_t adapter_parameters = 0;
  for (const auto& [name, t] : m->lora_tensors()) {
    adapters.push_back(t);
    adapter_parameters += t.numel();
  }
  torch::optim::Adam optimizer(adapters, torch::optim::AdamOptions(1e-4));
  const int64_t S = ckpt.config.image_size;
  auto gen = at::detail::createCPUGenerator(0);
  const auto pixels = (torch::rand({1, 3, S, S}, gen) * 2 - 1).to(device);
  std::vector<int> text;
  for (int t = 0; t < 16; ++t) text.push_back(int(10 + (t * 7) % 200));  // a 16-piece prefix
  const auto prompt = model::paligemma_prompt(ckpt.config, text);
  // The reward does not matter for the time; varied values give the step a gradient.
  auto reward = [](size_t, const std::vector<int64_t>& c) { return double(c.size() % 3); };
  train::PaliGemmaGrpoOptions go;
  go.group = o.group;
  go.max_new = o.max_new;
  go.loss.beta = 0.04;
  std::vector<double> sample_s, step_s, tokens;
  for (int r = 0; r <= o.repeats; ++r) {  // the first is a warm-up
    m->eval();
    auto s0 = std::chrono::steady_clock::now();
    const auto group = train::paligemma_sample_group(*m, pixels, prompt, o.group, o.max_new, 1.0, gen);
    sync(device);
    const double sampled = seconds_since(s0);
    double n = 0;
    for (const auto& c : group) n += double(c.size());
    s0 = std::chrono::steady_clock::now();
    train::paligemma_grpo_step(*m, optimizer, pixels, {prompt}, reward, go, gen);
    sync(device);
    if (r > 0) {
      sample_s.push_back(sampled);
      step_s.push_back(seconds_since(s0));
      tokens.push_back(n / sampled);
    }
    spdlog::info("bench paligemma: step {} of {} done", r, o.repeats);
  }
  nlohmann::json j;
  j["checkpoint"] = o.hf;
  j["device"] = o.device;
  j["dtype"] = o.dtype;
  j["group"] = o.group;
  j["max_new"] = o.max_new;
  j["lora_rank"] = o.lora_rank;
  j["recompute"] = o.recompute;
  j["image_tokens"] = ckpt.config.image_tokens();
  j["load_s"] = load_s;
  j["parameters"] = parameters;
  j["adapter_parameters"] = adapter_parameters;
  j["sample_s"] = median(sample_s);
  j["step_s"] = median(step_s);
  j["tokens_per_s"] = median(tokens);
  j["peak_rss_mib"] = section_peak_rss_mib();
  j["peak_cuda_mib"] = nullptr;  // not exposed by LibTorch's C++ API without CUDA headers
  return j;
}

}  // namespace lriad::eval
