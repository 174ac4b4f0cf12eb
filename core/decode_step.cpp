// The fast one-token step (core/decode_step.h). Layout of the caches: (B, Hkv, N, Dh) contiguous,
// so row b, kv head j, position p starts at ((b * Hkv + j) * N + p) * Dh. Query heads are grouped
// under their kv head (h = j * G + g), as in core/infini_attention.cpp, so the per-head tensors
// (B, Hkv, G, Dh) are the attention output's (B, H * Dh) layout as they stand.
#include "core/decode_step.h"

#include <atomic>
#include <cmath>

#include <ATen/Parallel.h>

#include "core/compat.h"
#include "core/compressive_memory.h"
#include "core/decoder.h"
#include "core/few_rows_matmul.h"
#include "core/rope.h"

namespace infini {
namespace {

std::atomic<bool> g_enabled{true};

// The RoPE tables of one segment, kept between steps (they depend on the shape only).
struct SegmentRope {
  int64_t n = 0, dh = 0;
  double theta = 0.0;
  torch::Tensor cos, sin;  // (N, Dh/2) fp32
};

const SegmentRope& segment_rope(int64_t n, int64_t dh, double theta) {
  thread_local SegmentRope r;
  if (r.n != n || r.dh != dh || r.theta != theta) {
    const RopeTables t = rope_tables(0, n, dh, theta);
    r = {n, dh, theta, t.cos.contiguous(), t.sin.contiguous()};
  }
  return r;
}

// y = x rsqrt(mean(x^2) + eps) w for each of the B rows of x (B, D); y may be x.
void rms_norm(const float* x, const float* w, float* y, int64_t B, int64_t D, double eps) {
  for (int64_t b = 0; b < B; ++b) {
    const float* xb = x + b * D;
    float* yb = y + b * D;
    double ss = 0.0;
    for (int64_t d = 0; d < D; ++d) ss += static_cast<double>(xb[d]) * xb[d];
    const float inv = 1.0f / std::sqrt(static_cast<float>(ss / static_cast<double>(D)) + static_cast<float>(eps));
    for (int64_t d = 0; d < D; ++d) yb[d] = xb[d] * inv * w[d];
  }
}

// One head vector x (Dh) rotated to the position whose table rows are c, s (Dh/2); y may not be x.
void rotate(const float* x, const float* c, const float* s, float* y, int64_t half) {
  for (int64_t i = 0; i < half; ++i) {
    const float x0 = x[2 * i], x1 = x[2 * i + 1];
    y[2 * i] = x0 * c[i] - x1 * s[i];
    y[2 * i + 1] = x0 * s[i] + x1 * c[i];
  }
}

// x W^T for x (B, in) and a Linear's weight W (out, in); with `into`, added to it in place.
torch::Tensor project(const torch::Tensor& x, const torch::Tensor& W, torch::Tensor into = {}) {
  if (x.size(0) <= kFewRows) return few_rows_matmul(x, W, into);
  return into.defined() ? into.addmm_(x, W.t()) : torch::mm(x, W.t());
}

// fn(r) for every (row, kv head) r in [0, B * Hkv): each one's small products, over the threads.
template <class Fn>
void for_each_head(int64_t rows, const Fn& fn) {
  at::parallel_for(0, rows, 8, [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) fn(r);
  });
}

bool fp32_cpu(const torch::Tensor& t) {
  return t.defined() && t.device().is_cpu() && t.scalar_type() == torch::kFloat;
}

bool plain_weight(const torch::Tensor& w) { return fp32_cpu(w) && w.is_contiguous(); }

bool plain(const Linear& l) { return plain_weight(l->weight) && !l->has_adapter(); }

// Makes a state tensor contiguous in place (they are made so; a caller's slice may not be).
float* own(torch::Tensor& t) {
  if (!t.is_contiguous()) t = t.contiguous();
  return t.data_ptr<float>();
}

}  // namespace

void set_decode_step_enabled(bool on) { g_enabled = on; }
bool decode_step_enabled() { return g_enabled; }

