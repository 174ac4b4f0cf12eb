// The compressive memory of Infini-attention as free functions: sigma, read, one-segment update,
// and the states before every segment of a sequence (prefix sum or a loop), for the three update rules
// and the optional write gate. fp32 islands.
// Not the attention layer (core/infini_attention.h) and not the streaming state (core/stream_state.h).
#pragma once
#include <torch/types.h>

#include "core/model_config.h"

namespace infini {

// sigma(x) = ELU(x) + 1: positive feature map applied to UN-rotated q and k.
torch::Tensor memory_sigma(const torch::Tensor& x);

// The feature map of a rule, applied to UN-rotated q and k: sigma for linear and delta, and
// x / |x| (unit length, along the last dimension) for unit_delta.
torch::Tensor memory_features(const torch::Tensor& x, MemoryUpdate rule);

// The read. linear, delta: A_mem = sq M / (sq z + eps); unit_delta: A_mem = sq M (no normaliser).
// sq (..., R, Dk), M (..., Dk, Dv), z (..., Dk) -> (..., R, Dv). With M = 0 and z = 0 it is exactly 0.
torch::Tensor memory_read(const torch::Tensor& sq, const torch::Tensor& M, const torch::Tensor& z, double eps,
                          MemoryUpdate rule);

// Folds one segment into memory. sk (..., N, Dk) the keys' features, v (..., N, Dv), and the write
// gate w (..., N) in (0, 1) (undefined: 1 for every token).
//   linear:     M' = M + (w sk)^T v
//   delta:      M' = M + (w sk)^T (v - sk M / (sk z + eps))
//   both:       z' = z + sum_n w[n] sk[n]
//   unit_delta: token by token, M_n = M_{n-1} + w[n] sk[n]^T (v[n] - sk[n] M_{n-1}); z unused (0).
//               Computed for the whole segment at once: U = (I + tril(diag(w) sk sk^T, -1))^-1
//               diag(w) (v - sk M), M' = M + sk^T U (a unit lower-triangular solve).
struct MemoryState {
  torch::Tensor M;  // (..., Dk, Dv)
  torch::Tensor z;  // (..., Dk)
};
MemoryState memory_update(const torch::Tensor& sk, const torch::Tensor& v, const MemoryState& s,
                          MemoryUpdate rule, double eps, const torch::Tensor& w = {});

// The state BEFORE each of S segments, starting from zero memory. sk (B, S, Hkv, N, Dk) fp32,
// v (B, S, Hkv, N, Dv) fp32, w (B, S, Hkv, N) or undefined -> M (B, S, Hkv, Dk, Dv), z (B, S, Hkv, Dk).
// linear: exclusive prefix sum over segments (one batched product, one cumsum);
// delta, unit_delta: a loop over segments (small matmuls only). detach: the states carry no gradient.
MemoryState memory_prefix_states(const torch::Tensor& sk, const torch::Tensor& v, MemoryUpdate rule,
                                 MemoryGradient gradient, double eps, const torch::Tensor& w = {});

// The same states packed as Mz = [M | z] (B, S, Hkv, Dk, Dv + 1): z is what M would be for a
// value column of ones, so one product updates both and one product reads both (unit_delta keeps
// the column at 0).
// `init` (B, Hkv, Dk, Dv + 1) is the state before segment 0 (undefined: zero memory), so a
// sequence can start where an earlier pass over its first segments left the memory. Under detach
// a gradient-carrying `init` reaches every state as the identity (the increments carry none).
// `keep` (B, S) float, packed rows only (core/packed_rows.h): the state before segment s is
// multiplied by keep[:, s], so a 0 empties the memory there; undefined: never emptied. Not with `init`.
torch::Tensor memory_prefix_packed(const torch::Tensor& sk, const torch::Tensor& v, MemoryUpdate rule,
                                   MemoryGradient gradient, double eps, const torch::Tensor& init = {},
                                   const torch::Tensor& w = {}, const torch::Tensor& keep = {});

// What each of S segments' write adds to the packed memory, taken from the state before it held
// fixed, summed over the segments: sum_s update(sk_s, v_s, sg(Mz_s)) - sg(Mz_s). sk (B, S, Hkv, N, Dk),
// v (B, S, Hkv, N, Dv), Mz (B, S, Hkv, Dk, Dv + 1) the states before each segment -> (B, Hkv, Dk, Dv + 1),
// with gradient to sk, v and w only. Under the linear rule the memory is the sum of these writes, so
// d(memory later)/d(writes) = I; under delta that identity is the straight-through approximation.
torch::Tensor memory_writes_packed(const torch::Tensor& sk, const torch::Tensor& v, const torch::Tensor& Mz,
                                   MemoryUpdate rule, double eps, const torch::Tensor& w = {});

// Folds one segment into a packed state: memory_update on Mz = [M | z]. sk (..., N, Dk),
// v (..., N, Dv), Mz (..., Dk, Dv + 1), w (..., N) or undefined -> the packed state after the segment.
torch::Tensor memory_update_packed(const torch::Tensor& sk, const torch::Tensor& v, const torch::Tensor& Mz,
                                   MemoryUpdate rule, double eps, const torch::Tensor& w = {});

// [M | z]: M (..., Dk, Dv), z (..., Dk) -> (..., Dk, Dv + 1), the packed layout above.
torch::Tensor memory_pack(const torch::Tensor& M, const torch::Tensor& z);

// memory_read on a packed state: sq (..., R, Dk), Mz (..., Dk, Dv + 1) -> (..., R, Dv).
torch::Tensor memory_read_packed(const torch::Tensor& sq, const torch::Tensor& Mz, double eps, MemoryUpdate rule);

}  // namespace infini
