// Scoped bf16 autocast across LibTorch versions.
#include "lriad/model/precision.h"

#include <ATen/autocast_mode.h>
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

}  // namespace

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
