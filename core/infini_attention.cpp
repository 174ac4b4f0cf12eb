// InfiniAttention forward passes. Layout trick: query heads are grouped under their kv head,
// (B, S, Hkv, G*N, Dh), so the memory read and GQA are single batched matmuls without repeating
// K/V; the local attention is core/local_attention.h. Memory, gate and softmax run as fp32
// islands under bf16 autocast.
#include "core/infini_attention.h"

#include <optional>

#include "core/compat.h"
#include "core/compressive_memory.h"
#include "core/local_attention.h"
#include "core/precision.h"
#include "core/rope.h"

namespace infini {

InfiniAttentionImpl::InfiniAttentionImpl(const ModelConfig& c) : cfg(c) {
  const int64_t D = cfg.d_model, Dh = cfg.head_dim(), H = cfg.n_heads, Hkv = cfg.kv_heads();
  wq = register_module("wq", Linear(D, H * Dh));
  wk = register_module("wk", Linear(D, Hkv * Dh));
  wv = register_module("wv", Linear(D, Hkv * Dh));
  wo = register_module("wo", Linear(H * Dh, D));
  if (cfg.memory.enabled) gate = register_parameter("gate", torch::full({H}, cfg.gate_init, torch::kFloat));
  if (cfg.memory.enabled && cfg.memory.write_gate) {
    // Zero weights: every token starts with the same open gate, and no random draw is taken.
    write_gate = register_parameter("write_gate", torch::zeros({Hkv, D}, torch::kFloat));
    write_gate_bias =
        register_parameter("write_gate_bias", torch::full({Hkv}, cfg.memory.write_gate_bias, torch::kFloat));
  }
}

torch::Tensor InfiniAttentionImpl::write_gate_of(const torch::Tensor& x) const {
  if (!write_gate.defined()) return {};
  return torch::sigmoid(torch::linear(upcast(x), write_gate, write_gate_bias));
}

torch::Tensor InfiniAttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& mem0, torch::Tensor* mem_after,
                                          torch::Tensor* writes, const PackedRows* packed) {
  return forward_parts(x, false, mem0, mem_after, writes, packed).out;
}

