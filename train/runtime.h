// Process-wide set-up from RunConfig, done once at start: threads, seed, device, precision, logging.
// Nothing here trains; stages call setup_runtime() and get back what they need.
#pragma once
#include <string>

#include <torch/types.h>

#include "train/config.h"

namespace infini {

struct Runtime {
  torch::Device device{torch::kCPU};
  bool bf16 = false;  // autocast to bf16 around forward passes
  int threads = 1;
};

// Sets intra-op threads (0 = all cores), the global seed, and checks the device; throws
// ConfigError when cuda is asked for and this LibTorch has none.
Runtime setup_runtime(const RunConfig& run);

// Console logging at `level`; when log_file is not empty, also to that file (appending).
void setup_logging(const std::string& level, const std::string& log_file = "");

}  // namespace infini
