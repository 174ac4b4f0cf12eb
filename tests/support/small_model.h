// Test helper: a small Infini-Transformer (2 layers, GQA, segments of 8) with random gates, for
// property tests that need a model but no reference values (core and trainer tests).
// Header-only, like the other helpers here.
#pragma once
#include <cstdint>
#include <string>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "core/decoder.h"

namespace infini::test {

// The memory's variants the property tests run over: an update rule, with or without a write gate.
struct MemoryVariant {
  MemoryUpdate update = MemoryUpdate::delta;
  bool write_gate = false;
};

// "delta", "unit_delta_write_gate", ...: a test name's suffix.
inline std::string variant_name(const MemoryVariant& v) {
  return std::string(to_string(v.update)) + (v.write_gate ? "_write_gate" : "");
}

// Every variant, for INSTANTIATE_TEST_SUITE_P(..., all_memory_variants(), variant_param_name).
inline auto all_memory_variants() {
  return ::testing::Values(MemoryVariant{MemoryUpdate::linear, false}, MemoryVariant{MemoryUpdate::delta, false},
                           MemoryVariant{MemoryUpdate::unit_delta, false}, MemoryVariant{MemoryUpdate::linear, true},
                           MemoryVariant{MemoryUpdate::delta, true}, MemoryVariant{MemoryUpdate::unit_delta, true});
}
inline std::string variant_param_name(const ::testing::TestParamInfo<MemoryVariant>& i) {
  return variant_name(i.param);
}

inline ModelConfig small_config(MemoryVariant variant, MemoryGradient gradient = MemoryGradient::bptt) {
  ModelConfig c;
  c.vocab_size = 40;
  c.d_model = 24;
  c.n_layers = 2;
  c.n_heads = 4;
  c.n_kv_heads = 2;
  c.ffn_hidden = 40;
  c.segment_len = 8;
  c.init_std = 0.2;  // large enough that memory and attention patterns are far from uniform
  c.memory.update = variant.update;
  c.memory.write_gate = variant.write_gate;
  c.memory.gradient = gradient;
  return c;
}
inline ModelConfig small_config(MemoryUpdate rule, MemoryGradient gradient = MemoryGradient::bptt) {
  return small_config(MemoryVariant{rule, false}, gradient);
}

// A decoder of small_config with random gates (so both attention paths matter) and, with a write
// gate, random write gates (each token's between about 0.1 and 0.9, so the gate matters too).
inline Decoder small_model(MemoryVariant variant, uint64_t seed, MemoryGradient gradient = MemoryGradient::bptt) {
  torch::manual_seed(seed);
  Decoder m(small_config(variant, gradient));
  torch::NoGradGuard ng;
  for (auto& b : m->blocks) {
    b->attention->gate.normal_(0, 1);
    if (b->attention->write_gate.defined()) {
      b->attention->write_gate.normal_(0, 0.5);
      b->attention->write_gate_bias.normal_(0, 0.5);
    }
  }
  return m;
}
inline Decoder small_model(MemoryUpdate rule, uint64_t seed, MemoryGradient gradient = MemoryGradient::bptt) {
  return small_model(MemoryVariant{rule, false}, seed, gradient);
}

}  // namespace infini::test
