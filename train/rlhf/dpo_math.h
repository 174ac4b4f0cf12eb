// The arithmetic of Direct Preference Optimization as pure tensor functions: the sigmoid (DPO,
// Rafailov et al. 2023), IPO (Azar et al. 2023) and hinge losses of a policy against a frozen
// reference, and the figures TRL's DPOTrainer logs. No models, no I/O.
#pragma once
#include <torch/types.h>

#include "train/config/choices.h"

namespace infini {

struct DpoTerms {
  torch::Tensor loss;             // scalar: mean over the B pairs
  torch::Tensor rewards_chosen;   // (B) beta * (logp_pi(chosen) - logp_ref(chosen)), no gradient
  torch::Tensor rewards_rejected; // (B) beta * (logp_pi(rejected) - logp_ref(rejected)), no gradient
  double reward_chosen = 0;       // mean of rewards_chosen
  double reward_rejected = 0;     // mean of rewards_rejected
  double margin = 0;              // mean of rewards_chosen - rewards_rejected
  double accuracy = 0;            // fraction of pairs with rewards_chosen > rewards_rejected
};

// The DPO family's loss on B pairs from sequence log-probabilities (B) of the policy (pi_*, with
// gradient) and of the reference (ref_*). With h = (pi_c - pi_r) - (ref_c - ref_r):
//   sigmoid: -(1 - eps) logsigmoid(beta h) - eps logsigmoid(-beta h)   (eps = label_smoothing)
//   ipo:     (h - 1 / (2 beta))^2
//   hinge:   relu(1 - beta h)
// Which log-probabilities to pass is the caller's: sums over the response tokens for sigmoid and
// hinge, per-token means for ipo (as TRL does). Computed in fp32 (fp64 inputs stay fp64).
DpoTerms dpo_loss(const torch::Tensor& pi_chosen, const torch::Tensor& pi_rejected, const torch::Tensor& ref_chosen,
                  const torch::Tensor& ref_rejected, double beta, DpoLoss loss, double label_smoothing = 0.0);

struct SequenceLogprobs {
  torch::Tensor sum;    // (B) sum of log p(token) over the counted targets
  torch::Tensor count;  // (B) how many targets were counted (float)
};

// Log-probabilities of each sequence's counted targets from the final hidden states: hidden
// (B, T, D), head_weight (V, D), tokens (B, T), loss_mask (B, T) (position t predicts tokens[:, t+1],
// counted when loss_mask[:, t+1] is 1, as data/batch.h has it). Only the counted rows go through
// the head, so the prompt and padding cost no logits. Differentiable in hidden and head_weight.
SequenceLogprobs sequence_logprobs(const torch::Tensor& hidden, const torch::Tensor& head_weight,
                                   const torch::Tensor& tokens, const torch::Tensor& loss_mask);

}  // namespace infini
