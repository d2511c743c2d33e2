// Learning-rate schedule: linear warmup, then cosine decay to min_ratio * peak.
#pragma once

namespace lriad::train {

inline constexpr double kMinLrRatio = 0.1;

// step counts from 0; returns the learning rate to use for that step.
double lr_at(int step, int total_steps, int warmup_steps, double peak, double min_ratio = kMinLrRatio);

}  // namespace lriad::train
