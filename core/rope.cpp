// RoPE tables and rotation (adjacent pairs). Positions are chosen by the caller: Infini-attention
// uses the index inside the segment. Not applied to the memory path (docs/design.md).
#include "core/rope.h"

namespace infini {

RopeTables rope_tables(int64_t start, int64_t count, int64_t head_dim, double theta,
                       torch::Device device) {
  auto f64 = torch::TensorOptions().dtype(torch::kDouble);
  torch::Tensor i = torch::arange(0, head_dim, 2, f64);                  // (Dh/2)
  torch::Tensor freq = torch::pow(theta, -i / static_cast<double>(head_dim));
  torch::Tensor pos = torch::arange(start, start + count, f64);          // (P)
  torch::Tensor ang = torch::outer(pos, freq);                            // (P, Dh/2)
  return {ang.cos().to(torch::kFloat).to(device), ang.sin().to(torch::kFloat).to(device)};
}

torch::Tensor apply_rope(const torch::Tensor& x, const RopeTables& t) {
  const int64_t dh = x.size(-1);
  torch::Tensor c = t.cos.to(x.scalar_type());  // (P, Dh/2)
  torch::Tensor s = t.sin.to(x.scalar_type());
  torch::Tensor xp = x.unflatten(-1, {dh / 2, 2});  // (..., P, Dh/2, 2)
  torch::Tensor x0 = xp.select(-1, 0), x1 = xp.select(-1, 1);
  torch::Tensor r0 = x0 * c - x1 * s;
  torch::Tensor r1 = x0 * s + x1 * c;
  return torch::stack({r0, r1}, -1).flatten(-2);
}

}  // namespace infini
