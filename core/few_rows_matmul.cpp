// The few-rows product (core/few_rows_matmul.h). The loop body is written once, with GCC's vector
// extension (8 floats), and compiled twice: for AVX2 + FMA, and for the baseline instruction set;
// the first is taken when the CPU reports both. Per weight row the 8-lane partial sums are added in a
// fixed order, so a row's result does not depend on the thread count.
#include "core/few_rows_matmul.h"

#include <algorithm>
#include <cstring>

#include <ATen/Parallel.h>

namespace infini {
namespace {

typedef float v8 __attribute__((vector_size(32)));

// y[b, o] (+)= x[b] . W[o] for NB rows of x (xb, row stride I) and the NW weight rows from o:
// NW x NB partial sums in registers, each loaded vector used NB or NW times.
template <int NB, int NW>
__attribute__((always_inline)) inline void few_rows_tile(const float* xb, const float* W, float* yb, int64_t I,
                                                         int64_t O, int64_t o, bool acc) {
  const int64_t I8 = I - I % 8;
  v8 s[NW][NB];
#pragma GCC unroll 2
  for (int k = 0; k < NW; ++k)
#pragma GCC unroll 8
    for (int j = 0; j < NB; ++j) s[k][j] = v8{0, 0, 0, 0, 0, 0, 0, 0};
  for (int64_t d = 0; d < I8; d += 8) {
    v8 w[NW];
#pragma GCC unroll 2
    for (int k = 0; k < NW; ++k) std::memcpy(&w[k], W + (o + k) * I + d, sizeof(v8));
#pragma GCC unroll 8
    for (int j = 0; j < NB; ++j) {
      v8 xv;
      std::memcpy(&xv, xb + j * I + d, sizeof xv);
#pragma GCC unroll 2
      for (int k = 0; k < NW; ++k) s[k][j] += w[k] * xv;
    }
  }
#pragma GCC unroll 2
  for (int k = 0; k < NW; ++k)
#pragma GCC unroll 8
    for (int j = 0; j < NB; ++j) {
      const v8& v = s[k][j];
      float r = ((v[0] + v[1]) + (v[2] + v[3])) + ((v[4] + v[5]) + (v[6] + v[7]));
      const float* wr = W + (o + k) * I;
      for (int64_t d = I8; d < I; ++d) r += wr[d] * xb[j * I + d];
      float& out = yb[j * O + o + k];
      out = acc ? out + r : r;
    }
}

// Weight rows [o0, o1) against NB rows of x: two weight rows at a time, then an odd last one.
template <int NB>
__attribute__((always_inline)) inline void few_rows_block(const float* xb, const float* W, float* yb, int64_t I,
                                                          int64_t O, int64_t o0, int64_t o1, bool acc) {
  int64_t o = o0;
  for (; o + 1 < o1; o += 2) few_rows_tile<NB, 2>(xb, W, yb, I, O, o, acc);
  if (o < o1) few_rows_tile<NB, 1>(xb, W, yb, I, O, o, acc);
}

// Weight rows [o0, o1) for every row of x: 32 weight rows at a time (they stay in cache) against
// the rows of x in groups of up to 6 (12 partial sums, 2 weight vectors and 1 of x: 15 of AVX2's 16
// vector registers).
__attribute__((always_inline)) inline void few_rows_span(const float* x, int64_t B, const float* W, float* y, int64_t I,
                                                int64_t O, int64_t o0, int64_t o1, bool acc) {
  for (int64_t oc = o0; oc < o1; oc += 32) {
    const int64_t oe = std::min(o1, oc + 32);
    for (int64_t b0 = 0; b0 < B; b0 += 6) {
      const float* xb = x + b0 * I;
      float* yb = y + b0 * O;
      switch (std::min<int64_t>(6, B - b0)) {
        case 1: few_rows_block<1>(xb, W, yb, I, O, oc, oe, acc); break;
        case 2: few_rows_block<2>(xb, W, yb, I, O, oc, oe, acc); break;
        case 3: few_rows_block<3>(xb, W, yb, I, O, oc, oe, acc); break;
        case 4: few_rows_block<4>(xb, W, yb, I, O, oc, oe, acc); break;
        case 5: few_rows_block<5>(xb, W, yb, I, O, oc, oe, acc); break;
        default: few_rows_block<6>(xb, W, yb, I, O, oc, oe, acc); break;
      }
    }
  }
}

// y (B, O) = x (B, I) A for A (I, O) row-major: each row of A scaled into every row of y (no
// reductions, so the loop over O vectorises as it stands).
__attribute__((always_inline)) inline void times_span(const float* x, int64_t B, const float* A, float* y,
                                                          int64_t I, int64_t O) {
  for (int64_t b = 0; b < B; ++b) {
    float* yb = y + b * O;
    for (int64_t o = 0; o < O; ++o) yb[o] = 0.0f;
    for (int64_t i = 0; i < I; ++i) {
      const float xi = x[b * I + i];
      const float* a = A + i * O;
      for (int64_t o = 0; o < O; ++o) yb[o] += xi * a[o];
    }
  }
}

void few_rows_plain(const float* x, int64_t B, const float* W, float* y, int64_t I, int64_t O, int64_t o0, int64_t o1,
                bool acc) {
  few_rows_span(x, B, W, y, I, O, o0, o1, acc);
}
void few_rows_times_plain(const float* x, int64_t B, const float* A, float* y, int64_t I, int64_t O) {
  times_span(x, B, A, y, I, O);
}

#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("avx2,fma"))) void few_rows_avx2(const float* x, int64_t B, const float* W, float* y, int64_t I,
                                                   int64_t O, int64_t o0, int64_t o1, bool acc) {
  few_rows_span(x, B, W, y, I, O, o0, o1, acc);
}
__attribute__((target("avx2,fma"))) void few_rows_times_avx2(const float* x, int64_t B, const float* A, float* y,
                                                             int64_t I, int64_t O) {
  times_span(x, B, A, y, I, O);
}
bool cpu_has_avx2_fma() {
  static const bool ok = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return ok;
}
#endif

}  // namespace

