// The selected subcommand's work, stored at parse time and run by main().
// Keeps CLI11's callbacks free of work so errors surface in one place.
#include "train/cli/commands.h"

namespace infini {

CLI::Validator integer_at_least(int64_t lo) {
  return CLI::Validator(
      [lo](std::string& text) -> std::string {
        size_t used = 0;
        long long v = 0;
        try {
          v = std::stoll(text, &used);
        } catch (const std::exception&) {
          used = 0;
        }
        if (used == 0 || used != text.size() || v < lo)
          return "expected an integer >= " + std::to_string(lo) + ", found '" + text + "'";
        return "";
      },
      "INT>=" + std::to_string(lo));
}
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
