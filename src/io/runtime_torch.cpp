// LibTorch process set-up: threads, BLAS detection via the loaded shared objects, CUDA.
#include "lriad/io/runtime.h"

#include <link.h>
#include <sched.h>

#include <cstdlib>
#include <filesystem>
#include <thread>

#include <torch/torch.h>
#include <torch/version.h>

namespace lriad::io {
namespace {

int usable_cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) return std::max(1, CPU_COUNT(&set));
  return std::max(1u, std::thread::hardware_concurrency());
}

// Finds the BLAS shared object actually mapped into this process.
std::string loaded_blas() {
  std::string found;
  dl_iterate_phdr(
      [](dl_phdr_info* info, size_t, void* data) {
        const std::string name = info->dlpi_name ? info->dlpi_name : "";
        const std::string base = std::filesystem::path(name).filename().string();
        if (base.rfind("libblas.so", 0) == 0 || base.rfind("libopenblas", 0) == 0 || base.rfind("libmkl", 0) == 0) {
          auto* out = static_cast<std::string*>(data);
          std::error_code ec;
          const auto real = std::filesystem::canonical(name, ec);
          if (out->empty() || base.rfind("libblas.so", 0) == 0) *out = ec ? name : real.string();
        }
        return 0;
      },
      &found);
  return found.empty() ? "built-in" : found;
}

}  // namespace

RuntimeInfo current_runtime() {
  RuntimeInfo info;
  info.torch_version = TORCH_VERSION;
  info.threads = at::get_num_threads();
  info.cores = usable_cores();
  info.blas_library = loaded_blas();
  info.blas_is_reference = info.blas_library.find("/blas/libblas") != std::string::npos ||
                           info.blas_library.find("/libblas.so.3.") != std::string::npos;
  info.blas_is_openblas_pthread = info.blas_library.find("openblas-pthread") != std::string::npos;
  info.cuda_available = torch::cuda::is_available();
  info.cuda_devices = info.cuda_available ? int(torch::cuda::device_count()) : 0;
  return info;
}

RuntimeInfo init_runtime(int threads) {
  const int n = threads > 0 ? threads : usable_cores();
  at::set_num_threads(n);
  return current_runtime();
}

std::string describe(const RuntimeInfo& info) {
  std::string s = "LibTorch " + info.torch_version + ", " + std::to_string(info.threads) + " thread" +
                  (info.threads == 1 ? "" : "s") + " of " + std::to_string(info.cores) + " cores, BLAS " +
                  info.blas_library + ", CUDA: ";
  s += info.cuda_available ? std::to_string(info.cuda_devices) + " device(s)" : "no";
  return s;
}

std::string runtime_warnings(const RuntimeInfo& info) {
  if (info.blas_is_reference)
    return "LibTorch is using the reference BLAS (" + info.blas_library +
           "), about 100x slower: install libopenblas0-openmp (scripts/setup.sh does)";
  if (info.blas_is_openblas_pthread)
    return "LibTorch is using the pthread OpenBLAS, which oversubscribes cores against LibTorch's threads: "
           "install libopenblas0-openmp";
  return "";
}

}  // namespace lriad::io
