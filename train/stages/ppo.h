// stage: ppo - the RLHF loop (rollout, score, GAE, clipped updates of actor and critic) with exact
// resume. Its own loop, not run_trainer's: a rollout is not one loss of one batch.
#pragma once
#include "train/config/config.h"

namespace infini {

// Runs cfg.train.max_steps rollouts (resuming from RUN_DIR/checkpoints/latest when resume: auto).
// Returns 0 when done (or stopped by train.stop_after), kExitInterrupted after SIGINT/SIGTERM
// (a checkpoint is written first), kExitNonFinite when a loss became NaN/inf.
int run_ppo(const Config& cfg);

}  // namespace infini
