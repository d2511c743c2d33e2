// Mixed precision: a scoped bf16 autocast for CPU or CUDA, behind one class because the
// LibTorch API changed between 1.x (set_cpu_enabled) and 2.4+ (set_autocast_enabled(device)).
#pragma once
#include <c10/core/Device.h>

namespace lriad::model {

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