AttentionParts InfiniAttentionImpl::forward_parts(const torch::Tensor& x, bool keep_parts, const torch::Tensor& mem0,
                                                  torch::Tensor* mem_after, torch::Tensor* writes,
                                                  const PackedRows* packed) {
  TORCH_CHECK(!packed || (!mem0.defined() && !mem_after && !writes),
              "InfiniAttention: packed rows start from empty memory and return none");
  const int64_t B = x.size(0), T = x.size(1), N = cfg.segment_len;
  const int64_t H = cfg.n_heads, Hkv = cfg.kv_heads(), G = H / Hkv, Dh = cfg.head_dim();
  const int64_t S = (T + N - 1) / N, P = S * N;
  // Zero-pad the last partial segment: padded keys sit after every real query (masked causally)
  // and the last segment is never written into memory that anyone reads.
  torch::Tensor xp = P == T ? x : torch::constant_pad_nd(x, {0, 0, 0, P - T});  // (B, P, D)

  torch::Tensor q = wq(xp).reshape({B, S, N, Hkv, G, Dh}).permute({0, 1, 3, 4, 2, 5});  // (B, S, Hkv, G, N, Dh)
  torch::Tensor k = wk(xp).reshape({B, S, N, Hkv, Dh}).permute({0, 1, 3, 2, 4});        // (B, S, Hkv, N, Dh)
  torch::Tensor v = wv(xp).reshape({B, S, N, Hkv, Dh}).permute({0, 1, 3, 2, 4});        // (B, S, Hkv, N, Dh)

  RopeTables rope = rope_tables(0, N, Dh, cfg.rope_theta, x.device());
  torch::Tensor a_dot;  // (B, S, Hkv, G*N, Dh)
  if (packed) {
    // Each token's own table row: (B, S, 1, N, Dh/2) for the keys, one more 1 for the query groups.
    torch::Tensor idx = packed->rope_pos.reshape({-1});
    auto rows = [&](const torch::Tensor& table, int64_t ones) {
      std::vector<int64_t> shape{B, S};
      shape.insert(shape.end(), ones, 1);
      shape.insert(shape.end(), {N, Dh / 2});
      return table.index_select(0, idx).view(shape);
    };
    const RopeTables rk{rows(rope.cos, 1), rows(rope.sin, 1)}, rq{rows(rope.cos, 2), rows(rope.sin, 2)};
    a_dot = local_attention(apply_rope(q, rq), apply_rope(k, rk), v, packed->attend);
  } else {
    a_dot = local_attention(apply_rope(q, rope), apply_rope(k, rope), v, 0);
  }

  torch::Tensor a = a_dot, a_mem;
  if (cfg.memory.enabled) {
    compat::AutocastOff off;
    const MemoryUpdate rule = cfg.memory.update;
    torch::Tensor sq = memory_features(upcast(q), rule).reshape({B, S, Hkv, G * N, Dh});  // un-rotated q
    torch::Tensor sk = memory_features(upcast(k), rule);                                   // (B, S, Hkv, N, Dh)
    torch::Tensor w = write_gate_of(xp);                                                  // (B, P, Hkv) or undefined
    if (w.defined()) w = w.reshape({B, S, N, Hkv}).permute({0, 1, 3, 2});                 // (B, S, Hkv, N)
    torch::Tensor Mz = memory_prefix_packed(sk, upcast(v), rule, cfg.memory.gradient, cfg.memory_eps, mem0, w,
                                            packed ? packed->keep : torch::Tensor());  // [M | z] before each segment
    a_mem = memory_read_packed(sq, Mz, cfg.memory_eps, rule);  // (B, S, Hkv, G*N, Dh)
    if (packed)  // tokens whose record began in this segment read nothing, as from an empty memory
      a_mem = (a_mem.view({B, S, Hkv, G, N, Dh}) * packed->reads.view({B, S, 1, 1, N, 1})).view({B, S, Hkv, G * N, Dh});
    if (mem_after || writes) {
      TORCH_CHECK(P == T, "InfiniAttention: the memory after a sequence needs whole segments, got ", T,
                  " tokens for segments of ", N);
    }
    if (writes) *writes = memory_writes_packed(sk, upcast(v), Mz, rule, cfg.memory_eps, w);
    if (mem_after) {
      std::optional<torch::NoGradGuard> no_grad;
      if (cfg.memory.gradient == MemoryGradient::detach) no_grad.emplace();
      *mem_after = memory_update_packed(sk.select(1, S - 1), upcast(v.select(1, S - 1)), Mz.select(1, S - 1), rule,
                                        cfg.memory_eps, w.defined() ? w.select(1, S - 1) : w);
    }
    torch::Tensor g = torch::sigmoid(gate).view({Hkv, G, 1, 1});
    // g a_mem + (1 - g) a_dot, then back to the compute dtype before the layout change.
    a = torch::lerp(upcast(a_dot).view({B, S, Hkv, G, N, Dh}), a_mem.view({B, S, Hkv, G, N, Dh}), g)
            .to(a_dot.scalar_type());
  }

  // Back to (B, T, H*Dh), heads in order h = kv * G + g.
  auto to_btd = [&](const torch::Tensor& t) {
    return t.reshape({B, S, Hkv, G, N, Dh}).permute({0, 1, 4, 2, 3, 5}).reshape({B, P, H * Dh});
  };
  AttentionParts parts;
  parts.out = wo(to_btd(a).narrow(1, 0, T));
  if (keep_parts) {
    parts.a_dot = to_btd(a_dot).narrow(1, 0, T).view({B, T, H, Dh});
    if (a_mem.defined()) parts.a_mem = to_btd(a_mem).narrow(1, 0, T).view({B, T, H, Dh});
  }
  return parts;
}

