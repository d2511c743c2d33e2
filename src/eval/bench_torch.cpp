#include "lriad/eval/bench.h"

#include <algorithm>
#include <chrono>
#include <nlohmann/json.hpp>

#include "lriad/io/error.h"
#include <torch/cuda.h>

#include "lriad/model/generate.h"
#include "lriad/model/precision.h"

namespace lriad::eval {

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
  model::TokenRows prompts;
  for (int b = 0; b < o.prompts; ++b) {
    std::vector<int64_t> row;
    for (int t = 0; t < 24; ++t) row.push_back(10 + (t * 7 + b) % 200);  // a 24-token prompt, like ours
    prompts.push_back(row);
  }
  std::vector<GenerateBenchRow> rows;
  for (const auto& variant : o.variants) {
    model::GenerateOptions g;
    g.group = o.group;
    g.max_new_tokens = o.max_new_tokens;
    g.eos_id = -1;  // never stops early: every variant generates the same number of tokens
    g.use_cache = variant != "no-cache";
    g.share_prefix = variant == "cache+shared";
    if (variant != "no-cache" && variant != "cache" && variant != "cache+shared")
      throw Error("unknown generation bench variant " + variant, "use cache+shared, cache or no-cache");
    std::vector<double> times;
    for (int r = 0; r <= o.repeats; ++r) {
      g.seed = r;
      model::AutocastGuard autocast(device, config.use_bf16());
      const auto t0 = std::chrono::steady_clock::now();
      const auto gen = model::generate(policy, images, prompts, g);
      if (device.is_cuda()) torch::cuda::synchronize();
      const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (r > 0) times.push_back(dt);  // run 0 warms up
    }
    std::sort(times.begin(), times.end());
    GenerateBenchRow row;
    row.variant = variant;
    row.seconds = times[times.size() / 2];
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
