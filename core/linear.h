// Linear: the bias-free projection of the blocks, y = x W^T, with an optional LoRA adapter:
// y = x W^T + (alpha / r) B A dropout(x), A (r, in) and B (out, r). Registered names: weight,
// lora_a, lora_b. Not which projections get adapters or what trains (core/lora.h, train/).
#pragma once
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

namespace infini {

struct LinearImpl : torch::nn::Module {
  LinearImpl(int64_t in_features, int64_t out_features);
  torch::Tensor forward(const torch::Tensor& x);  // (..., in) -> (..., out)

  // Registers A (kaiming-uniform, bound 1/sqrt(in)) and B (zeros): B A = 0, so the output is
  // unchanged until B trains. A is drawn from the default generator.
  void add_adapter(int64_t rank, double scale, double dropout);
  bool has_adapter() const { return lora_a.defined(); }

  torch::Tensor weight;          // (out, in); may be stored in bf16 (read in the input's dtype)
  torch::Tensor lora_a, lora_b;  // (r, in), (out, r); only with an adapter
  double lora_scale = 0.0;       // alpha / r
  double lora_dropout = 0.0;
};
TORCH_MODULE(Linear);

}  // namespace infini
