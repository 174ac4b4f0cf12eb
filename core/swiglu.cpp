// SwiGLU feed-forward: registered names w1/w2/w3 follow llama2.c / Meta checkpoints.
// Initialisation is the decoder's job (it knows n_layers for the residual scaling).
#include "core/swiglu.h"

namespace infini {

FeedForwardImpl::FeedForwardImpl(int64_t d_model, int64_t hidden) {
  auto opt = [](int64_t in, int64_t out) { return torch::nn::LinearOptions(in, out).bias(false); };
  w1 = register_module("w1", torch::nn::Linear(opt(d_model, hidden)));
  w2 = register_module("w2", torch::nn::Linear(opt(hidden, d_model)));
  w3 = register_module("w3", torch::nn::Linear(opt(d_model, hidden)));
}

torch::Tensor FeedForwardImpl::forward(const torch::Tensor& x) {
  return w2(torch::silu(w1(x)) * w3(x));
}

}  // namespace infini
