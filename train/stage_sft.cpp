// stage: sft - the same next-token loss on response tokens only: the loader's loss_mask is 0 on
// the prompt and padding. Long-context SFT (passkey records of thousands of tokens) is this stage too.
#include "train/stage_lm.h"

namespace infini {

StageSpec sft_stage() {
  StageSpec s;
  s.name = "sft";
  s.head = Head::lm;
  s.needs_tokenizer = true;
  s.loss = [](Decoder& model, const Batch& b) {
    auto [loss, count] = masked_lm_loss(model->forward(b.tokens), b.tokens, b.loss_mask);
    LossOutput out;
    out.loss = loss;
    out.weight = static_cast<double>(count);
    return out;
  };
  return s;
}

}  // namespace infini
