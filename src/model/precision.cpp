// Which precision a run computes in, and a scoped bf16 autocast across LibTorch versions.
#include "lriad/model/precision.h"

#include <chrono>
#include <mutex>
#include <tuple>
#include <utility>

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/autocast_mode.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <torch/cuda.h>
#include <torch/torch.h>
#include <torch/version.h>

namespace lriad::model {
namespace {

#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
bool is_on(bool cuda) { return at::autocast::is_autocast_enabled(cuda ? at::kCUDA : at::kCPU); }
void set_on(bool cuda, bool on) {
  at::autocast::set_autocast_dtype(cuda ? at::kCUDA : at::kCPU, at::kBFloat16);
  at::autocast::set_autocast_enabled(cuda ? at::kCUDA : at::kCPU, on);
}
#else
bool is_on(bool cuda) { return cuda ? at::autocast::is_enabled() : at::autocast::is_cpu_enabled(); }
void set_on(bool cuda, bool on) {
  if (cuda) {
    at::autocast::set_autocast_gpu_dtype(at::kBFloat16);
    at::autocast::set_enabled(on);
  } else {
    at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
    at::autocast::set_cpu_enabled(on);
  }
}
#endif

// n x n operands from a generator of their own: the probe must not move the global random stream
// (it runs mid-set-up, and a run's draws must not depend on whether it probed).
std::pair<torch::Tensor, torch::Tensor> operands(const c10::Device& device, int n, c10::ScalarType dtype) {
  auto gen = at::detail::createCPUGenerator(12345);
  return {torch::randn({n, n}, gen).to(device, dtype), torch::randn({n, n}, gen).to(device, dtype)};
}

void sync(const c10::Device& device) {
  if (device.is_cuda()) torch::cuda::synchronize();
}

double since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

c10::ScalarType compute_dtype(const c10::Device& device, c10::ScalarType otherwise) {
  return is_on(device.is_cuda()) ? c10::ScalarType::BFloat16 : otherwise;
}

double gemm_gflops(const c10::Device& device, int n, c10::ScalarType dtype, double min_seconds) {
  torch::NoGradGuard no_grad;
  const auto [a, b] = operands(device, n, dtype);
  auto c = torch::mm(a, b);  // warm-up
  sync(device);
  int reps = 0;
  const auto t0 = std::chrono::steady_clock::now();
  do {
    c = torch::mm(a, b);
    sync(device);
    ++reps;
  } while (since(t0) < min_seconds);
  return 2.0 * n * n * double(n) / (since(t0) / reps) / 1e9;
}

std::pair<double, double> probe_gemm(int n, int rounds) {
  torch::NoGradGuard no_grad;
  const c10::Device cpu(c10::kCPU);
  const auto [a32, b32] = operands(cpu, n, c10::kFloat);
  const auto [a16, b16] = operands(cpu, n, c10::kBFloat16);
  auto c = torch::mm(a32, b32);  // warm-ups: first-call set-up (oneDNN's kernels are made on first use)
  c = torch::mm(a16, b16);
  double best32 = 1e30, best16 = 1e30;
  for (int r = 0; r < rounds; ++r) {  // interleaved, the fastest of each: another process's load only slows
    auto t0 = std::chrono::steady_clock::now();
    c = torch::mm(a32, b32);
    best32 = std::min(best32, since(t0));
    t0 = std::chrono::steady_clock::now();
    c = torch::mm(a16, b16);
    best16 = std::min(best16, since(t0));
  }
  const double flop = 2.0 * n * n * double(n);
  return {flop / best32 / 1e9, flop / best16 / 1e9};
}

bool bf16_pays(double fp32_gflops, double bf16_gflops, double margin) {
  return fp32_gflops > 0 && bf16_gflops >= margin * fp32_gflops;
}

PrecisionChoice choose_precision(const RunConfig& config) {
  PrecisionChoice c;
  if (config.precision != "auto") {
    c.bf16 = config.precision == "bf16";
    c.reason = config.precision + " as the config asks";
    return c;
  }
  if (config.device == "cuda") {
    c.bf16 = true;
    c.reason = "auto on cuda: bf16";
    return c;
  }
  // The CPU probe, once per process: its figures depend on the machine and the thread count, not
  // on the config, and a second probe under a different load could decide otherwise mid-run.
  static std::once_flag once;
  static PrecisionChoice probed;
  std::call_once(once, [] {
    std::tie(probed.fp32_gflops, probed.bf16_gflops) = probe_gemm(kProbeSize, kProbeRounds);
    probed.bf16 = bf16_pays(probed.fp32_gflops, probed.bf16_gflops);
    const double ratio = probed.bf16_gflops / probed.fp32_gflops;
    probed.reason = fmt::format(
        "auto on cpu: {}, bf16 products {:.2f}x fp32's ({:.1f} / {:.1f} GFLOP/s at n={}; bf16 needs >= {:.1f}x)",
        probed.bf16 ? "bf16 autocast" : "fp32", ratio, probed.bf16_gflops, probed.fp32_gflops, kProbeSize, kBf16Margin);
    spdlog::info("precision {}", probed.reason);
  });
  return probed;
}

AutocastGuard::AutocastGuard(const c10::Device& device, bool bf16) {
  if (!bf16) return;
  active_ = true;
  cuda_ = device.is_cuda();
  previous_ = is_on(cuda_);
  set_on(cuda_, true);
  at::autocast::increment_nesting();
}

AutocastGuard::~AutocastGuard() {
  if (!active_) return;
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  set_on(cuda_, previous_);
}

}  // namespace lriad::model
