// stage: pretrain - next-token cross entropy on packed token shards (documents joined by EOS).
// Sequences span many segments, so memory and gates learn; the loop itself is run_trainer's.
#include "train/stage_lm.h"

namespace infini {

StageSpec pretrain_stage() {
  StageSpec s;
  s.name = "pretrain";
  s.head = Head::lm;
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
