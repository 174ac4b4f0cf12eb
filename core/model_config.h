// ModelConfig: the shape of an Infini-Transformer decoder, a plain struct with commented defaults.
// Not parsed here: YAML lives in train/config.*; this file only knows sizes and their validation.
#pragma once
#include <cstdint>
#include <string>

namespace infini {

enum class MemoryUpdate { linear, delta, unit_delta };
enum class MemoryGradient { bptt, detach };

struct MemoryConfig {
  bool enabled = true;                          // false: segment-local attention only (a LLaMA)
  MemoryUpdate update = MemoryUpdate::delta;    // linear | delta | unit_delta (docs/design.md, memory update)
  MemoryGradient gradient = MemoryGradient::bptt;  // bptt: gradients flow across segments
  bool write_gate = false;        // a learned per-token, per-kv-head gate on every write (docs/design.md)
  double write_gate_bias = 4.0;   // the write gate's initial logit: sigmoid(4) = 0.98, open
};

struct ModelConfig {
  int64_t vocab_size = 512;      // tokens in the vocabulary, e.g. 32000
  int64_t d_model = 64;          // residual width, e.g. 768
  int64_t n_layers = 2;          // decoder blocks
  int64_t n_heads = 4;           // query heads; d_model % n_heads == 0
  int64_t n_kv_heads = 0;        // key/value heads (GQA); 0 = n_heads; n_heads % n_kv_heads == 0
  int64_t ffn_hidden = 0;        // SwiGLU width; 0 = 8/3 * d_model rounded up to a multiple of 64
  double norm_eps = 1e-5;        // RMSNorm epsilon
  double rope_theta = 10000.0;   // RoPE base
  int64_t segment_len = 64;      // N: tokens per segment of local attention
  MemoryConfig memory;           // the compressive memory
  double gate_init = 0.0;        // initial beta; sigmoid(0) = 0.5 mixes memory and local equally
  bool tie_embeddings = false;   // LM head shares the token embedding
  double init_std = 0.02;        // normal init of weights (residual outputs / sqrt(2 n_layers))
  double memory_eps = 1e-6;      // guard of the memory normaliser sigma(q) z + eps

  int64_t kv_heads() const { return n_kv_heads > 0 ? n_kv_heads : n_heads; }
  int64_t head_dim() const { return d_model / n_heads; }
  int64_t ffn_dim() const { return ffn_hidden > 0 ? ffn_hidden : ((8 * d_model / 3 + 63) / 64) * 64; }

  // Returns "" when the config is consistent, else one sentence naming the key, e.g.
  // "model.d_model (100) must be divisible by model.n_heads (3)".
  std::string validate() const;
};

const char* to_string(MemoryUpdate u);
const char* to_string(MemoryGradient g);
// Parse "linear"/"delta"/"unit_delta" and "bptt"/"detach"; false when the text names none of them.
bool parse_memory_update(const std::string& s, MemoryUpdate* out);
bool parse_memory_gradient(const std::string& s, MemoryGradient* out);

// Field list for generic config code (YAML parsing, printing, overrides live in train/config/config.cpp).
// v(name, field, comment) for a value; v.section(name, sub) for a nested struct.
template <class V> void visit_fields(MemoryConfig& c, V& v) {
  v("enabled", c.enabled, "false: segment-local attention only (a LLaMA)");
  v("update", c.update, "linear | delta | unit_delta");
  v("gradient", c.gradient, "bptt (through time) | detach (memory detached between segments)");
  v("write_gate", c.write_gate, "learned per-token gate on the memory writes");
  v("write_gate_bias", c.write_gate_bias, "initial logit of the write gate (4: open)");
}

template <class V> void visit_fields(ModelConfig& c, V& v) {
  v("vocab_size", c.vocab_size, "tokens in the vocabulary");
  v("d_model", c.d_model, "residual width");
  v("n_layers", c.n_layers, "decoder blocks");
  v("n_heads", c.n_heads, "query heads");
  v("n_kv_heads", c.n_kv_heads, "key/value heads (GQA); 0 = n_heads");
  v("ffn_hidden", c.ffn_hidden, "SwiGLU width; 0 = 8/3 d_model rounded up to 64");
  v("norm_eps", c.norm_eps, "RMSNorm epsilon");
  v("rope_theta", c.rope_theta, "RoPE base");
  v("segment_len", c.segment_len, "tokens per segment of local attention");
  v.section("memory", c.memory);
  v("gate_init", c.gate_init, "initial memory gate beta (sigmoid(0) = 0.5)");
  v("tie_embeddings", c.tie_embeddings, "LM head shares the token embedding");
  v("init_std", c.init_std, "std of the normal weight init");
  v("memory_eps", c.memory_eps, "guard of the memory normaliser");
}

}  // namespace infini
