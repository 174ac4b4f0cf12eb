// Stage dispatch: `stage:` in the config picks the recipe.
// Stages that are not built into this binary are refused with a clear message.
#include "train/stages/stages.h"

#include <fmt/format.h>

#include "core/error.h"
#include "train/stages/stage_lm.h"
#include "train/stages/ppo.h"

namespace infini {

int run_stage(const Config& cfg) {
  switch (cfg.stage) {
    case Stage::pretrain: return run_trainer(cfg, pretrain_stage());
    case Stage::sft: return run_trainer(cfg, sft_stage(cfg.train));
    case Stage::reward: return run_trainer(cfg, reward_stage(cfg));
    case Stage::ppo: return run_ppo(cfg);
    case Stage::dpo: return run_trainer(cfg, dpo_stage(cfg));
  }
  throw ConfigError(fmt::format("stage: '{}' is not available in this build (available: pretrain, sft, reward, ppo, dpo)",
                                choice_name(cfg.stage)));
}

}  // namespace infini
