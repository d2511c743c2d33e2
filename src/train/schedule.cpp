// Warmup + cosine learning-rate schedule.
#include "lriad/train/schedule.h"

#include <algorithm>
#include <cmath>

namespace lriad::train {

double lr_at(int step, int total_steps, int warmup_steps, double peak, double min_ratio) {
  if (warmup_steps > 0 && step < warmup_steps) return peak * double(step + 1) / double(warmup_steps);
  const int decay_steps = std::max(1, total_steps - warmup_steps);
  const double progress = std::clamp(double(step - warmup_steps) / double(decay_steps), 0.0, 1.0);
  const double cosine = 0.5 * (1.0 + std::cos(M_PI * progress));
  return peak * (min_ratio + (1.0 - min_ratio) * cosine);
}

}  // namespace lriad::train
