// The SwiGLU feed-forward block: w2(silu(w1 x) * w3 x), no biases (LLaMA).
// Not the norm or the residual around it: that is core/decoder_block.h.
#pragma once
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include "core/linear.h"

namespace infini {

struct FeedForwardImpl : torch::nn::Module {
  FeedForwardImpl(int64_t d_model, int64_t hidden);
  torch::Tensor forward(const torch::Tensor& x);  // (..., D) -> (..., D)

  Linear w1{nullptr};  // (F, D) gate branch
  Linear w2{nullptr};  // (D, F) down projection
  Linear w3{nullptr};  // (F, D) up branch
};
TORCH_MODULE(FeedForward);

}  // namespace infini
