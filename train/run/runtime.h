// Process-wide set-up from RunConfig, done once at start: threads, seed, device, precision, logging.
// Nothing here trains; stages call setup_runtime() and get back what they need.
#pragma once
#include <string>

#include <torch/types.h>

#include "train/config/config.h"

namespace infini {

struct Runtime {
  torch::Device device{torch::kCPU};
  bool bf16 = false;  // autocast to bf16 around forward passes (run.precision resolved)
  int threads = 1;
};

// True when /proc/cpuinfo's text names a CPU feature that computes bf16 natively: the x86 flags
// avx512_bf16 or amx_bf16, or the Arm feature bf16. Without one, LibTorch emulates bf16 matmuls.
bool cpuinfo_has_native_bf16(const std::string& cpuinfo);
// This machine's CPU (reads /proc/cpuinfo once; false where it cannot be read).
bool cpu_has_native_bf16();
// Whether `precision` autocasts to bf16 on `device`: fp32 never, bf16 always, auto on CUDA and on
// a CPU with native bf16. `cpu_native` is cpu_has_native_bf16() (a parameter for tests).
bool resolve_bf16(Precision precision, torch::Device device, bool cpu_native);

// Sets intra-op threads (0 = this node's cores shared by its `local_ranks` processes), the global
// seed, and checks the device; throws ConfigError when cuda is asked for and this LibTorch has none.
Runtime setup_runtime(const RunConfig& run, int local_ranks = 1);

// A thread count the user asked for (`what` names the key or flag): 0 means this machine's cores,
// more than its cores is capped there with a warning (a thread per core is the most that helps,
// and tens of thousands of threads stall the machine), a negative one is a ConfigError. With
// `share` processes on the machine, 0 means its cores / share (at least 1).
int resolve_threads(int64_t requested, const std::string& what, int share = 1);

// Keeps freed memory in the process (glibc malloc) instead of returning every large block to the
// OS: LibTorch's CPU tensors are plain malloc blocks, and by default each training step's
// activations are mmap'ed, page-faulted in and unmapped again, which cost ~30% of a step here.
// The heap does not shrink, so resident memory stays near the peak of the run (up to 1 GB of it
// free for reuse). INFINI_KEEP_FREED_MEMORY=0 in the environment keeps glibc's defaults.
// Called once, first thing in main().
void keep_freed_memory();

// Console logging at `level` (unless console is false); when log_file is not empty, also to that
// file (appending).
void setup_logging(const std::string& level, const std::string& log_file = "", bool console = true);

// Writes `line` (as an error record) to the log file setup_logging opened, and nowhere else: how a
// fatal error printed on stderr by main() also reaches RUN_DIR/train.log. Nothing without one.
void log_to_run_file_only(const std::string& line);

}  // namespace infini
