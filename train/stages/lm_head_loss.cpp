// Fused LM head + cross-entropy (see the header). A custom autograd function: forward computes the
// loss and, when a gradient is wanted, d loss/d h and d loss/d W chunk by chunk; backward only
// scales them by the incoming gradient.
#include "train/stages/lm_head_loss.h"

#include <torch/autograd.h>

#include "core/compat.h"

namespace infini {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

struct FusedLmHeadLoss : torch::autograd::Function<FusedLmHeadLoss> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& h, const torch::Tensor& w,
                               const torch::Tensor& targets, const torch::Tensor& weights, bool lower_precision,
                               bool need_grad, int64_t rows_per_chunk) {
    const int64_t N = h.size(0);
    const auto acc = h.scalar_type() == torch::kDouble ? torch::kDouble : torch::kFloat;  // logits dtype
    const auto mm = lower_precision ? torch::kBFloat16 : h.scalar_type();                // matmul dtype
    torch::Tensor hc = h.to(mm), wc = w.to(mm);
    torch::Tensor wt = weights.to(acc);
    torch::Tensor loss = torch::zeros({}, h.options().dtype(acc));
    torch::Tensor grad_h, grad_w;
    if (need_grad) {
      grad_h = torch::empty_like(h);
      grad_w = torch::zeros(w.sizes(), w.options().dtype(acc));
    }
    for (int64_t r0 = 0; r0 < N; r0 += rows_per_chunk) {
      const int64_t n = std::min(rows_per_chunk, N - r0);
      torch::Tensor hr = hc.narrow(0, r0, n);                        // (n, D)
      torch::Tensor t = targets.narrow(0, r0, n).unsqueeze(1);        // (n, 1)
      torch::Tensor wr = wt.narrow(0, r0, n);                         // (n)
      torch::Tensor logits = torch::matmul(hr, wc.t()).to(acc);       // (n, V)
      torch::Tensor lse = torch::logsumexp(logits, 1, /*keepdim=*/true);  // (n, 1)
      loss += (wr * (lse.squeeze(1) - logits.gather(1, t).squeeze(1))).sum();
      if (!need_grad) continue;
      torch::Tensor g = logits.sub_(lse).exp_();                      // softmax, in place (n, V)
      g.scatter_add_(1, t, torch::full({n, 1}, -1.0, g.options()));  // - onehot
      g.mul_(wr.unsqueeze(1));
      torch::Tensor gm = g.to(mm);
      grad_h.narrow(0, r0, n).copy_(torch::matmul(gm, wc));           // (n, D)
      grad_w.add_(torch::matmul(gm.t(), hr));                         // (V, D)
    }
    if (need_grad) ctx->save_for_backward({grad_h, grad_w.to(w.scalar_type())});
    return loss;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_out) {
    auto saved = ctx->get_saved_variables();
    torch::Tensor s = grad_out[0];
    return {saved[0] * s.to(saved[0].scalar_type()), saved[1] * s.to(saved[1].scalar_type()), {}, {}, {}, {}, {}};
  }
};

}  // namespace

torch::Tensor fused_lm_head_loss(const torch::Tensor& h, const torch::Tensor& w, const torch::Tensor& targets,
                                 const torch::Tensor& weights, int64_t rows_per_chunk) {
  TORCH_CHECK(h.dim() == 2 && w.dim() == 2 && h.size(1) == w.size(1), "fused_lm_head_loss: h (N, D) and w (V, D), got ",
              h.sizes(), " and ", w.sizes());
  TORCH_CHECK(targets.dim() == 1 && weights.dim() == 1 && targets.size(0) == h.size(0) && weights.size(0) == h.size(0),
              "fused_lm_head_loss: targets and weights must be (N)");
  if (rows_per_chunk <= 0) rows_per_chunk = std::max<int64_t>(64, (int64_t{4} << 20) / std::max<int64_t>(1, w.size(0)));
  const bool lower = compat::autocast_active() && h.scalar_type() != torch::kDouble;
  const bool need_grad = torch::GradMode::is_enabled() && (h.requires_grad() || w.requires_grad());
  compat::AutocastOff off;  // dtypes are chosen explicitly inside
  return FusedLmHeadLoss::apply(h, w, targets, weights, lower, need_grad, rows_per_chunk);
}

}  // namespace infini
