// `infini train CONFIG.yaml [key.path=value ...]`: loads the config and runs its stage.
// The stages themselves live in train/stage_*.cpp; this file only wires the command line.
#include <spdlog/spdlog.h>

#include "train/cli/commands.h"
#include "train/config/config.h"
#include "train/stages/stages.h"

namespace infini {

void add_train_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("train", "run a stage (pretrain, sft, reward, ppo) from a YAML config");
  auto config_path = std::make_shared<std::string>();
  auto overrides = std::make_shared<std::vector<std::string>>();
  cmd->add_option("config", *config_path, "the stage's YAML config")->required();
  cmd->add_option("overrides", *overrides, "key.path=value overrides, e.g. optim.lr=1e-4 train.max_steps=10");
  cmd->callback([config_path, overrides] {
    set_command([config_path, overrides] {
      Config cfg = load_config(*config_path, *overrides);
      return run_stage(cfg);
    });
  });
}

}  // namespace infini
