// Causal softmax attention inside one segment, for InfiniAttention's local part: two kernels with
// the same math. `matmul` (every LibTorch): scores, an fp32 masked softmax, a second product.
// `sdpa` (LibTorch >= 2.5): torch's scaled_dot_product_attention, which picks a fused kernel
// (flash / memory-efficient on CPU and CUDA) and never forms the scores in memory.
// Not the memory read or the gate (infini_attention.cpp), nor RoPE (rope.h).
#pragma once
#include <cstdint>

#include <torch/types.h>

namespace infini {

enum class AttentionKernel { matmul, sdpa };

// True when this LibTorch has scaled_dot_product_attention with grouped-query support (>= 2.5).
bool sdpa_available();

// The kernel every InfiniAttention uses: sdpa where available, else matmul. Process-wide, like
// LibTorch's own backend switches; set_attention_kernel(sdpa) without it throws.
AttentionKernel attention_kernel();
void set_attention_kernel(AttentionKernel k);
const char* attention_kernel_name(AttentionKernel k);

// q (X..., Hkv, G, L, Dh) rotated queries, grouped under their kv head (head h = kv * G + g);
// k, v (X..., Hkv, K, Dh). Query i sits at key position `offset + i` and sees keys 0..offset+i
// (offset = K - L: the queries are the last L positions). Scale 1/sqrt(Dh).
// -> (X..., Hkv, G * L, Dh) in the compute dtype (bf16 under autocast).
torch::Tensor local_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, int64_t offset);
// The same with a mask in place of the causal offset (packed rows, core/packed_rows.h): allowed
// (X..., L, K) bool, true where query i may attend key j; every query must allow at least one key.
torch::Tensor local_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                              const torch::Tensor& allowed);

}  // namespace infini
