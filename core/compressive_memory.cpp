// Compressive memory arithmetic (INFINI_ATTENTION.md steps 2-3). Callers pass fp32 (or fp64)
// tensors and run these outside autocast; M and z never see bf16.
#include "core/compressive_memory.h"

#include <optional>
#include <vector>

namespace infini {

torch::Tensor memory_sigma(const torch::Tensor& x) { return torch::elu(x) + 1.0; }

torch::Tensor memory_read(const torch::Tensor& sq, const torch::Tensor& M, const torch::Tensor& z,
                          double eps) {
  torch::Tensor num = torch::matmul(sq, M);                    // (..., R, Dv)
  torch::Tensor den = torch::matmul(sq, z.unsqueeze(-1)) + eps;  // (..., R, 1): one scalar per row
  return num / den;
}

MemoryState memory_update(const torch::Tensor& sk, const torch::Tensor& v, const MemoryState& s,
                          MemoryUpdate rule, double eps) {
  torch::Tensor skT = sk.transpose(-1, -2);  // (..., Dk, N)
  torch::Tensor write = v;                   // (..., N, Dv)
  if (rule == MemoryUpdate::delta) write = v - memory_read(sk, s.M, s.z, eps);
  return {s.M + torch::matmul(skT, write), s.z + sk.sum(-2)};
}

MemoryState memory_prefix_states(const torch::Tensor& sk, const torch::Tensor& v, MemoryUpdate rule,
                                 MemoryGradient gradient, double eps) {
  const int64_t S = sk.size(1);
  std::optional<torch::NoGradGuard> no_grad;
  if (gradient == MemoryGradient::detach) no_grad.emplace();

  if (rule == MemoryUpdate::linear) {
    // Segment s sees the sum of segments 0..s-1: shift the inclusive cumsum by one segment.
    // The last segment's own contribution is never read, so it is left out of the products.
    torch::Tensor skh = sk.narrow(1, 0, S - 1);                           // (B, S-1, Hkv, N, Dk)
    torch::Tensor kv = torch::matmul(skh.transpose(-1, -2), v.narrow(1, 0, S - 1));  // (B, S-1, Hkv, Dk, Dv)
    torch::Tensor ks = skh.sum(-2);                                       // (B, S-1, Hkv, Dk)
    torch::Tensor M = torch::constant_pad_nd(kv.cumsum(1), {0, 0, 0, 0, 0, 0, 1, 0});
    torch::Tensor z = torch::constant_pad_nd(ks.cumsum(1), {0, 0, 0, 0, 1, 0});
    return {M, z};
  }

  // delta: M_s depends on M_{s-1} non-linearly; loop, collecting the state before each segment.
  const int64_t B = sk.size(0), H = sk.size(2), Dk = sk.size(4), Dv = v.size(4);
  MemoryState st{torch::zeros({B, H, Dk, Dv}, sk.options()), torch::zeros({B, H, Dk}, sk.options())};
  std::vector<torch::Tensor> Ms{st.M}, zs{st.z};
  for (int64_t s = 0; s + 1 < S; ++s) {
    st = memory_update(sk.select(1, s), v.select(1, s), st, rule, eps);  // (B, Hkv, N, Dk)
    Ms.push_back(st.M);
    zs.push_back(st.z);
  }
  return {torch::stack(Ms, 1), torch::stack(zs, 1)};
}

}  // namespace infini
