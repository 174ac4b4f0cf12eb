// RMSNorm: x * rsqrt(mean(x^2) + eps) * weight, with the statistics always in fp32.
// Not a LayerNorm: no mean subtraction, no bias.
#pragma once
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

namespace infini {

struct RMSNormImpl : torch::nn::Module {
  RMSNormImpl(int64_t dim, double eps);
  // x (..., D) any float dtype -> same shape. Computed in fp32 (the norm is an fp32 island); under
  // autocast the result is rounded once to bf16, the dtype every consumer (q/k/v, w1/w3, the head)
  // would cast it to anyway, so it is cast once instead of once per consumer. Without autocast:
  // the input's own dtype (fp32 or fp64).
  torch::Tensor forward(const torch::Tensor& x);

  torch::Tensor weight;  // (D), initialised to 1
  double eps;
};
TORCH_MODULE(RMSNorm);

}  // namespace infini
