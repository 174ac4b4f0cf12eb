// See dpo_math.h.
#include "train/rlhf/dpo_math.h"

#include <torch/torch.h>

#include "core/compat.h"
#include "core/error.h"
#include "train/rlhf/ppo_math.h"

namespace infini {

DpoTerms dpo_loss(const torch::Tensor& pi_chosen, const torch::Tensor& pi_rejected, const torch::Tensor& ref_chosen,
                  const torch::Tensor& ref_rejected, double beta, DpoLoss loss, double label_smoothing) {
  compat::AutocastOff fp32;
  auto f = [](const torch::Tensor& t) { return t.scalar_type() == torch::kDouble ? t : t.to(torch::kFloat); };
  const auto pc = f(pi_chosen), pr = f(pi_rejected), rc = f(ref_chosen).detach(), rr = f(ref_rejected).detach();
  const auto h = (pc - pr) - (rc - rr);  // (B)
  torch::Tensor per_pair;
  switch (loss) {
    case DpoLoss::sigmoid:
      per_pair = -(1.0 - label_smoothing) * torch::log_sigmoid(beta * h) - label_smoothing * torch::log_sigmoid(-beta * h);
      break;
    case DpoLoss::ipo: per_pair = (h - 1.0 / (2.0 * beta)).pow(2); break;
    case DpoLoss::hinge: per_pair = torch::relu(1.0 - beta * h); break;
  }
  DpoTerms out;
  out.loss = per_pair.mean();
  out.rewards_chosen = (beta * (pc - rc)).detach();
  out.rewards_rejected = (beta * (pr - rr)).detach();
  // One read of the four figures.
  const auto diff = out.rewards_chosen - out.rewards_rejected;
  const auto host = torch::stack({out.rewards_chosen.mean(), out.rewards_rejected.mean(), diff.mean(),
                                  (diff > 0).to(diff.scalar_type()).mean()})
                        .to(torch::kCPU, torch::kDouble);
  out.reward_chosen = host[0].item<double>();
  out.reward_rejected = host[1].item<double>();
  out.margin = host[2].item<double>();
  out.accuracy = host[3].item<double>();
  return out;
}

SequenceLogprobs sequence_logprobs(const torch::Tensor& hidden, const torch::Tensor& head_weight,
                                   const torch::Tensor& tokens, const torch::Tensor& loss_mask) {
  const int64_t B = tokens.size(0), T = tokens.size(1), D = hidden.size(2);
  if (hidden.size(0) != B || hidden.size(1) != T || loss_mask.sizes() != tokens.sizes())
    throw Error("sequence_logprobs: hidden, tokens and loss_mask disagree on (B, T)");
  SequenceLogprobs out;
  const auto m = loss_mask.slice(1, 1).to(torch::kFloat);  // (B, T-1): position t predicts t+1
  out.count = m.sum(1);
  const auto rows = m.reshape({-1}).nonzero().squeeze(1);  // counted positions in (B*(T-1))
  const auto h = hidden.slice(1, 0, T - 1).reshape({-1, D}).index_select(0, rows);  // (N, D)
  const auto targets = tokens.slice(1, 1).reshape({-1}).index_select(0, rows);     // (N)
  const auto logits = torch::matmul(h, head_weight.t());                            // (N, V)
  const auto lp = token_logprobs(logits.unsqueeze(0), targets.unsqueeze(0)).squeeze(0);  // (N) fp32
  const auto seq = torch::div(rows, T - 1, "floor");                                      // (N) which sequence
  out.sum = torch::zeros({B}, lp.options()).index_add(0, seq, lp);
  return out;
}

}  // namespace infini
