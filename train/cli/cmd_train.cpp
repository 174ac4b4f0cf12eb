// `infini train CONFIG.yaml [key.path=value ...]`: loads the config and runs its stage, or with
// --print-config prints the resolved config (bases and overrides applied, as RUN_DIR/config.yaml
// would hold it) and runs nothing; with --nproc N it runs as N local data-parallel ranks
// (train/dist/spawn.h). The stages live in train/stages/; this file only wires the command line.
#include <cstdio>

#include <spdlog/spdlog.h>

#include "train/cli/commands.h"
#include "train/dist/spawn.h"
#include "train/run/signals.h"
#include "train/config/config.h"
#include "train/stages/stages.h"

namespace infini {

void add_train_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("train", "run a stage (pretrain, sft, reward, ppo, dpo) from a YAML config");
  auto config_path = std::make_shared<std::string>();
  auto overrides = std::make_shared<std::vector<std::string>>();
  auto print_only = std::make_shared<bool>(false);
  cmd->add_option("config", *config_path, "the stage's YAML config")->required();
  cmd->add_option("overrides", *overrides, "key.path=value overrides, e.g. optim.lr=1e-4 train.max_steps=10");
  cmd->add_flag("--print-config", *print_only, "print the resolved config as YAML and run nothing");
  auto nproc = std::make_shared<int>(0);
  cmd->add_option("--nproc", *nproc, "data parallel on this machine: start N ranks (docs/scaling.md)")
      ->check(CLI::Range(1, 1024));
  cmd->callback([config_path, overrides, print_only, nproc] {
    set_command([config_path, overrides, print_only, nproc] {
      // From the start: a SIGTERM during set-up ends the run with kExitInterrupted too.
      install_stop_handlers();
      Config cfg = load_config(*config_path, *overrides);
      if (*print_only) {
        std::fputs(config_to_yaml(cfg).c_str(), stdout);
        return 0;
      }
      if (*nproc > 0) {
        std::vector<std::string> args{"train", *config_path};
        args.insert(args.end(), overrides->begin(), overrides->end());
        return spawn_local_workers(*nproc, args, cfg.run.dist_timeout_s);
      }
      return run_stage(cfg);
    });
  });
}

}  // namespace infini
