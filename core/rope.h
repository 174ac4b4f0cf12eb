// Rotary position embedding over ADJACENT pairs (x[2i], x[2i+1]) as in llama2.c / Meta's LLaMA.
// Not the "rotate half" (GPT-NeoX / HF) layout: weights converted from llama2.c rely on this one.
#pragma once
#include <torch/types.h>

namespace infini {

// cos and sin tables for positions [start, start + count): each (count, Dh/2), fp32,
// angle = pos * theta^(-2i/Dh) computed in fp64 then rounded once.
struct RopeTables {
  torch::Tensor cos, sin;
};
RopeTables rope_tables(int64_t start, int64_t count, int64_t head_dim, double theta,
                       torch::Device device = torch::kCPU);

// x (..., P, Dh) with the positions on dim -2 (P == tables' count) -> rotated, same shape/dtype.
// Pair (x0, x1) becomes (x0 cos - x1 sin, x0 sin + x1 cos).
torch::Tensor apply_rope(const torch::Tensor& x, const RopeTables& t);

}  // namespace infini
