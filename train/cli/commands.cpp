// The selected subcommand's work, stored at parse time and run by main().
// Keeps CLI11's callbacks free of work so errors surface in one place.
#include "train/cli/commands.h"

namespace infini {
namespace {
std::function<int()> g_work;
int g_exit = 0;
}  // namespace

void set_command(std::function<int()> work) { g_work = std::move(work); }
void run_selected_command() {
  if (g_work) g_exit = g_work();
}
int command_exit_code() { return g_exit; }

}  // namespace infini
