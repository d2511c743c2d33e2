// LibTorch process set-up: threads, BLAS detection via the loaded shared objects, CUDA.
#include "lriad/io/runtime.h"

#include <link.h>
#include <sched.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
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

std::string read_cpuinfo() {
  std::ifstream in("/proc/cpuinfo");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The words of the first line of `text` whose key (before ':') is `key`, space-padded for matching.
std::string first_field(const std::string& text, const std::string& key) {
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string k = line.substr(0, colon);
    while (!k.empty() && (k.back() == ' ' || k.back() == '\t')) k.pop_back();
    if (k == key) return " " + line.substr(colon + 1) + " ";
  }
  return "";
}

}  // namespace

std::string native_bf16_flags(const std::string& cpuinfo) {
  std::string out;
  const auto add = [&out](const std::string& words, const char* flag) {
    if (words.find(std::string(" ") + flag + " ") == std::string::npos) return;
    out += (out.empty() ? "" : " ") + std::string(flag);
  };
  const std::string x86 = first_field(cpuinfo, "flags"), arm = first_field(cpuinfo, "Features");
  add(x86, "avx512_bf16");
  add(x86, "amx_bf16");
  add(arm, "bf16");
  return out;
}

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
  info.cpu_bf16 = native_bf16_flags(read_cpuinfo());
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
                  info.blas_library + ", native bf16: " + (info.cpu_bf16.empty() ? "no" : info.cpu_bf16) + ", CUDA: ";
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
