// SwiGLU feed-forward: registered names w1/w2/w3 follow llama2.c / Meta checkpoints.
// Initialisation is the decoder's job (it knows n_layers for the residual scaling).
#include "core/swiglu.h"

namespace infini {

FeedForwardImpl::FeedForwardImpl(int64_t d_model, int64_t hidden) {
  w1 = register_module("w1", Linear(d_model, hidden));
  w2 = register_module("w2", Linear(hidden, d_model));
  w3 = register_module("w3", Linear(d_model, hidden));
}

torch::Tensor FeedForwardImpl::forward(const torch::Tensor& x) {
  return w2(torch::silu(w1(x)) * w3(x));
}

}  // namespace infini
