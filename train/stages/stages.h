// Entry point of every training stage: dispatch on Config::stage.
// Each stage lives in its own file (train/stages/pretrain.cpp, train/stages/sft.cpp, ...).
#pragma once
#include "train/config/config.h"

namespace infini {

// Runs cfg.stage to completion (or until interrupted); returns the process exit code.
int run_stage(const Config& cfg);

}  // namespace infini
