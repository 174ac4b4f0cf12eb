// Validation and enum names of ModelConfig.
// Parsing from YAML is not here (train/config/config.cpp); this is pure arithmetic checks.
#include "core/model_config.h"

#include <cmath>

#include <fmt/format.h>

namespace infini {

std::string ModelConfig::validate() const {
  if (vocab_size < 2) return fmt::format("model.vocab_size must be >= 2, found {}", vocab_size);
  if (d_model < 1) return fmt::format("model.d_model must be >= 1, found {}", d_model);
  if (n_layers < 1) return fmt::format("model.n_layers must be >= 1, found {}", n_layers);
  if (n_heads < 1) return fmt::format("model.n_heads must be >= 1, found {}", n_heads);
  if (d_model % n_heads != 0)
    return fmt::format("model.d_model ({}) must be divisible by model.n_heads ({})", d_model, n_heads);
  if (head_dim() % 2 != 0)
    return fmt::format("model.d_model / model.n_heads must be even for RoPE, found {}", head_dim());
  if (n_kv_heads < 0) return fmt::format("model.n_kv_heads must be >= 0, found {}", n_kv_heads);
  if (n_heads % kv_heads() != 0)
    return fmt::format("model.n_heads ({}) must be divisible by model.n_kv_heads ({})", n_heads, kv_heads());
  if (ffn_hidden < 0) return fmt::format("model.ffn_hidden must be >= 0, found {}", ffn_hidden);
  if (!(norm_eps > 0)) return fmt::format("model.norm_eps must be > 0, found {}", norm_eps);
  if (!(rope_theta > 0)) return fmt::format("model.rope_theta must be > 0, found {}", rope_theta);
  if (segment_len < 1) return fmt::format("model.segment_len must be >= 1, found {}", segment_len);
  if (!(init_std > 0)) return fmt::format("model.init_std must be > 0, found {}", init_std);
  if (!(memory_eps > 0)) return fmt::format("model.memory_eps must be > 0, found {}", memory_eps);
  if (!std::isfinite(memory.write_gate_bias))
    return fmt::format("model.memory.write_gate_bias must be a finite number, found {}", memory.write_gate_bias);
  return "";
}

const char* to_string(MemoryUpdate u) {
  switch (u) {
    case MemoryUpdate::linear: return "linear";
    case MemoryUpdate::delta: return "delta";
    case MemoryUpdate::unit_delta: return "unit_delta";
  }
  return "?";
}
const char* to_string(MemoryGradient g) { return g == MemoryGradient::bptt ? "bptt" : "detach"; }

bool parse_memory_update(const std::string& s, MemoryUpdate* out) {
  if (s == "linear") { *out = MemoryUpdate::linear; return true; }
  if (s == "delta") { *out = MemoryUpdate::delta; return true; }
  if (s == "unit_delta") { *out = MemoryUpdate::unit_delta; return true; }
  return false;
}

bool parse_memory_gradient(const std::string& s, MemoryGradient* out) {
  if (s == "bptt") { *out = MemoryGradient::bptt; return true; }
  if (s == "detach") { *out = MemoryGradient::detach; return true; }
  return false;
}

}  // namespace infini
