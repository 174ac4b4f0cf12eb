// Signal handlers that only record the request; all work happens at a step boundary.
// A second SIGINT falls through to the default action, so a stuck run can still be killed.
#include "train/run/signals.h"

#include <csignal>

namespace infini {
namespace {
volatile std::sig_atomic_t g_signal = 0;

void on_signal(int sig) {
  if (g_signal != 0) {  // second signal: give up politely waiting
    std::signal(sig, SIG_DFL);
    std::raise(sig);
    return;
  }
  g_signal = sig;
}
}  // namespace

void install_stop_handlers() {
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
}
bool stop_requested() { return g_signal != 0; }
int stop_signal() { return g_signal; }
void reset_stop_request() { g_signal = 0; }

}  // namespace infini
