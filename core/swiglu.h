// The SwiGLU feed-forward block: w2(silu(w1 x) * w3 x), no biases (LLaMA).
// Not the norm or the residual around it: that is core/decoder_block.h.
#pragma once
#include <torch/nn/module.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

namespace infini {

struct FeedForwardImpl : torch::nn::Module {
  FeedForwardImpl(int64_t d_model, int64_t hidden);
  torch::Tensor forward(const torch::Tensor& x);  // (..., D) -> (..., D)

  torch::nn::Linear w1{nullptr};  // (F, D) gate branch
  torch::nn::Linear w2{nullptr};  // (D, F) down projection
  torch::nn::Linear w3{nullptr};  // (F, D) up branch
};
TORCH_MODULE(FeedForward);

}  // namespace infini
