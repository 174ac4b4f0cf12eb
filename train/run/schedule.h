// The learning-rate schedule: linear warm-up, then cosine, linear or constant decay to min_lr.
// A pure function of the step, so resuming needs only the step number.
#pragma once
#include <cmath>
#include <cstdint>

#include "train/config/config.h"

namespace infini {

// lr for optimizer step `step` (1-based: the first update uses lr_at(1)).
inline double lr_at(const ScheduleConfig& s, double peak, int64_t max_steps, int64_t step) {
  if (s.warmup_steps > 0 && step <= s.warmup_steps)
    return peak * static_cast<double>(step) / static_cast<double>(s.warmup_steps);
  if (s.decay == Decay::constant) return peak;
  const int64_t span = std::max<int64_t>(1, max_steps - s.warmup_steps);
  const double progress = std::min(1.0, static_cast<double>(step - s.warmup_steps) / static_cast<double>(span));
  const double k = s.decay == Decay::linear ? 1.0 - progress : 0.5 * (1.0 + std::cos(M_PI * progress));
  return s.min_lr + (peak - s.min_lr) * k;
}

}  // namespace infini
