// Precision helpers for the fp32 islands inside autocast regions (memory, gate, norms, softmax).
// Not autocast control itself: that is core/compat.h.
#pragma once
#include <torch/types.h>

namespace infini {

// bf16/fp16 -> fp32; fp32 and fp64 unchanged (fp64 is used by the gradient checks).
inline torch::Tensor upcast(const torch::Tensor& t) {
  auto s = t.scalar_type();
  if (s == torch::kBFloat16 || s == torch::kHalf) return t.to(torch::kFloat);
  return t;
}

}  // namespace infini
