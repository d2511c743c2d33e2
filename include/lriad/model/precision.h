// Mixed precision: which precision a run computes in (precision "auto" decided by measurement on
// CPU) and a scoped bf16 autocast for CPU or CUDA, behind one class because the LibTorch API changed
// between 1.x (set_cpu_enabled) and 2.4+ (set_autocast_enabled(device)).
#pragma once
#include <string>
#include <utility>

#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include "lriad/io/config.h"

namespace lriad::model {

// GFLOP/s of an n x n x n matrix product in `dtype` on `device`, after one warm-up product,
// repeated for at least `min_seconds`.
double gemm_gflops(const c10::Device& device, int n, c10::ScalarType dtype, double min_seconds);

// precision "auto" on CPU: bf16 autocast where the probe's bf16 product is at least this many times
// faster than fp32's. Autocast casts weights and activations and keeps reductions in fp32, so a
// GEMM that is merely as fast would make the step slower; CPUs with a bf16 matrix unit measure 3-6x,
// CPUs without one 0.04-0.3x.
inline constexpr double kBf16Margin = 1.5;
// The probe's product: 512^3 (0.27 GFLOP), the size of the small model's products rather than a
// ceiling's: a few ms in fp32 on 2 cores, ~55 ms per bf16 product where bf16 is emulated (4.9 GFLOP/s),
// so a command on such a CPU starts ~0.3 s later. On an AVX-512 BF16 machine: 5.3x at 512, 4.6x at 1024.
inline constexpr int kProbeSize = 512;
inline constexpr int kProbeRounds = 5;

// The probe: fp32 and bf16 n x n x n products on the CPU, interleaved for `rounds` rounds after a
// warm-up each; the fastest of each precision, as GFLOP/s {fp32, bf16}. The fastest, because another
// process's load only ever slows a product down (a mean under load could flip the decision).
std::pair<double, double> probe_gemm(int n = kProbeSize, int rounds = kProbeRounds);

// The decision rule (pure): bf16 pays when bf16_gflops >= margin * fp32_gflops.
bool bf16_pays(double fp32_gflops, double bf16_gflops, double margin = kBf16Margin);

struct PrecisionChoice {
  bool bf16 = false;
  std::string reason;      // one line for the log, e.g. "auto on cpu: bf16 autocast, bf16 products 3.37x fp32's (...)"
  double fp32_gflops = 0;  // the probe's figures; 0 when no probe ran (fp32/bf16 asked, or CUDA)
  double bf16_gflops = 0;
};

// How a run with this config computes. fp32 / bf16: as asked. auto: bf16 on CUDA; on CPU the GEMM
// probe decides (bf16_pays), run once per process on the first call and logged then; every later call
// returns the same choice, so training, validation and evaluation in one process agree (a resumed
// training run keeps the choice its trainer_state.json records).
PrecisionChoice choose_precision(const RunConfig& config);
inline bool use_bf16(const RunConfig& config) { return choose_precision(config).bf16; }

// The dtype products on `device` produce now: bf16 inside an AutocastGuard, else `otherwise`.
c10::ScalarType compute_dtype(const c10::Device& device, c10::ScalarType otherwise);

class AutocastGuard {
 public:
  // Enables bf16 autocast on `device`'s type while alive when `bf16` is true; else does nothing.
  AutocastGuard(const c10::Device& device, bool bf16);
  ~AutocastGuard();
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  bool active_ = false;
  bool cuda_ = false;
  bool previous_ = false;
};

}  // namespace lriad::model
