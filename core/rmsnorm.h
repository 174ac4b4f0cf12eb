// RMSNorm: x * rsqrt(mean(x^2) + eps) * weight, with the statistics always in fp32.
// Not a LayerNorm: no mean subtraction, no bias.
#pragma once
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

namespace infini {

struct RMSNormImpl : torch::nn::Module {
  RMSNormImpl(int64_t dim, double eps);
  // x (..., D) any float dtype -> same shape; fp32 under autocast (the norm is an fp32 island),
  // the input's own dtype otherwise (fp32 or fp64).
  torch::Tensor forward(const torch::Tensor& x);

  torch::Tensor weight;  // (D), initialised to 1
  double eps;
};
TORCH_MODULE(RMSNorm);

}  // namespace infini
