// The --device flag of the evaluation and benchmark commands: parsing "cpu" / "cuda" / "cuda:N"
// into a torch::Device (refusing a GPU this LibTorch or machine does not have, as a one-line
// ConfigError), and the device barrier timing code needs around a timed region.
// Not the trainer's device (run.device, train/run/runtime.h), nor moving models or tensors.
#pragma once
#include <string>

#include <torch/types.h>

namespace infini {

// "cpu", "cuda" (= cuda:0) or "cuda:N". Throws ConfigError naming `flag_name` on anything else, on
// cuda when this LibTorch has no usable GPU, and on cuda:N when there are not N + 1 GPUs.
torch::Device parse_device(const std::string& flag_name, const std::string& value);

// Waits for the work queued on `d` (torch::cuda::synchronize on a CUDA device; nothing on CPU), so
// that the time around a region is the time the device spent on it.
void synchronize(const torch::Device& d);

// "cpu", "cuda:0": how the commands print a device.
std::string device_name(const torch::Device& d);

}  // namespace infini
