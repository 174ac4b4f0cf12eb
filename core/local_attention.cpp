// The two local-attention kernels (see local_attention.h). The matmul kernel groups queries under
// their kv head so GQA needs no copy of K/V: (..., Hkv, G*L, Dh) x (..., Hkv, Dh, K).
#include "core/local_attention.h"

#include <atomic>
#include <cmath>
#include <limits>

#include <torch/torch.h>

#include "core/compat.h"
#include "core/error.h"

namespace infini {
namespace {

std::atomic<AttentionKernel>& kernel_slot() {
  static std::atomic<AttentionKernel> k{sdpa_available() ? AttentionKernel::sdpa : AttentionKernel::matmul};
  return k;
}

// Additive causal bias for query row r (position offset + r % rows, rows repeated `groups` times)
// and key j: 0 where j <= offset + r % rows, -inf after. -> (groups*rows, keys) of `dtype`.
torch::Tensor causal_bias(int64_t rows, int64_t keys, int64_t offset, int64_t groups, torch::ScalarType dtype,
                          torch::Device dev) {
  auto i64 = torch::TensorOptions().dtype(torch::kLong).device(dev);
  torch::Tensor qpos = (torch::arange(rows, i64) + offset).repeat({groups}).unsqueeze(1);  // (G*L, 1)
  torch::Tensor kpos = torch::arange(keys, i64).unsqueeze(0);                              // (1, K)
  return torch::zeros({groups * rows, keys}, torch::TensorOptions().dtype(dtype).device(dev))
      .masked_fill_(kpos > qpos, -std::numeric_limits<double>::infinity());
}

// softmax over keys of (scores + causal bias) in fp32 (fp64 in gradient checks). Adding the fp32
// bias to bf16 scores promotes them, so the upcast and the mask are one pass, and the backward of
// the addition is the identity (no masked copy of the gradient).
torch::Tensor masked_softmax(const torch::Tensor& scores, int64_t rows, int64_t keys, int64_t offset, int64_t groups) {
  compat::AutocastOff off;
  const auto dtype = scores.scalar_type() == torch::kDouble ? torch::kDouble : torch::kFloat;
  return torch::softmax(scores + causal_bias(rows, keys, offset, groups, dtype, scores.device()), -1);
}

// allowed: undefined (causal from `offset`) or (X..., L, K) bool.
torch::Tensor matmul_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                               int64_t offset, const torch::Tensor& allowed = {}) {
  const int64_t d = q.dim(), G = q.size(d - 3), L = q.size(d - 2), Dh = q.size(d - 1), K = k.size(-2);
  std::vector<int64_t> grouped(q.sizes().begin(), q.sizes().end() - 3);  // X..., Hkv
  grouped.insert(grouped.end(), {G * L, Dh});                             // (X..., Hkv, G*L, Dh)
  torch::Tensor qs = q.mul(1.0 / std::sqrt(static_cast<double>(Dh))).view(grouped);
  torch::Tensor scores = torch::matmul(qs, k.transpose(-1, -2));  // (X..., Hkv, G*L, K)
  if (!allowed.defined()) return torch::matmul(masked_softmax(scores, L, K, offset, G), v);
  torch::Tensor probs;
  {
    compat::AutocastOff off;
    const auto dtype = scores.scalar_type() == torch::kDouble ? torch::kDouble : torch::kFloat;
    // (X..., L, K) -> (X..., 1, G*L, K): the same mask for every kv head and every query group.
    std::vector<int64_t> expanded(allowed.sizes().begin(), allowed.sizes().end() - 2);  // X...
    std::vector<int64_t> grouped_bias = expanded;
    expanded.insert(expanded.end(), {1, G, L, K});
    grouped_bias.insert(grouped_bias.end(), {1, G * L, K});
    torch::Tensor bias = torch::zeros(allowed.sizes(), scores.options().dtype(dtype))
                             .masked_fill_(allowed.logical_not(), -std::numeric_limits<double>::infinity())
                             .unsqueeze(-3)
                             .unsqueeze(-3)
                             .expand(expanded)
                             .reshape(grouped_bias);
    probs = torch::softmax(scores + bias, -1);
  }
  return torch::matmul(probs, v);
}

#if INFINI_TORCH_AT_LEAST(2, 5)
torch::Tensor sdpa_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, int64_t offset,
                             const torch::Tensor& allowed = {}) {
  const int64_t d = q.dim(), Hkv = q.size(d - 4), G = q.size(d - 3), L = q.size(d - 2), Dh = q.size(d - 1);
  const int64_t K = k.size(-2);
  // (X, H, L, Dh) queries against (X, Hkv, K, Dh) keys: enable_gqa maps head h to kv head h / G.
  torch::Tensor q4 = q.reshape({-1, Hkv * G, L, Dh});
  torch::Tensor k4 = k.reshape({-1, Hkv, K, Dh});
  torch::Tensor v4 = v.reshape({-1, Hkv, K, Dh});
  torch::Tensor out;
  if (allowed.defined()) {  // (X..., L, K) -> (X, 1, L, K), the same for every head
    out = at::scaled_dot_product_attention(q4, k4, v4, allowed.reshape({-1, 1, L, K}), 0.0, false, {}, G > 1);
  } else if (offset == 0 && L == K) {
    out = at::scaled_dot_product_attention(q4, k4, v4, {}, 0.0, /*is_causal=*/true, {}, /*enable_gqa=*/G > 1);
  } else if (L == 1) {  // one query at the last position sees every key
    out = at::scaled_dot_product_attention(q4, k4, v4, {}, 0.0, false, {}, G > 1);
  } else {  // the last L of K positions: SDPA's is_causal aligns to the top-left corner, not this one
    auto i64 = torch::TensorOptions().dtype(torch::kLong).device(q.device());
    torch::Tensor allowed = torch::arange(K, i64).unsqueeze(0) <= (torch::arange(L, i64) + offset).unsqueeze(1);
    out = at::scaled_dot_product_attention(q4, k4, v4, allowed, 0.0, false, {}, G > 1);
  }
  std::vector<int64_t> shape(q.sizes().begin(), q.sizes().end() - 3);  // X..., Hkv
  shape.insert(shape.end(), {G * L, Dh});                            // (X..., Hkv, G*L, Dh)
  return out.reshape(shape);
}
#endif

}  // namespace

bool sdpa_available() { return INFINI_TORCH_AT_LEAST(2, 5); }

AttentionKernel attention_kernel() { return kernel_slot().load(); }

void set_attention_kernel(AttentionKernel k) {
  if (k == AttentionKernel::sdpa && !sdpa_available())
    throw Error("attention kernel sdpa: this LibTorch (" + compat::torch_version() +
                ") has no scaled_dot_product_attention with grouped queries (needs 2.5 or later); use matmul");
  kernel_slot().store(k);
}

const char* attention_kernel_name(AttentionKernel k) { return k == AttentionKernel::sdpa ? "sdpa" : "matmul"; }

torch::Tensor local_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                              int64_t offset) {
#if INFINI_TORCH_AT_LEAST(2, 5)
  if (attention_kernel() == AttentionKernel::sdpa) return sdpa_attention(q, k, v, offset);
#endif
  return matmul_attention(q, k, v, offset);
}

torch::Tensor local_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                              const torch::Tensor& allowed) {
#if INFINI_TORCH_AT_LEAST(2, 5)
  if (attention_kernel() == AttentionKernel::sdpa) return sdpa_attention(q, k, v, 0, allowed);
#endif
  return matmul_attention(q, k, v, 0, allowed);
}

}  // namespace infini
