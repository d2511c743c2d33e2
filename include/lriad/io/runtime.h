// Process set-up for LibTorch: thread count, BLAS detection, device availability.
#pragma once
#include <string>

namespace lriad::io {

struct RuntimeInfo {
  std::string torch_version;
  int threads = 1;                        // LibTorch intra-op threads in use
  int cores = 1;                          // hardware threads seen by the process
  std::string blas_library;               // resolved path of the loaded BLAS, or "built-in"
  bool blas_is_reference = false;         // Debian's reference BLAS: ~100x slower matmuls
  bool blas_is_openblas_pthread = false;  // oversubscribes cores against LibTorch's threads
  bool cuda_available = false;
  int cuda_devices = 0;
  // The CPU's native bf16 instructions, from /proc/cpuinfo ("avx512_bf16 amx_bf16"; "bf16" on
  // aarch64); empty when none is listed (bf16 is then emulated, often many times slower than fp32).
  std::string cpu_bf16;
};

// The bf16 instruction flags of a /proc/cpuinfo text, space-separated in a fixed order: x86's
// avx512_bf16 and amx_bf16 (from the first "flags" line), aarch64's bf16 (from the first "Features"
// line). "" when there are none.
std::string native_bf16_flags(const std::string& cpuinfo);

// Sets LibTorch's intra-op threads to `threads` (<= 0: every core the process may use;
// Debian's LibTorch starts with 1) and returns what is in force.
RuntimeInfo init_runtime(int threads);

// What is in force now, without changing anything.
RuntimeInfo current_runtime();

// One line for the start of every command's log, e.g.
// "LibTorch 1.13.0, 2 threads of 2 cores, BLAS openblas-openmp (...), native bf16: no, CUDA: no".
std::string describe(const RuntimeInfo& info);

// Warnings a user should act on (reference BLAS, pthread OpenBLAS); empty when all is well.
std::string runtime_warnings(const RuntimeInfo& info);

}  // namespace lriad::io
