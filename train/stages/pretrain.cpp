// stage: pretrain - next-token cross entropy on packed token shards (documents joined by EOS).
// Sequences span many segments, so memory and gates learn; the loop itself is run_trainer's.
#include "train/stages/stage_lm.h"

namespace infini {

StageSpec pretrain_stage() {
  StageSpec s;
  s.name = "pretrain";
  s.head = Head::lm;
  s.loss = lm_loss;
  return s;
}

}  // namespace infini
