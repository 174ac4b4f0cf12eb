// FLOP counts of the decoder, for MFU and benchmark GFLOP/s. Counting convention:
// a multiply-add is 2 FLOPs; forward = 2 x (matmul params) per token + attention scores and values
// (local, within a segment: 2 x 2 x n_layers x d_model x min(seq, segment_len)/2 on average causal)
// + memory read/update (2 x 2 x n_layers x n_kv x Dh x Dh; unit_delta's solve and the write gate
// on top); training = 3 x forward (backward = 2x).
#pragma once
#include <algorithm>
#include <cstdint>

#include "core/model_config.h"

namespace infini {

inline double forward_flops_per_token(const ModelConfig& c, int64_t seq_len) {
  const double D = static_cast<double>(c.d_model), L = static_cast<double>(c.n_layers);
  const double Dh = static_cast<double>(c.head_dim()), H = static_cast<double>(c.n_heads);
  const double Hkv = static_cast<double>(c.kv_heads()), F = static_cast<double>(c.ffn_dim());
  const double V = static_cast<double>(c.vocab_size);
  const double proj = D * (H * Dh) * 2 + D * (Hkv * Dh) * 2;  // wq, wo, wk, wv
  const double ffn = 3 * D * F;
  const double matmul_params = L * (proj + ffn) + D * V;       // + LM head
  const double ctx = static_cast<double>(std::min(seq_len, c.segment_len)) / 2.0;  // mean causal span
  const double attn = L * 2 * 2 * H * Dh * ctx;                // scores + weighted values
  double memory = c.memory.enabled ? L * 2 * 2 * H * Dh * Dh + L * 2 * 2 * Hkv * Dh * Dh : 0.0;
  if (c.memory.enabled && c.memory.update == MemoryUpdate::unit_delta) {
    // Per token and kv head: its row of k k^T (segment keys), its row of the triangular solve over
    // 2 Dh + 1 right-hand sides (mean span seg/2), and its share of k^T [W | Y].
    const double seg = static_cast<double>(std::min(seq_len, c.segment_len));
    memory += L * 2 * Hkv * (seg * Dh + seg / 2.0 * (2 * Dh + 1) + Dh * (2 * Dh + 1));
  }
  if (c.memory.enabled && c.memory.write_gate) memory += L * 2 * D * Hkv;  // the write gate's logits
  return 2 * matmul_params + attn + memory;
}

inline double training_flops_per_token(const ModelConfig& c, int64_t seq_len) {
  return 3 * forward_flops_per_token(c, seq_len);
}

}  // namespace infini