void few_rows_times_transposed(const float* x, int64_t B, const float* W, int64_t O, int64_t I, float* y) {
#if defined(__x86_64__) && defined(__GNUC__)
  if (cpu_has_avx2_fma()) return few_rows_avx2(x, B, W, y, I, O, 0, O, false);
#endif
  few_rows_plain(x, B, W, y, I, O, 0, O, false);
}

void few_rows_times(const float* x, int64_t B, const float* A, int64_t I, int64_t O, float* y) {
#if defined(__x86_64__) && defined(__GNUC__)
  if (cpu_has_avx2_fma()) return few_rows_times_avx2(x, B, A, y, I, O);
#endif
  few_rows_times_plain(x, B, A, y, I, O);
}

torch::Tensor few_rows_matmul(const torch::Tensor& x, const torch::Tensor& W, torch::Tensor into) {
  TORCH_CHECK(x.dim() == 2 && W.dim() == 2 && x.size(1) == W.size(1), "few_rows_matmul: x ", x.sizes(), " and W ",
              W.sizes(), " do not multiply as x W^T");
  TORCH_CHECK(x.scalar_type() == torch::kFloat && W.scalar_type() == torch::kFloat && x.device().is_cpu() &&
                  W.device().is_cpu() && x.is_contiguous() && W.is_contiguous(),
              "few_rows_matmul: expects contiguous fp32 CPU tensors");
  const int64_t B = x.size(0), I = x.size(1), O = W.size(0);
  const bool acc = into.defined();
  torch::Tensor y = acc ? into : torch::empty({B, O}, x.options());
  TORCH_CHECK(y.sizes() == torch::IntArrayRef({B, O}) && y.is_contiguous() && y.scalar_type() == torch::kFloat,
              "few_rows_matmul: the output must be a contiguous fp32 (", B, ", ", O, ")");
  const float* xp = x.data_ptr<float>();
  const float* wp = W.data_ptr<float>();
  float* yp = y.data_ptr<float>();
  at::parallel_for(0, O, 64, [&](int64_t lo, int64_t hi) {
#if defined(__x86_64__) && defined(__GNUC__)
    if (cpu_has_avx2_fma()) return few_rows_avx2(xp, B, wp, yp, I, O, lo, hi, acc);
#endif
    few_rows_plain(xp, B, wp, yp, I, O, lo, hi, acc);
  });
  return y;
}

}  // namespace infini
