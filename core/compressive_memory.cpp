// Compressive memory arithmetic (docs/design.md: the read and the update rules). Callers pass fp32
// (or fp64) tensors and run these outside autocast; M and z never see bf16.
#include "core/compressive_memory.h"

#include <vector>

namespace infini {

namespace {

// [t | c]: a column of c appended to the last dimension.
torch::Tensor with_column(const torch::Tensor& t, double c) { return torch::constant_pad_nd(t, {0, 1}, c); }

// Keys scaled by their tokens' write gate: sk (..., N, Dk), w (..., N) or undefined.
torch::Tensor gated(const torch::Tensor& sk, const torch::Tensor& w) { return w.defined() ? sk * w.unsqueeze(-1) : sk; }

// unit_delta inside one segment: U with M_N = M_0 + sk^T U after the N token-by-token writes
// u_n = w_n (rhs_n - sum_{m<n} (sk_n . sk_m) u_m), i.e. (I + diag(w) tril(sk sk^T, -1)) U = diag(w) rhs.
// sk (..., N, Dk), rhs (..., N, C), w (..., N) or undefined -> U (..., N, C).
torch::Tensor unit_delta_solve(const torch::Tensor& sk, const torch::Tensor& rhs, const torch::Tensor& w) {
  torch::Tensor lower = torch::tril(torch::matmul(sk, sk.transpose(-1, -2)), -1);  // (..., N, N), zero diagonal
  torch::Tensor b = rhs;
  if (w.defined()) {
    lower = lower * w.unsqueeze(-1);
    b = b * w.unsqueeze(-1);
  }
  // unitriangular: the solver takes the diagonal as ones and reads only the strictly lower part.
  return torch::linalg_solve_triangular(lower, b, /*upper=*/false, /*left=*/true, /*unitriangular=*/true);
}

}  // namespace

torch::Tensor memory_sigma(const torch::Tensor& x) { return torch::elu(x) + 1.0; }

torch::Tensor memory_features(const torch::Tensor& x, MemoryUpdate rule) {
  if (rule != MemoryUpdate::unit_delta) return memory_sigma(x);
  // x / |x|; the 1e-12 keeps a zero vector (and its gradient) finite and is far below any |x|^2 in use.
  return x * torch::rsqrt(x.pow(2).sum(-1, /*keepdim=*/true) + 1e-12);
}

torch::Tensor memory_read(const torch::Tensor& sq, const torch::Tensor& M, const torch::Tensor& z, double eps,
                          MemoryUpdate rule) {
  torch::Tensor num = torch::matmul(sq, M);  // (..., R, Dv)
  if (rule == MemoryUpdate::unit_delta) return num;
  torch::Tensor den = torch::matmul(sq, z.unsqueeze(-1)) + eps;  // (..., R, 1): one scalar per row
  return num / den;
}

torch::Tensor memory_read_packed(const torch::Tensor& sq, const torch::Tensor& Mz, double eps, MemoryUpdate rule) {
  const int64_t Dv = Mz.size(-1) - 1;
  if (rule == MemoryUpdate::unit_delta) return torch::matmul(sq, Mz.narrow(-1, 0, Dv));
  torch::Tensor r = torch::matmul(sq, Mz);  // (..., R, Dv + 1): [sq M | sq z]
  return r.narrow(-1, 0, Dv) / (r.narrow(-1, Dv, 1) + eps);
}

torch::Tensor memory_update_packed(const torch::Tensor& sk, const torch::Tensor& v, const torch::Tensor& Mz,
                                   MemoryUpdate rule, double eps, const torch::Tensor& w) {
  switch (rule) {
    case MemoryUpdate::linear:
      return Mz + torch::matmul(gated(sk, w).transpose(-1, -2), with_column(v, 1.0));  // [v | 1]
    case MemoryUpdate::delta: {
      torch::Tensor write = v - memory_read_packed(sk, Mz, eps, rule);  // what the memory does not yet return
      return Mz + torch::matmul(gated(sk, w).transpose(-1, -2), with_column(write, 1.0));
    }
    case MemoryUpdate::unit_delta: {
      // The value column [v | 0] keeps z at 0.
      torch::Tensor U = unit_delta_solve(sk, with_column(v, 0.0) - torch::matmul(sk, Mz), w);
      return Mz + torch::matmul(sk.transpose(-1, -2), U);
    }
  }
  TORCH_CHECK(false, "memory_update_packed: unknown rule");
}

MemoryState memory_update(const torch::Tensor& sk, const torch::Tensor& v, const MemoryState& s,
                          MemoryUpdate rule, double eps, const torch::Tensor& w) {
  // The packed update's arithmetic on M and z as they are (the streaming path keeps them apart).
  if (rule == MemoryUpdate::unit_delta)
    return {s.M + torch::matmul(sk.transpose(-1, -2), unit_delta_solve(sk, v - torch::matmul(sk, s.M), w)), s.z};
  const torch::Tensor write = rule == MemoryUpdate::delta ? v - memory_read(sk, s.M, s.z, eps, rule) : v;
  const torch::Tensor gk = gated(sk, w);
  return {s.M + torch::matmul(gk.transpose(-1, -2), write), s.z + gk.sum(-2)};
}

torch::Tensor memory_pack(const torch::Tensor& M, const torch::Tensor& z) {
  return torch::cat({M, z.unsqueeze(-1)}, -1);
}

namespace {

torch::Tensor prefix_states(const torch::Tensor& sk, const torch::Tensor& v, MemoryUpdate rule, double eps,
                            const torch::Tensor& init, const torch::Tensor& w, const torch::Tensor& keep) {
  const int64_t S = sk.size(1);
  // The last segment's own write is never read by this sequence, so it is left out everywhere.
  auto head = [&](const torch::Tensor& t) { return t.defined() ? t.narrow(1, 0, S - 1) : t; };

  // The state before segment s, emptied where keep[:, s] is 0 (packed rows).
  auto kept = [&](const torch::Tensor& Mz, int64_t s) {
    return keep.defined() ? Mz * keep.select(1, s).view({-1, 1, 1, 1}) : Mz;
  };
  if (rule == MemoryUpdate::linear && !keep.defined()) {
    // Segment s sees the sum of segments 0..s-1: shift the inclusive cumsum by one segment.
    torch::Tensor kv = torch::matmul(gated(head(sk), head(w)).transpose(-1, -2),
                                     with_column(head(v), 1.0));  // (B, S-1, Hkv, Dk, Dv+1)
    torch::Tensor states = torch::constant_pad_nd(kv.cumsum(1), {0, 0, 0, 0, 0, 0, 1, 0});
    return init.defined() ? states + init.unsqueeze(1) : states;
  }

  const int64_t B = sk.size(0), H = sk.size(2), Dk = sk.size(4), Dv = v.size(4);
  torch::Tensor Mz = init.defined() ? init : torch::zeros({B, H, Dk, Dv + 1}, sk.options());
  if (keep.defined()) Mz = kept(Mz, 0);
  std::vector<torch::Tensor> states{Mz};
  if (rule == MemoryUpdate::unit_delta && S > 1) {
    // Each segment's update is affine in the state before it: with [W | Y] = the solve of
    // [v | 0 | sk], U = W - Y Mz, so Mz' = Mz + sk^T W - (sk^T Y) Mz. Every segment's sk^T W and
    // sk^T Y in one batched solve; the loop is then one (Dk x Dk)(Dk x Dv+1) product per segment.
    const torch::Tensor k = head(sk);
    torch::Tensor WY = unit_delta_solve(k, torch::cat({with_column(head(v), 0.0), k}, -1), head(w));
    torch::Tensor kT = k.transpose(-1, -2);
    torch::Tensor KW = torch::matmul(kT, WY.narrow(-1, 0, Dv + 1));  // (B, S-1, Hkv, Dk, Dv+1)
    torch::Tensor KY = torch::matmul(kT, WY.narrow(-1, Dv + 1, Dk));  // (B, S-1, Hkv, Dk, Dk)
    for (int64_t s = 0; s + 1 < S; ++s) {
      Mz = kept(Mz + KW.select(1, s) - torch::matmul(KY.select(1, s), Mz), s + 1);
      states.push_back(Mz);
    }
    return torch::stack(states, 1);
  }

  // delta (and linear with emptied states): M_s depends on M_{s-1} non-linearly; loop, collecting
  // the state before each segment.
  for (int64_t s = 0; s + 1 < S; ++s) {
    Mz = kept(memory_update_packed(sk.select(1, s), v.select(1, s), Mz, rule, eps, w.defined() ? w.select(1, s) : w),
              s + 1);  // (B, Hkv, Dk, Dv+1)
    states.push_back(Mz);
  }
  return torch::stack(states, 1);
}

}  // namespace

torch::Tensor memory_prefix_packed(const torch::Tensor& sk, const torch::Tensor& v, MemoryUpdate rule,
                                   MemoryGradient gradient, double eps, const torch::Tensor& init,
                                   const torch::Tensor& w, const torch::Tensor& keep) {
  TORCH_CHECK(!(init.defined() && keep.defined()),
              "memory_prefix_packed: `keep` (packed rows) starts from empty memory");
  if (gradient == MemoryGradient::bptt) return prefix_states(sk, v, rule, eps, init, w, keep);
  torch::Tensor states;
  {
    torch::NoGradGuard no_grad;
    states = prefix_states(sk, v, rule, eps, init, w, keep);
  }
  // detach, from an `init` that carries gradient: every state passes it on unchanged (value + 0).
  if (init.defined() && init.requires_grad()) states = states + (init - init.detach()).unsqueeze(1);
  return states;
}

torch::Tensor memory_writes_packed(const torch::Tensor& sk, const torch::Tensor& v, const torch::Tensor& Mz,
                                   MemoryUpdate rule, double eps, const torch::Tensor& w) {
  torch::Tensor before = Mz.detach();
  return (memory_update_packed(sk, v, before, rule, eps, w) - before).sum(1);
}

MemoryState memory_prefix_states(const torch::Tensor& sk, const torch::Tensor& v, MemoryUpdate rule,
                                 MemoryGradient gradient, double eps, const torch::Tensor& w) {
  torch::Tensor Mz = memory_prefix_packed(sk, v, rule, gradient, eps, {}, w, {});
  const int64_t Dv = v.size(-1);
  return {Mz.narrow(-1, 0, Dv), Mz.select(-1, Dv)};
}

}  // namespace infini
