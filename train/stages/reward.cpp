// stage: reward - a pairwise (Bradley-Terry) classifier: the decoder trunk with a scalar head read at
// each sequence's last real token, trained so the chosen side scores above the rejected side.
#include <memory>

#include <fmt/format.h>

#include "core/error.h"
#include "train/rlhf/ppo_math.h"
#include "train/stages/packed_sequences.h"
#include "train/stages/stage_lm.h"

namespace infini {

StageSpec reward_stage(const Config& cfg) {
  const RewardConfig rc = cfg.reward;
  const bool pack = cfg.data.pack;
  const int64_t capacity = cfg.data.seq_len;
  StageSpec s;
  s.name = "reward";
  s.head = Head::scalar;
  s.needs_tokenizer = true;
  // From an SFT (or pretrained) LM: its output layer is unused, the score head starts fresh.
  s.init_from_ignore = {"output.weight"};
  s.init_from_fresh = {"score.weight"};
  s.weight = batch_rows;  // the mean is over pairs
  auto logged = std::make_shared<bool>(false);
  s.loss = [rc, pack, capacity, logged](Decoder& model, const Batch& b) {
    if (!b.rejected_tokens.defined())
      throw Error("stage reward: the batch has no rejected side; data.format must be preference");
    // Both sides in one forward: chosen rows then rejected rows, padded to a common T.
    const int64_t T = std::max(b.tokens.size(1), b.rejected_tokens.size(1));
    auto pad = [T](const torch::Tensor& t) {
      return t.size(1) == T ? t : torch::constant_pad_nd(t, {0, T - t.size(1)}, 0);
    };
    auto tokens = torch::cat({pad(b.tokens), pad(b.rejected_tokens)}, 0);     // (2B, T)
    auto lengths = torch::cat({b.lengths, b.rejected_lengths}, 0);            // (2B)
    torch::Tensor all;                                                       // (2B, T)
    if (pack) {  // data.pack: both sides share rows; the scores are read back per sequence
      all = packed_forward(model, tokens, lengths, capacity, /*head=*/true, *logged);
    } else {
      all = model->forward(tokens);
    }
    auto scores = last_token_scores(all, lengths);  // (2B)
    const int64_t B = b.tokens.size(0);
    PairwiseLoss p = pairwise_loss(scores.slice(0, 0, B), scores.slice(0, B), rc.margin, rc.center_coef);
    LossOutput out;
    out.loss = p.loss;
    out.weight = static_cast<double>(B);
    out.metrics["accuracy"] = p.accuracy;
    out.metrics["margin"] = p.margin;
    return out;
  };
  return s;
}

}  // namespace infini
