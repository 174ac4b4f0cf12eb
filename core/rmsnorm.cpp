// RMSNorm forward: an fp32 island so bf16 activations never square and sum in bf16.
// Nothing else lives here; the decoder decides where norms go.
#include "core/rmsnorm.h"

#include "core/compat.h"
#include "core/precision.h"

namespace infini {

RMSNormImpl::RMSNormImpl(int64_t dim, double eps_) : eps(eps_) {
  weight = register_parameter("weight", torch::ones({dim}));
}

torch::Tensor RMSNormImpl::forward(const torch::Tensor& x) {
  const bool lower = compat::autocast_active() && x.scalar_type() != torch::kDouble;
  compat::AutocastOff off;
  torch::Tensor xf = upcast(x);  // (..., D)
  torch::Tensor inv = torch::rsqrt(xf.pow(2).mean(-1, /*keepdim=*/true) + eps);  // (..., 1)
  torch::Tensor y = xf * inv * weight.to(xf.scalar_type());
  return lower ? y.to(torch::kBFloat16) : y;
}

}  // namespace infini
