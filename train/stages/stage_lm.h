// The stage recipes that plug into run_trainer: each returns how a batch becomes a loss.
// pretrain and sft are language-model losses; reward is a pairwise classifier (train/stages/reward.cpp);
// dpo the preference loss of a policy against a frozen reference (train/stages/dpo.cpp).
#pragma once
#include "train/stages/lm_loss.h"

namespace infini {

StageSpec pretrain_stage();
StageSpec sft_stage(const TrainConfig& tc);  // tc.prefix_gradient picks the loss
StageSpec reward_stage(const Config& cfg);  // cfg.reward; cfg.data.pack packs both sides of the pairs
// dpo: loads the frozen reference (dpo.reference, or init_from) now; train/stages/dpo.cpp. data.pack as reward.
StageSpec dpo_stage(const Config& cfg);

}  // namespace infini