torch::Tensor InfiniAttentionImpl::forward_stream(const torch::Tensor& x, LayerStreamState& st,
                                                  int64_t pos, bool no_memory) {
  const int64_t N = cfg.segment_len, t = x.size(1);
  std::vector<torch::Tensor> outs;
  for (int64_t i = 0; i < t;) {
    const int64_t L = std::min(t - i, N - pos);
    outs.push_back(stream_piece(x.narrow(1, i, L), st, pos, no_memory));
    i += L;
    pos = (pos + L) % N;
  }
  return outs.size() == 1 ? outs[0] : torch::cat(outs, 1);
}

// One piece that stays inside one segment: x (B, L, D) at segment positions [pos, pos + L).
torch::Tensor InfiniAttentionImpl::stream_piece(const torch::Tensor& x, LayerStreamState& st,
                                                int64_t pos, bool no_memory) {
  const int64_t B = x.size(0), L = x.size(1), N = cfg.segment_len;
  const int64_t H = cfg.n_heads, Hkv = cfg.kv_heads(), G = H / Hkv, Dh = cfg.head_dim();
  const int64_t K = pos + L;  // keys visible: the segment so far

  torch::Tensor q = wq(x).reshape({B, L, Hkv, G, Dh}).permute({0, 2, 3, 1, 4});  // (B, Hkv, G, L, Dh)
  torch::Tensor k = wk(x).reshape({B, L, Hkv, Dh}).permute({0, 2, 1, 3});        // (B, Hkv, L, Dh)
  torch::Tensor v = wv(x).reshape({B, L, Hkv, Dh}).permute({0, 2, 1, 3});        // (B, Hkv, L, Dh)
  st.k_cache.narrow(2, pos, L).copy_(k);
  st.v_cache.narrow(2, pos, L).copy_(v);
  if (st.w_cache.defined()) {
    compat::AutocastOff off;
    st.w_cache.narrow(2, pos, L).copy_(write_gate_of(x).permute({0, 2, 1}));  // (B, Hkv, L)
  }
  // The new keys are rotated once, at their own positions; earlier ones were rotated when they came.
  const RopeTables rope = rope_tables(pos, L, Dh, cfg.rope_theta, x.device());
  st.kr_cache.narrow(2, pos, L).copy_(apply_rope(k, rope));
  torch::Tensor kr = st.kr_cache.narrow(2, 0, K);  // (B, Hkv, K, Dh)
  torch::Tensor vc = st.v_cache.narrow(2, 0, K);

  torch::Tensor qr = apply_rope(q, rope);                  // (B, Hkv, G, L, Dh)
  torch::Tensor a_dot = local_attention(qr, kr, vc, pos);  // (B, Hkv, G*L, Dh)

  torch::Tensor a = a_dot;
  if (cfg.memory.enabled) {
    compat::AutocastOff off;
    const MemoryUpdate rule = cfg.memory.update;
    torch::Tensor sq = memory_features(upcast(q), rule).reshape({B, Hkv, G * L, Dh});
    torch::Tensor a_mem = memory_read(sq, st.M, st.z, cfg.memory_eps, rule);  // (B, Hkv, G*L, Dh)
    torch::Tensor g = torch::sigmoid(gate).view({Hkv, G, 1, 1});
    a = g * a_mem.view({B, Hkv, G, L, Dh}) + (1 - g) * upcast(a_dot).view({B, Hkv, G, L, Dh});
    if (K == N && !no_memory) {
      // The segment is complete: fold it into memory, exactly once.
      MemoryState s = memory_update(memory_features(st.k_cache, rule), st.v_cache, {st.M, st.z}, rule,
                                    cfg.memory_eps, st.w_cache);
      st.M = s.M;
      st.z = s.z;
    }
  }
  torch::Tensor out = a.reshape({B, Hkv, G, L, Dh}).permute({0, 3, 1, 2, 4}).reshape({B, L, H * Dh});
  return wo(out);
}

}  // namespace infini
