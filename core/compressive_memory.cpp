// Compressive memory arithmetic (docs/design.md: the read and the update). Callers pass fp32 (or fp64)
// tensors and run these outside autocast; M and z never see bf16.
#include "core/compressive_memory.h"

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

torch::Tensor memory_read_packed(const torch::Tensor& sq, const torch::Tensor& Mz, double eps) {
  const int64_t Dv = Mz.size(-1) - 1;
  torch::Tensor r = torch::matmul(sq, Mz);                 // (..., R, Dv + 1): [sq M | sq z]
  return r.narrow(-1, 0, Dv) / (r.narrow(-1, Dv, 1) + eps);
}

torch::Tensor memory_update_packed(const torch::Tensor& sk, const torch::Tensor& v, const torch::Tensor& Mz,
                                   MemoryUpdate rule, double eps) {
  torch::Tensor write = rule == MemoryUpdate::delta ? v - memory_read_packed(sk, Mz, eps) : v;
  return Mz + torch::matmul(sk.transpose(-1, -2), torch::constant_pad_nd(write, {0, 1}, 1.0));  // [write | 1]
}

torch::Tensor memory_pack(const torch::Tensor& M, const torch::Tensor& z) {
  return torch::cat({M, z.unsqueeze(-1)}, -1);
}

namespace {

torch::Tensor prefix_states(const torch::Tensor& sk, const torch::Tensor& v, MemoryUpdate rule, double eps,
                            const torch::Tensor& init) {
  const int64_t S = sk.size(1);
  auto with_ones = [](const torch::Tensor& t) { return torch::constant_pad_nd(t, {0, 1}, 1.0); };  // [t | 1]

  if (rule == MemoryUpdate::linear) {
    // Segment s sees the sum of segments 0..s-1: shift the inclusive cumsum by one segment.
    // The last segment's own contribution is never read, so it is left out of the products.
    torch::Tensor skh = sk.narrow(1, 0, S - 1);                                                // (B, S-1, Hkv, N, Dk)
    torch::Tensor kv = torch::matmul(skh.transpose(-1, -2), with_ones(v.narrow(1, 0, S - 1)));  // (B, S-1, Hkv, Dk, Dv+1)
    torch::Tensor states = torch::constant_pad_nd(kv.cumsum(1), {0, 0, 0, 0, 0, 0, 1, 0});
    return init.defined() ? states + init.unsqueeze(1) : states;
  }

  // delta: M_s depends on M_{s-1} non-linearly; loop, collecting the state before each segment.
  const int64_t B = sk.size(0), H = sk.size(2), Dk = sk.size(4), Dv = v.size(4);
  torch::Tensor Mz = init.defined() ? init : torch::zeros({B, H, Dk, Dv + 1}, sk.options());
  std::vector<torch::Tensor> states{Mz};
  for (int64_t s = 0; s + 1 < S; ++s) {
    Mz = memory_update_packed(sk.select(1, s), v.select(1, s), Mz, rule, eps);  // (B, Hkv, Dk, Dv+1)
    states.push_back(Mz);
  }
  return torch::stack(states, 1);
}

}  // namespace

torch::Tensor memory_prefix_packed(const torch::Tensor& sk, const torch::Tensor& v, MemoryUpdate rule,
                                   MemoryGradient gradient, double eps, const torch::Tensor& init) {
  if (gradient == MemoryGradient::bptt) return prefix_states(sk, v, rule, eps, init);
  torch::Tensor states;
  {
    torch::NoGradGuard no_grad;
    states = prefix_states(sk, v, rule, eps, init);
  }
  // detach, from an `init` that carries gradient: every state passes it on unchanged (value + 0).
  if (init.defined() && init.requires_grad()) states = states + (init - init.detach()).unsqueeze(1);
  return states;
}

torch::Tensor memory_writes_packed(const torch::Tensor& sk, const torch::Tensor& v, const torch::Tensor& Mz,
                                   MemoryUpdate rule, double eps) {
  torch::Tensor before = Mz.detach();
  return (memory_update_packed(sk, v, before, rule, eps) - before).sum(1);
}

MemoryState memory_prefix_states(const torch::Tensor& sk, const torch::Tensor& v, MemoryUpdate rule,
                                 MemoryGradient gradient, double eps) {
  torch::Tensor Mz = memory_prefix_packed(sk, v, rule, gradient, eps);
  const int64_t Dv = v.size(-1);
  return {Mz.narrow(-1, 0, Dv), Mz.select(-1, Dv)};
}

}  // namespace infini
