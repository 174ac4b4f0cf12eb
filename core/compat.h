// The one place for LibTorch-version-sensitive calls (autocast, threads, optimizer lr),
// so the same sources build against Debian's LibTorch 1.13 and LibTorch 2.x. Nothing else.
#pragma once
#include <dlfcn.h>

#include <ATen/autocast_mode.h>
#include <ATen/detail/CUDAHooksInterface.h>
#include <torch/torch.h>
#include <torch/version.h>

#define INFINI_TORCH_AT_LEAST(major, minor) \
  (TORCH_VERSION_MAJOR * 100 + TORCH_VERSION_MINOR >= (major) * 100 + (minor))

namespace infini::compat {

// RAII: bf16 (or off) autocast on the given device type for the scope's lifetime.
class AutocastGuard {
 public:
  AutocastGuard(bool enabled, torch::DeviceType device) : device_(device) {
#if INFINI_TORCH_AT_LEAST(2, 4)
    prev_enabled_ = at::autocast::is_autocast_enabled(device_);
    if (enabled) {
      at::autocast::set_autocast_dtype(device_, at::kBFloat16);
      at::autocast::set_autocast_enabled(device_, true);
    }
#else
    if (device_ == torch::kCUDA) {
      prev_enabled_ = at::autocast::is_enabled();
      if (enabled) {
        at::autocast::set_autocast_gpu_dtype(at::kBFloat16);
        at::autocast::set_enabled(true);
      }
    } else {
      prev_enabled_ = at::autocast::is_cpu_enabled();
      if (enabled) {
        at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
        at::autocast::set_cpu_enabled(true);
      }
    }
#endif
    active_ = enabled;
  }
  ~AutocastGuard() {
    if (!active_) return;
#if INFINI_TORCH_AT_LEAST(2, 4)
    at::autocast::set_autocast_enabled(device_, prev_enabled_);
#else
    if (device_ == torch::kCUDA) at::autocast::set_enabled(prev_enabled_);
    else at::autocast::set_cpu_enabled(prev_enabled_);
#endif
    at::autocast::clear_cache();
  }
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  torch::DeviceType device_;
  bool prev_enabled_ = false;
  bool active_ = false;
};

// RAII: autocast switched off inside (for fp32 islands: memory arithmetic, softmax stats, loss).
class AutocastOff {
 public:
  AutocastOff() {
#if INFINI_TORCH_AT_LEAST(2, 4)
    cpu_ = at::autocast::is_autocast_enabled(at::kCPU);
    gpu_ = at::autocast::is_autocast_enabled(at::kCUDA);
    at::autocast::set_autocast_enabled(at::kCPU, false);
    at::autocast::set_autocast_enabled(at::kCUDA, false);
#else
    cpu_ = at::autocast::is_cpu_enabled();
    gpu_ = at::autocast::is_enabled();
    at::autocast::set_cpu_enabled(false);
    at::autocast::set_enabled(false);
#endif
  }
  ~AutocastOff() {
#if INFINI_TORCH_AT_LEAST(2, 4)
    at::autocast::set_autocast_enabled(at::kCPU, cpu_);
    at::autocast::set_autocast_enabled(at::kCUDA, gpu_);
#else
    at::autocast::set_cpu_enabled(cpu_);
    at::autocast::set_enabled(gpu_);
#endif
  }
  AutocastOff(const AutocastOff&) = delete;
  AutocastOff& operator=(const AutocastOff&) = delete;

 private:
  bool cpu_ = false, gpu_ = false;
};

// True when any autocast is on (so fp32 islands know to cast their inputs up).
inline bool autocast_active() {
#if INFINI_TORCH_AT_LEAST(2, 4)
  return at::autocast::is_autocast_enabled(at::kCPU) || at::autocast::is_autocast_enabled(at::kCUDA);
#else
  return at::autocast::is_cpu_enabled() || at::autocast::is_enabled();
#endif
}

// Intra-op threads, for LibTorch and for the BLAS under it. A pthreads OpenBLAS (Debian's
// libblas.so.3 with libopenblas0-pthread, which the fp32 memory matmuls go through) keeps its own
// pool of one thread per core whose idle workers spin in sched_yield: left at that size it fights
// torch's threads for the cores (measured: eval passkey at 1 thread used 2 cores; at 2 threads,
// or two cases at once, it ran 2-4x slower than at 1). Found at run time, so nothing links to
// OpenBLAS and any other BLAS is left alone.
inline void set_threads(int n) {
  torch::set_num_threads(n);
  using SetBlasThreads = void (*)(int);
  static const auto set_blas = reinterpret_cast<SetBlasThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
  if (set_blas) set_blas(n);
}

// Sets the learning rate of one parameter group of an AdamW optimizer.
inline void set_group_lr(torch::optim::OptimizerParamGroup& group, double lr) {
  static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);
}

inline std::string torch_version() { return TORCH_VERSION; }

// The CUDA runtime version this LibTorch was built with ("13.2"), or "" for a CPU-only LibTorch.
// Answers without a GPU: the CUDA hooks exist whenever LibTorch's CUDA library is linked.
inline std::string cuda_build_version() {
  try {
    const long v = at::detail::getCUDAHooks().versionCUDART();  // e.g. 13020
    return std::to_string(v / 1000) + "." + std::to_string(v % 1000 / 10);
  } catch (const std::exception&) {
    return "";
  }
}

// "LibTorch 2.15.0, CUDA 13.2, 1 GPU" / "LibTorch 1.13.1, CPU only": what --version and the logs say.
inline std::string build_description() {
  const std::string cuda = cuda_build_version();
  std::string s = "LibTorch " + torch_version();
  if (cuda.empty()) return s + ", CPU only";
  const auto gpus = torch::cuda::device_count();
  return s + ", CUDA " + cuda + ", " + (gpus == 0 ? "no GPU found" : std::to_string(gpus) + (gpus == 1 ? " GPU" : " GPUs"));
}

}  // namespace infini::compat
