// Entry point of every training stage: dispatch on Config::stage.
// Each stage lives in its own file (stage_pretrain.cpp, stage_sft.cpp, ...).
#pragma once
#include "train/config.h"

namespace infini {

// Runs cfg.stage to completion (or until interrupted); returns the process exit code.
int run_stage(const Config& cfg);

}  // namespace infini
