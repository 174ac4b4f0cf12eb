// stage: dpo - Direct Preference Optimization: the policy (from init_from) learns the preference
// pairs directly against a frozen reference (the same checkpoint, or dpo.reference), with no
// reward model and no sampling. Both sides of each pair, chosen and rejected, go through one
// forward of the policy and one of the reference (no gradient), through the model's own
// Infini-attention segments like every stage; the loss is train/rlhf/dpo_math.h's.
#include <memory>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "core/error.h"
#include "train/rlhf/dpo_math.h"
#include "train/run/checkpoint.h"
#include "train/stages/packed_sequences.h"
#include "train/stages/stage_lm.h"

namespace infini {
namespace {

// data.pack for the pairs: rows of up to `capacity` tokens (0: not packed).
struct PairPacking {
  int64_t capacity = 0;
  std::shared_ptr<bool> logged = std::make_shared<bool>(false);
};

// Sequence log-probs of the chosen rows then the rejected rows of b under `model`: one trunk
// forward of the 2B rows padded to a common T (or packed into shared rows, and the hidden states
// read back per sequence). Returns (sum, count), each (2B).
SequenceLogprobs pair_logprobs(Decoder& model, const Batch& b, const PairPacking& pack) {
  const int64_t T = std::max(b.tokens.size(1), b.rejected_tokens.size(1));
  auto pad = [T](const torch::Tensor& t) {
    return t.size(1) == T ? t : torch::constant_pad_nd(t, {0, T - t.size(1)}, 0);
  };
  auto tokens = torch::cat({pad(b.tokens), pad(b.rejected_tokens)}, 0);       // (2B, T)
  auto mask = torch::cat({pad(b.loss_mask), pad(b.rejected_mask)}, 0);        // (2B, T)
  torch::Tensor hidden;                                                       // (2B, T, D)
  if (pack.capacity > 0) {
    hidden = packed_forward(model, tokens, torch::cat({b.lengths, b.rejected_lengths}, 0), pack.capacity,
                            /*head=*/false, *pack.logged);
  } else {
    hidden = model->trunk(tokens);
  }
  return sequence_logprobs(hidden, model->lm_head_weight(), tokens, mask);
}

}  // namespace

StageSpec dpo_stage(const Config& cfg) {
  const DpoConfig dc = cfg.dpo;
  const std::string ref_from = dc.reference.empty() ? cfg.init_from : dc.reference;
  if (ref_from.empty()) throw ConfigError("init_from: stage dpo needs the checkpoint its policy and reference start from");
  // Built before the run seeds its generators, so the policy's set-up is the other stages'.
  Decoder reference(cfg.model, Head::lm);
  init_weights_from(ref_from, reference);
  reference->eval();
  for (auto& p : reference->parameters()) p.set_requires_grad(false);
  spdlog::info("dpo: reference from {} (frozen), loss {}, beta {}{}", ref_from, choice_name(dc.loss), dc.beta,
               dc.label_smoothing > 0 ? fmt::format(", label_smoothing {}", dc.label_smoothing) : "");

  StageSpec s;
  s.name = "dpo";
  s.head = Head::lm;
  s.needs_tokenizer = true;
  s.weight = batch_rows;  // the mean is over pairs
  const PairPacking pack{cfg.data.pack ? cfg.data.seq_len : 0};
  s.loss = [dc, reference, pack](Decoder& model, const Batch& b) mutable {
    if (!b.rejected_tokens.defined())
      throw Error("stage dpo: the batch has no rejected side; data.format must be preference");
    const int64_t B = b.tokens.size(0);
    // The reference follows the batch to the run's device the first time (it is built on the CPU).
    if (reference->parameters().front().device() != b.tokens.device()) reference->to(b.tokens.device());
    SequenceLogprobs ref;
    {
      torch::NoGradGuard ng;
      ref = pair_logprobs(reference, b, pack);
    }
    SequenceLogprobs pi = pair_logprobs(model, b, pack);
    // IPO on per-token means (TRL's choice: its target margin 1/(2 beta) is per token); sums otherwise.
    torch::Tensor lp = pi.sum, lr = ref.sum;
    if (dc.loss == DpoLoss::ipo) {
      const auto n = pi.count.clamp_min(1.0);
      lp = lp / n;
      lr = lr / n;
    }
    DpoTerms t = dpo_loss(lp.slice(0, 0, B), lp.slice(0, B), lr.slice(0, 0, B), lr.slice(0, B), dc.beta, dc.loss,
                          dc.label_smoothing);
    const auto logp = lp.detach().to(torch::kCPU, torch::kDouble);
    LossOutput out;
    out.loss = t.loss;
    out.weight = static_cast<double>(B);
    out.metrics["rewards_chosen"] = t.reward_chosen;
    out.metrics["rewards_rejected"] = t.reward_rejected;
    out.metrics["margin"] = t.margin;
    out.metrics["accuracy"] = t.accuracy;
    out.metrics["logp_chosen"] = logp.slice(0, 0, B).mean().item<double>();
    out.metrics["logp_rejected"] = logp.slice(0, B).mean().item<double>();
    return out;
  };
  return s;
}

}  // namespace infini
