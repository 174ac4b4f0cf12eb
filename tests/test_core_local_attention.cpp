// Local attention kernels: matmul (every LibTorch) and sdpa (LibTorch >= 2.5) against a per-row
// softmax written out by hand in fp64, and against each other: outputs, gradients, a whole model,
// and streaming. On a LibTorch without sdpa the comparisons that need it skip and say why.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include <torch/torch.h>

#include "core/compat.h"
#include "core/decoder.h"
#include "core/error.h"
#include "core/local_attention.h"
#include "support/small_model.h"

namespace {

using infini::AttentionKernel;

// Sets the process-wide kernel for a scope.
struct KernelScope {
  AttentionKernel prev;
  explicit KernelScope(AttentionKernel k) : prev(infini::attention_kernel()) { infini::set_attention_kernel(k); }
  ~KernelScope() { infini::set_attention_kernel(prev); }
};

double max_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kDouble) - b.to(torch::kDouble)).abs().max().item<double>();
}

// One query row at a time: softmax(q . k_j / sqrt(Dh)) over j <= offset + i, weights times v_j.
// q (X, Hkv, G, L, Dh), k and v (X, Hkv, K, Dh) -> (X, Hkv, G*L, Dh), in fp64.
torch::Tensor by_hand(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, int64_t offset) {
  auto qd = q.to(torch::kDouble), kd = k.to(torch::kDouble), vd = v.to(torch::kDouble);
  const int64_t X = q.size(0), Hkv = q.size(1), G = q.size(2), L = q.size(3), Dh = q.size(4);
  auto out = torch::zeros({X, Hkv, G * L, Dh}, torch::kDouble);
  auto qa = qd.accessor<double, 5>();
  auto ka = kd.accessor<double, 4>();
  auto va = vd.accessor<double, 4>();
  auto oa = out.accessor<double, 4>();
  for (int64_t x = 0; x < X; ++x)
    for (int64_t h = 0; h < Hkv; ++h)
      for (int64_t g = 0; g < G; ++g)
        for (int64_t i = 0; i < L; ++i) {
          const int64_t last = offset + i;
          std::vector<double> s(last + 1);
          double mx = -std::numeric_limits<double>::infinity(), sum = 0;
          for (int64_t j = 0; j <= last; ++j) {
            double d = 0;
            for (int64_t e = 0; e < Dh; ++e) d += qa[x][h][g][i][e] * ka[x][h][j][e];
            s[j] = d / std::sqrt(static_cast<double>(Dh));
            mx = std::max(mx, s[j]);
          }
          for (auto& e : s) sum += (e = std::exp(e - mx));
          for (int64_t j = 0; j <= last; ++j)
            for (int64_t e = 0; e < Dh; ++e) oa[x][h][g * L + i][e] += s[j] / sum * va[x][h][j][e];
        }
  return out;
}

struct Case {
  int64_t X, Hkv, G, L, K, Dh;
};
// Square causal segments (with and without grouped queries), one query after a cache, and the
// last few positions of a partial segment (the streaming shapes).
const Case kCases[] = {{3, 2, 1, 8, 8, 16}, {2, 2, 2, 8, 8, 16}, {2, 1, 4, 5, 5, 8},
                       {2, 2, 2, 1, 7, 16}, {1, 2, 2, 3, 8, 16}, {2, 1, 3, 4, 11, 8}};

torch::Tensor kernel_output(AttentionKernel kernel, const Case& c, uint64_t seed, torch::Tensor* grads = nullptr) {
  KernelScope scope(kernel);
  torch::manual_seed(seed);
  auto q = torch::randn({c.X, c.Hkv, c.G, c.L, c.Dh}).mul_(2).requires_grad_(grads != nullptr);
  auto k = torch::randn({c.X, c.Hkv, c.K, c.Dh}).mul_(2).requires_grad_(grads != nullptr);
  auto v = torch::randn({c.X, c.Hkv, c.K, c.Dh}).requires_grad_(grads != nullptr);
  torch::Tensor out = infini::local_attention(q, k, v, c.K - c.L);
  if (grads) {
    auto w = torch::randn(out.sizes(), torch::TensorOptions().dtype(out.scalar_type()));
    (out * w).sum().backward();
    *grads = torch::cat({q.grad().reshape({-1}), k.grad().reshape({-1}), v.grad().reshape({-1})});
  }
  return out.detach();
}

// GTEST_SKIP must stand in the test body itself, hence a macro.
#define SKIP_WITHOUT_SDPA()                                                                                      \
  if (!infini::sdpa_available())                                                                                  \
  GTEST_SKIP() << "LibTorch " << infini::compat::torch_version()                                                \
               << " has no scaled_dot_product_attention with grouped queries (2.5 or later): only matmul runs"

// The by-hand result for the inputs kernel_output draws from `seed`.
torch::Tensor by_hand_for(const Case& c, uint64_t seed) {
  torch::manual_seed(seed);
  auto q = torch::randn({c.X, c.Hkv, c.G, c.L, c.Dh}).mul_(2);
  auto k = torch::randn({c.X, c.Hkv, c.K, c.Dh}).mul_(2);
  auto v = torch::randn({c.X, c.Hkv, c.K, c.Dh});
  return by_hand(q, k, v, c.K - c.L);
}

