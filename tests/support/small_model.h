// Test helper: a small Infini-Transformer (2 layers, GQA, segments of 8) with random gates, for
// property tests that need a model but no reference values (core and trainer tests).
// Header-only, like the other helpers here.
#pragma once
#include <cstdint>

#include <torch/torch.h>

#include "core/decoder.h"

namespace infini::test {

inline ModelConfig small_config(MemoryUpdate rule, MemoryGradient gradient = MemoryGradient::bptt) {
  ModelConfig c;
  c.vocab_size = 40;
  c.d_model = 24;
  c.n_layers = 2;
  c.n_heads = 4;
  c.n_kv_heads = 2;
  c.ffn_hidden = 40;
  c.segment_len = 8;
  c.init_std = 0.2;  // large enough that memory and attention patterns are far from uniform
  c.memory.update = rule;
  c.memory.gradient = gradient;
  return c;
}

// A decoder of small_config with random gates (so both attention paths matter).
inline Decoder small_model(MemoryUpdate rule, uint64_t seed, MemoryGradient gradient = MemoryGradient::bptt) {
  torch::manual_seed(seed);
  Decoder m(small_config(rule, gradient));
  torch::NoGradGuard ng;
  for (auto& b : m->blocks) b->attention->gate.normal_(0, 1);
  return m;
}

}  // namespace infini::test
