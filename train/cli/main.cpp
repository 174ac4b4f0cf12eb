// The `infini` binary: parses the command line (CLI11) and dispatches to the subcommands.
// Each subcommand lives in its own train/cmd_*.cpp; this file only wires them and maps errors to exit codes.
#include <cstdio>
#include <iostream>

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include "core/compat.h"
#include "core/error.h"
#include "train/cli/commands.h"
#include "train/dist/comm.h"
#include "train/run/runtime.h"

int main(int argc, char** argv) {
  infini::keep_freed_memory();
  CLI::App app{"infini: train and evaluate Infini-attention language models"};
  app.require_subcommand(0, 1);
  bool version = false;
  app.add_flag("--version", version, "print the version, the LibTorch version, the CUDA version it was built with and the GPUs found");

  infini::add_train_command(app);
  infini::add_convert_command(app);
  infini::add_hf_commands(app);
  infini::add_generate_command(app);
  infini::add_info_command(app);
  infini::add_tokenizer_command(app);
  infini::add_data_command(app);
  infini::add_eval_command(app);
  infini::add_bench_command(app);
  infini::add_report_command(app);
  infini::add_merge_lora_command(app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --help-all exit 0; every usage error (unknown flag, missing or invalid value)
    // exits 2 like a configuration error, whatever code CLI11 gives it.
    return app.exit(e) == 0 ? 0 : 2;
  }
  if (version) {
    std::cout << "infini " << INFINI_VERSION << " (" << infini::compat::build_description() << ")\n";
    return 0;
  }
  if (app.get_subcommands().empty()) {  // no command given: a usage error
    std::cerr << app.help();
    return 2;
  }
  // One line on stderr, and in the run's train.log when a run had opened one.
  auto fail = [](const char* what, int code) {
    std::fprintf(stderr, "error: %s\n", what);
    infini::log_to_run_file_only(std::string("error: ") + what);
    return code;
  };
  try {
    infini::run_selected_command();
  } catch (const infini::ConfigError& e) {
    return fail(e.what(), 2);
  } catch (const infini::RankLostError& e) {
    return fail(e.what(), infini::kExitRankLost);
  } catch (const infini::Error& e) {
    return fail(e.what(), 1);
  } catch (const c10::Error& e) {
    return fail(e.what_without_backtrace(), 1);
  } catch (const std::exception& e) {
    return fail(e.what(), 1);
  }
  return infini::command_exit_code();
}