bool decode_step_applies(const DecoderImpl& m, const torch::Tensor& tokens) {
  if (!g_enabled || tokens.dim() != 2 || tokens.size(1) != 1 || !tokens.device().is_cpu()) return false;
  if (at::GradMode::is_enabled() || compat::autocast_active()) return false;
  if (!fp32_cpu(m.tok_embeddings->weight) || !m.tok_embeddings->weight.is_contiguous() || !fp32_cpu(m.norm->weight))
    return false;
  if (m.output && !plain_weight(m.output->weight)) return false;
  for (const auto& blk : m.blocks) {
    const auto& a = blk->attention;
    if (!plain(a->wq) || !plain(a->wk) || !plain(a->wv) || !plain(a->wo)) return false;
    const auto& f = blk->feed_forward;
    if (!plain(f->w1) || !plain(f->w2) || !plain(f->w3)) return false;
    if (!fp32_cpu(blk->attention_norm->weight) || !fp32_cpu(blk->ffn_norm->weight)) return false;
  }
  return true;
}

torch::Tensor decode_step(DecoderImpl& m, StreamState& st, const torch::Tensor& tokens) {
  const ModelConfig& c = m.config();
  const int64_t B = tokens.size(0), D = c.d_model, H = c.n_heads, Hkv = c.kv_heads(), G = H / Hkv;
  const int64_t Dh = c.head_dim(), N = c.segment_len, half = Dh / 2;
  const int64_t pos = st.position(), K = pos + 1;  // keys visible: the segment so far, this token's included
  const bool memory = c.memory.enabled;
  const MemoryUpdate rule = c.memory.update;
  const SegmentRope& rope = segment_rope(N, Dh, c.rope_theta);
  const float* cos_p = rope.cos.data_ptr<float>() + pos * half;
  const float* sin_p = rope.sin.data_ptr<float>() + pos * half;
  const float scale = 1.0f / std::sqrt(static_cast<float>(Dh));
  auto f32 = torch::TensorOptions().dtype(torch::kFloat);

  // The residual stream (B, D), a fresh copy of the embeddings that the blocks add to in place.
  torch::Tensor x = m.tok_embeddings->weight.index_select(0, tokens.reshape({B}).to(torch::kLong));
  float* xp = x.data_ptr<float>();
  torch::Tensor xn = torch::empty({B, D}, f32), qr = torch::empty({B, Hkv, G, Dh}, f32);

  for (size_t li = 0; li < m.blocks.size(); ++li) {
    const auto& blk = m.blocks[li];
    const auto& attn = blk->attention;
    LayerStreamState& ls = st.layers[li];
    float* kc = own(ls.k_cache);
    float* krc = own(ls.kr_cache);
    float* vc = own(ls.v_cache);

    rms_norm(xp, blk->attention_norm->weight.data_ptr<float>(), xn.data_ptr<float>(), B, D, blk->attention_norm->eps);
    const torch::Tensor q = project(xn, attn->wq->weight);  // (B, H*Dh), un-rotated
    const torch::Tensor k = project(xn, attn->wk->weight);  // (B, Hkv*Dh)
    const torch::Tensor v = project(xn, attn->wv->weight);
    const float *qp = q.data_ptr<float>(), *kp = k.data_ptr<float>(), *vp = v.data_ptr<float>();
    float* qrp = qr.data_ptr<float>();
    for (int64_t b = 0; b < B; ++b)
      for (int64_t j = 0; j < Hkv; ++j) {
        const int64_t row = b * Hkv + j, at_pos = (row * N + pos) * Dh;
        std::copy(kp + row * Dh, kp + (row + 1) * Dh, kc + at_pos);
        std::copy(vp + row * Dh, vp + (row + 1) * Dh, vc + at_pos);
        rotate(kp + row * Dh, cos_p, sin_p, krc + at_pos, half);
        for (int64_t g = 0; g < G; ++g) rotate(qp + (row * G + g) * Dh, cos_p, sin_p, qrp + (row * G + g) * Dh, half);
      }
    if (attn->write_gate.defined()) {  // w = sigmoid(xn W^T + b), one per row and kv head
      const torch::Tensor w =
          torch::sigmoid(torch::addmm(attn->write_gate_bias, xn, attn->write_gate.t()));  // (B, Hkv)
      ls.w_cache.select(2, pos).copy_(w);
    }

    // Local attention over the segment so far: scores, softmax, values.
    // Each (row, kv head) is its own small product: G queries against its K keys and values.
    torch::Tensor s = torch::empty({B, Hkv, G, K}, f32);
    float* sp = s.data_ptr<float>();
    for_each_head(B * Hkv, [&](int64_t r) {
      few_rows_times_transposed(qrp + r * G * Dh, G, krc + r * N * Dh, K, Dh, sp + r * G * K);
    });
    const torch::Tensor p = torch::softmax(s.mul_(scale), -1);  // (B, Hkv, G, K)
    const float* pp = p.data_ptr<float>();
    torch::Tensor a = torch::empty({B, Hkv, G, Dh}, f32);
    float* ap = a.data_ptr<float>();
    for_each_head(B * Hkv, [&](int64_t r) {
      few_rows_times(pp + r * G * K, G, vc + r * N * Dh, K, Dh, ap + r * G * Dh);
    });

    if (memory) {
      const torch::Tensor sq = memory_features(q.view({B, Hkv, G, Dh}), rule).contiguous();  // un-rotated q
      const float* sqp = sq.data_ptr<float>();
      torch::Tensor num = torch::empty({B, Hkv, G, Dh}, f32);  // sq M
      float* np = num.data_ptr<float>();
      const float* Mp = own(ls.M);
      for_each_head(B * Hkv, [&](int64_t r) {
        few_rows_times(sqp + r * G * Dh, G, Mp + r * Dh * Dh, Dh, Dh, np + r * G * Dh);
      });
      const float* zp = rule == MemoryUpdate::unit_delta ? nullptr : own(ls.z);
      const float* gp = attn->gate.data_ptr<float>();
      for (int64_t b = 0; b < B; ++b)
        for (int64_t j = 0; j < Hkv; ++j)
          for (int64_t g = 0; g < G; ++g) {
            const int64_t r = (b * Hkv + j) * G + g;
            float den = 1.0f;  // unit_delta reads sq M as it is
            if (zp) {
              double d = 0.0;
              for (int64_t i = 0; i < Dh; ++i) d += static_cast<double>(sqp[r * Dh + i]) * zp[(b * Hkv + j) * Dh + i];
              den = static_cast<float>(d) + static_cast<float>(c.memory_eps);
            }
            const float gate = 1.0f / (1.0f + std::exp(-gp[j * G + g]));
            for (int64_t i = 0; i < Dh; ++i)
              ap[r * Dh + i] = gate * (np[r * Dh + i] / den) + (1.0f - gate) * ap[r * Dh + i];
          }
      if (K == N && !st.no_memory) {  // the segment is complete: fold it into memory, exactly once
        const MemoryState next = memory_update(memory_features(ls.k_cache, rule), ls.v_cache, {ls.M, ls.z}, rule,
                                               c.memory_eps, ls.w_cache);
        ls.M = next.M;
        ls.z = next.z;
      }
    }
    project(a.view({B, H * Dh}), attn->wo->weight, x);  // x += attention's output

    const auto& ff = blk->feed_forward;
    rms_norm(xp, blk->ffn_norm->weight.data_ptr<float>(), xn.data_ptr<float>(), B, D, blk->ffn_norm->eps);
    torch::Tensor h1 = project(xn, ff->w1->weight);  // (B, F)
    const torch::Tensor h3 = project(xn, ff->w3->weight);
    torch::silu_(h1).mul_(h3);
    project(h1, ff->w2->weight, x);  // x += SwiGLU's output
  }
  st.tokens_seen += 1;
  torch::Tensor y = torch::empty({B, 1, D}, f32);
  rms_norm(xp, m.norm->weight.data_ptr<float>(), y.data_ptr<float>(), B, D, m.norm->eps);
  return y;
}

torch::Tensor decode_logits(const torch::Tensor& hidden, const torch::Tensor& weight) {
  const int64_t B = hidden.size(0);
  return project(hidden.reshape({B, -1}).contiguous(), weight).view({B, 1, -1});
}

}  // namespace infini
