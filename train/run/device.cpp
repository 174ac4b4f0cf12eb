// --device parsing and the CUDA barrier for timing: see train/run/device.h.
#include "train/run/device.h"

#include <cctype>
#include <cstdint>

#include <torch/cuda.h>

#include "core/compat.h"
#include "core/error.h"

namespace infini {

torch::Device parse_device(const std::string& flag_name, const std::string& value) {
  if (value == "cpu") return torch::Device(torch::kCPU);
  int64_t index = -1;
  if (value == "cuda") {
    index = 0;
  } else if (value.rfind("cuda:", 0) == 0 && value.size() > 5 && value.size() <= 8) {
    index = 0;
    for (size_t i = 5; i < value.size(); ++i) {
      if (!std::isdigit(static_cast<unsigned char>(value[i]))) {
        index = -1;
        break;
      }
      index = index * 10 + (value[i] - '0');
    }
  }
  if (index < 0)
    throw ConfigError(flag_name + ": expected cpu, cuda or cuda:N (N a GPU index), found '" + value + "'");
  if (!torch::cuda::is_available())
    throw ConfigError(flag_name + ": " + value + " was asked for, but this LibTorch (" + compat::build_description() +
                      ") has no GPU; use " + flag_name + " cpu");
  const int64_t count = static_cast<int64_t>(torch::cuda::device_count());
  if (index >= count)
    throw ConfigError(flag_name + ": " + value + " was asked for, but this LibTorch (" + compat::build_description() +
                      ") has no GPU " + std::to_string(index) + " (GPUs 0.." + std::to_string(count - 1) + ")");
  return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(index));
}

void synchronize(const torch::Device& d) {
  if (d.is_cuda()) torch::cuda::synchronize(d.index());  // index -1: the current device
}

std::string device_name(const torch::Device& d) {
  if (d.is_cuda()) return "cuda:" + std::to_string(d.index() < 0 ? 0 : static_cast<int>(d.index()));
  return d.str();
}

}  // namespace infini
