// stage: sft - the same next-token loss on response tokens only: the loader's loss_mask is 0 on
// the prompt and padding. Long-context SFT (passkey records of thousands of tokens) is this stage too.
#include "train/stages/stage_lm.h"

namespace infini {

StageSpec sft_stage(const TrainConfig& tc) {
  StageSpec s;
  s.name = "sft";
  s.head = Head::lm;
  s.needs_tokenizer = true;
  if (tc.prefix_gradient == PrefixGradient::writes) {
    s.loss = [w = tc.prefix_write_weight](Decoder& m, const Batch& b) { return lm_loss_prefix_writes(m, b, w); };
  } else {
    s.loss = lm_loss;
  }
  return s;
}

}  // namespace infini
