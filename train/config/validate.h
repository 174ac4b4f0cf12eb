// The value checks of a Config, one function per section: ranges, and the consistency between
// keys (a stage and the data it reads, prefix writes and a detached memory, rloo and its samples).
// Each throws ConfigError with a message that starts with the key path and says what was expected
// and what was found; the caller (train/config/config.cpp) prefixes the file and line it came from.
// Not the spelling of enum keys: those are refused while the YAML is read.
#pragma once
#include "train/config/config.h"

namespace infini {

void check_run(const RunConfig& r);
void check_optim(const OptimConfig& o, const ModelConfig& m);
void check_schedule(const ScheduleConfig& s, const OptimConfig& o);
void check_train(const TrainConfig& t, const ModelConfig& m);
void check_checkpoint(const CheckpointConfig& c);
void check_reward(const RewardConfig& r);
void check_ppo(const PPOConfig& p);
void check_dpo(const DpoConfig& d);
void check_data(const DataConfig& d);
void check_stage(const Config& c);  // what a stage needs of the other sections

// All of the above, and the model's own validate(), in the order the sections are written.
void check_config_values(const Config& c);

}  // namespace infini
