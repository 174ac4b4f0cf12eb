// The arithmetic of reward modelling and PPO as pure tensor functions: pairwise loss, per-token
// rewards with a KL penalty, GAE, whitening, clipped losses, the KL controller. No models, no I/O.
#pragma once
#include <cstdint>
#include <functional>

#include <nlohmann/json.hpp>
#include <torch/types.h>

namespace infini {

// Legend: B sequences, A action positions (one per predicted token). Masks are float (B, A) with 1
// on response tokens; every function ignores masked-out positions.

struct PairwiseLoss {
  torch::Tensor loss;  // scalar: mean -log sigmoid(r_c - r_r - margin) + center * mean (r_c + r_r)^2
  double accuracy = 0;  // fraction of pairs with r_c > r_r
  double margin = 0;    // mean r_c - r_r
};

// Bradley-Terry loss of a reward model on B pairs: r_chosen (B), r_rejected (B).
PairwiseLoss pairwise_loss(const torch::Tensor& r_chosen, const torch::Tensor& r_rejected, double margin = 0.0,
                           double center_coef = 0.0);

// scores (B, T), lengths (B) int64 -> scores at each sequence's last real token, (B).
torch::Tensor last_token_scores(const torch::Tensor& scores, const torch::Tensor& lengths);

// log p(target) under logits: logits (B, A, V), targets (B, A) int64 -> (B, A) fp32.
torch::Tensor token_logprobs(const torch::Tensor& logits, const torch::Tensor& targets);

// Entropy of the softmax of logits (B, A, V) -> (B, A) fp32.
torch::Tensor token_entropy(const torch::Tensor& logits);

// Per-token rewards (B, A): -kl_coef * (logp - logp_ref) on every response token, plus score (B)
// on each sequence's last response token. Zero outside the mask.
torch::Tensor per_token_rewards(const torch::Tensor& logp, const torch::Tensor& logp_ref, const torch::Tensor& mask,
                                const torch::Tensor& score, double kl_coef);

struct Advantages {
  torch::Tensor advantages;  // (B, A), zero outside the mask
  torch::Tensor returns;     // (B, A) = advantages + values
};

// Generalised advantage estimation backwards over each response:
//   delta_t = r_t + gamma V_{t+1} - V_t,  A_t = delta_t + gamma lambda A_{t+1},
// with V and A taken as 0 past the last response token. rewards, values, mask: (B, A).
Advantages gae(const torch::Tensor& rewards, const torch::Tensor& values, const torch::Tensor& mask, double gamma,
               double lambda);

// Leave-one-out baseline of scores (B) in groups of `group` consecutive sequences (several samples of
// one prompt): b_i = (sum of the group's scores - s_i) / (group - 1). group >= 2. (RLOO, Ahmadian et
// al. 2024: REINFORCE with the other samples of the same prompt as the baseline, no critic.)
torch::Tensor leave_one_out_baseline(const torch::Tensor& score, int64_t group);

// Share of the groups of `group` consecutive scores (B = groups * group) that are not all equal: the
// prompts where sampling found both better and worse responses, where a policy gradient can learn.
double mixed_group_fraction(const torch::Tensor& score, int64_t group);

// (x - mean) / sqrt(var + 1e-8) over the masked entries (unbiased variance, like TRL);
// masked-out entries become 0. shift_mean=false keeps the mean (for rewards).
torch::Tensor masked_whiten(const torch::Tensor& x, const torch::Tensor& mask, bool shift_mean = true);

// masked_whiten (shift_mean) over the masked entries of every rank's x: `sum_over_ranks` adds a
// small fp64 CPU tensor of sums over the ranks in place (the identity on one process). Two passes,
// as masked_whiten: the mean from (sum, count), then the variance from the squared deviations.
torch::Tensor masked_whiten_across(const torch::Tensor& x, const torch::Tensor& mask,
                                   const std::function<void(torch::Tensor&)>& sum_over_ranks);

// Mean of x over the mask (scalar tensor).
torch::Tensor masked_mean(const torch::Tensor& x, const torch::Tensor& mask);
// Mean over the sequences (rows with any mask) of each row's masked mean (scalar tensor).
torch::Tensor masked_sequence_mean(const torch::Tensor& x, const torch::Tensor& mask);

// GRPO's advantage of each response (score (B), groups of `group` consecutive rows): its score
// minus its group's mean, divided by the group's standard deviation (unbiased) + 1e-4 when `scale`.
// A group whose scores are all equal gets 0 (no NaN).
torch::Tensor group_advantages(const torch::Tensor& score, int64_t group, bool scale);

// The k3 estimate of KL(pi || ref) per token: exp(ref - logp) - (ref - logp) - 1 (>= 0; its
// expectation under pi is the KL; its gradient in logp is 1 - exp(ref - logp)).
torch::Tensor k3_kl(const torch::Tensor& logp, const torch::Tensor& logp_ref);

struct PolicyLoss {
  torch::Tensor loss;     // scalar: masked mean of max(-A ratio, -A clip(ratio, 1-eps, 1+eps))
  double clip_fraction = 0;  // fraction of tokens where the clipped term was chosen (and differs)
  double approx_kl = 0;      // masked mean of 0.5 (logp_new - logp_old)^2
};
// per_sequence: the loss is averaged over each sequence's tokens first, then over the sequences.
PolicyLoss policy_loss(const torch::Tensor& logp_new, const torch::Tensor& logp_old, const torch::Tensor& advantages,
                       const torch::Tensor& mask, double clip_eps, bool per_sequence = false);

struct ValueLoss {
  torch::Tensor loss;     // scalar: 0.5 masked mean of max((V - R)^2, (clip(V, V_old +- eps) - R)^2)
  double clip_fraction = 0;
};
ValueLoss value_loss(const torch::Tensor& values, const torch::Tensor& values_old, const torch::Tensor& returns,
                     const torch::Tensor& mask, double clip_eps);

// 1 - Var(returns - values) / Var(returns) over the mask.
double explained_variance(const torch::Tensor& values, const torch::Tensor& returns, const torch::Tensor& mask);

// The KL coefficient: fixed, or adapted toward a target KL (the legacy controller of TRL, after
// Ziegler et al.): e = clip(kl / target - 1, -0.2, 0.2); coef *= 1 + e * n_steps / horizon.
struct KLController {
  double value = 0.05;   // current coefficient
  bool adaptive = false;
  double target = 6.0;   // target KL (nats per sequence) for the adaptive controller
  double horizon = 10000;

  void update(double current_kl, int64_t n_steps);
  nlohmann::json state() const;
  void load_state(const nlohmann::json& j, const std::string& source);
};

}  // namespace infini
