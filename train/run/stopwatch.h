// Wall-clock seconds on the steady clock, for the throughput and timing figures of benchmarks,
// evaluations and PPO's time split. Nothing else.
#pragma once
#include <chrono>

namespace infini {

inline double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace infini