TEST(LocalAttention, MatmulKernelEqualsTheSoftmaxByHand) {
  for (const Case& c : kCases) {
    torch::Tensor want = by_hand_for(c, 7);
    EXPECT_LE(max_diff(kernel_output(AttentionKernel::matmul, c, 7), want), 1e-5) << "L " << c.L << " K " << c.K;
  }
}

TEST(LocalAttention, SdpaKernelEqualsTheSoftmaxByHandAndTheMatmulKernel) {
  SKIP_WITHOUT_SDPA();
  for (const Case& c : kCases) {
    torch::Tensor want = by_hand_for(c, 7);
    torch::Tensor g_sdpa, g_matmul;
    torch::Tensor sdpa = kernel_output(AttentionKernel::sdpa, c, 7, &g_sdpa);
    EXPECT_LE(max_diff(sdpa, want), 1e-5) << "L " << c.L << " K " << c.K << " G " << c.G;
    EXPECT_LE(max_diff(sdpa, kernel_output(AttentionKernel::matmul, c, 7, &g_matmul)), 1e-5);
    EXPECT_LE(max_diff(g_sdpa, g_matmul), 1e-4) << "gradients, L " << c.L << " K " << c.K;  // sums of ~K terms
  }
}

TEST(LocalAttention, SdpaModelEqualsMatmulModelForwardAndBackward) {
  SKIP_WITHOUT_SDPA();
  auto run = [](AttentionKernel kernel, bool bf16, torch::Tensor* grad) {
    KernelScope scope(kernel);
    infini::Decoder m = infini::test::small_model(infini::MemoryUpdate::delta, 3);
    torch::manual_seed(11);
    torch::Tensor tok = torch::randint(0, 40, {2, 29}, torch::kLong);  // 3 segments and a part
    torch::Tensor logits;
    {
      infini::compat::AutocastGuard ac(bf16, torch::kCPU);
      logits = m->forward(tok);
    }
    logits.to(torch::kFloat).pow(2).mean().backward();
    *grad = m->blocks[0]->attention->wq->weight.grad().clone();
    return logits.detach().to(torch::kFloat);
  };
  torch::Tensor g_sdpa, g_matmul;
  torch::Tensor sdpa = run(AttentionKernel::sdpa, false, &g_sdpa);
  torch::Tensor matmul = run(AttentionKernel::matmul, false, &g_matmul);
  EXPECT_LE(max_diff(sdpa, matmul), 1e-5);
  EXPECT_LE(max_diff(g_sdpa, g_matmul), 1e-5 * std::max(1.0, g_matmul.abs().max().item<double>()));
  // bf16 autocast: both round q, k, v and the product to bf16; they differ by bf16 rounding only.
  torch::Tensor sdpa16 = run(AttentionKernel::sdpa, true, &g_sdpa);
  torch::Tensor matmul16 = run(AttentionKernel::matmul, true, &g_matmul);
  const double scale = matmul.abs().max().item<double>();
  EXPECT_LE(max_diff(sdpa16, matmul16), 0.03 * scale);
  EXPECT_LE(max_diff(sdpa16, matmul), 0.03 * scale);
}

TEST(LocalAttention, SdpaStreamingEqualsSdpaParallel) {
  SKIP_WITHOUT_SDPA();
  KernelScope scope(AttentionKernel::sdpa);
  infini::Decoder m = infini::test::small_model(infini::MemoryUpdate::linear, 5);
  torch::NoGradGuard ng;
  torch::Tensor tok = torch::randint(0, 40, {2, 30}, torch::kLong);
  torch::Tensor want = m->forward(tok);
  infini::StreamState st = m->new_state(2);
  std::vector<torch::Tensor> outs;
  int64_t at = 0;
  for (int64_t len : {3, 1, 9, 2, 15}) {  // pieces inside a segment, across one, one token
    outs.push_back(m->forward_stream(st, tok.narrow(1, at, len)));
    at += len;
  }
  EXPECT_LE(max_diff(torch::cat(outs, 1), want), 1e-5);
}

TEST(LocalAttention, KernelChoiceFollowsTheLibTorch) {
  EXPECT_EQ(infini::attention_kernel(), infini::sdpa_available() ? AttentionKernel::sdpa : AttentionKernel::matmul);
  EXPECT_EQ(infini::sdpa_available(), INFINI_TORCH_AT_LEAST(2, 5));
  if (!infini::sdpa_available()) {
    try {
      infini::set_attention_kernel(AttentionKernel::sdpa);
      FAIL() << "sdpa was accepted on LibTorch " << infini::compat::torch_version();
    } catch (const infini::Error& e) {
      EXPECT_NE(std::string(e.what()).find("needs 2.5 or later"), std::string::npos) << e.what();
    }
    EXPECT_EQ(infini::attention_kernel(), AttentionKernel::matmul);
  }
}

}  // namespace
