// splitmix64: mixes a seed with counters (epoch, case index) into an independent RNG seed.
// Deterministic across platforms; not a random generator by itself.
#pragma once
#include <cstdint>

namespace infini {

inline uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

}  // namespace infini
