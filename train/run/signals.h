// SIGINT / SIGTERM handling for long runs: the handler only sets a flag; the trainer finishes
// the current step, writes a checkpoint and exits with kExitInterrupted.
#pragma once

namespace infini {

constexpr int kExitInterrupted = 3;  // exit code of a run stopped by SIGINT or SIGTERM
constexpr int kExitNonFinite = 4;    // exit code of a run stopped by a NaN/inf loss or gradient

void install_stop_handlers();  // idempotent
bool stop_requested();
int stop_signal();             // the signal number received (0 when none)
void reset_stop_request();     // for tests

}  // namespace infini
