// The `infini` subcommands: each file cmd_*.cpp registers one with the CLI11 app.
// A command's callback stores its work with set_command(); main() runs it after parsing,
// so every error reaches one handler that prints one line and picks the exit code.
#pragma once
#include <cstdint>
#include <functional>
#include <string>

#include <CLI/CLI.hpp>

namespace infini {

// Flag check: an integer >= lo, with the message "expected an integer >= LO, found 'X'" (CLI11's
// own range check prints the whole range of a double).
CLI::Validator integer_at_least(int64_t lo);

// Called by a subcommand's parse callback: the work main() runs. The function returns the exit code.
void set_command(std::function<int()> work);
void run_selected_command();
int command_exit_code();

void add_train_command(CLI::App& app);
void add_convert_command(CLI::App& app);
void add_generate_command(CLI::App& app);
void add_info_command(CLI::App& app);
void add_tokenizer_command(CLI::App& app);
void add_data_command(CLI::App& app);
void add_eval_command(CLI::App& app);
void add_bench_command(CLI::App& app);
void add_report_command(CLI::App& app);
void add_merge_lora_command(CLI::App& app);  // train/cli/cmd_merge_lora.cpp
// `convert hf` (under `convert`, so after add_convert_command) and `export hf` (train/cli/cmd_hf.cpp).
void add_hf_commands(CLI::App& app);
// The evaluations under a launcher (torchrun, srun): seconds a rank waits for the others.
constexpr int64_t kEvalDistTimeoutS = 300;

// `eval reward` (train/cli/cmd_eval_reward.cpp), registered under `eval` by add_eval_command.
void add_eval_reward_subcommand(CLI::App& eval);
// `eval accuracy` (train/cli/cmd_eval_accuracy.cpp), registered under `eval` by add_eval_command.
void add_eval_accuracy_subcommand(CLI::App& eval);

}  // namespace infini
