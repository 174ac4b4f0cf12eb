// Linear and its LoRA adapter. A weight stored in another dtype than the input (bf16 base weights
// of a LoRA run in fp32) is cast to the input's dtype for the matmul only.
#include "core/linear.h"

#include <cmath>

namespace infini {

LinearImpl::LinearImpl(int64_t in_features, int64_t out_features) {
  weight = register_parameter("weight", torch::empty({out_features, in_features}));
  // torch.nn.Linear's default (kaiming-uniform with a = sqrt(5): bound 1/sqrt(in)); the decoder
  // draws its own init over it.
  torch::NoGradGuard ng;
  const double bound = 1.0 / std::sqrt(static_cast<double>(in_features));
  weight.uniform_(-bound, bound);
}

void LinearImpl::add_adapter(int64_t rank, double scale, double dropout) {
  const int64_t out = weight.size(0), in = weight.size(1);
  auto opts = torch::TensorOptions().dtype(torch::kFloat).device(weight.device());
  const double bound = 1.0 / std::sqrt(static_cast<double>(in));
  torch::Tensor a = torch::empty({rank, in}, opts);
  {
    torch::NoGradGuard ng;
    a.uniform_(-bound, bound);
  }
  lora_a = register_parameter("lora_a", a);
  lora_b = register_parameter("lora_b", torch::zeros({out, rank}, opts));
  lora_scale = scale;
  lora_dropout = dropout;
}

torch::Tensor LinearImpl::forward(const torch::Tensor& x) {
  torch::Tensor y = torch::linear(x, weight.scalar_type() == x.scalar_type() ? weight : weight.to(x.scalar_type()));
  if (!lora_a.defined()) return y;
  torch::Tensor h = lora_dropout > 0 ? torch::dropout(x, lora_dropout, is_training()) : x;
  return y + torch::linear(torch::linear(h, lora_a), lora_b) * lora_scale;
}

}  // namespace infini
