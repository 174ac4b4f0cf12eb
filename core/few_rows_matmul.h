// y = x W^T for a few rows x (decoding: one token per sequence), fp32 on the CPU. A general matmul
// library copies ("packs") the whole weight into its own layout on every call, which for a handful
// of rows costs more than the product; this one streams each weight row once from memory and
// multiplies it into every row of x while it is in cache. Vectorised for AVX2 + FMA where the CPU
// has them (chosen at run time), plain C++ elsewhere; rows of W split over LibTorch's threads.
// Not for training or prompts: many rows are faster through torch::mm.
#pragma once
#include <cstdint>

#include <torch/types.h>

namespace infini {

// Up to this many rows the kernel below beats torch::mm (measured by `infini bench model`).
constexpr int64_t kFewRows = 16;

// x (B, I) fp32 contiguous, W (O, I) fp32 contiguous -> x W^T (B, O); with `into` defined (B, O)
// contiguous fp32, adds the product to it in place and returns it.
torch::Tensor few_rows_matmul(const torch::Tensor& x, const torch::Tensor& W, torch::Tensor into = {});

// The same on raw rows, on the calling thread (for many small products, each already one task):
// y (B, O) = x (B, I) W^T with W (O, I) row-major, and y (B, O) = x (B, I) A with A (I, O) row-major.
// All contiguous fp32; y is overwritten.
void few_rows_times_transposed(const float* x, int64_t B, const float* W, int64_t O, int64_t I, float* y);
void few_rows_times(const float* x, int64_t B, const float* A, int64_t I, int64_t O, float* y);

}  // namespace infini
