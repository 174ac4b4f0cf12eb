// Runtime set-up: threads, seed, device and precision from RunConfig, and spdlog sinks.
// Called once per process by the commands; model and data code never touch these globals.
#include "train/run/runtime.h"

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <fmt/format.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include "core/compat.h"
#include "core/error.h"

namespace infini {

int resolve_threads(int64_t requested, const std::string& what, int share) {
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  if (requested < 0) throw ConfigError(fmt::format("{}: expected 0 (all cores) or a positive count, found {}", what, requested));
  if (requested == 0) return std::max(1, cores / std::max(1, share));
  if (requested > cores) {
    spdlog::warn("{}: {} threads asked for, this machine has {} cores; using {}", what, requested, cores, cores);
    return cores;
  }
  return static_cast<int>(requested);
}

bool cpuinfo_has_native_bf16(const std::string& cpuinfo) {
  std::istringstream in(cpuinfo);
  std::string line;
  while (std::getline(in, line)) {
    // x86: "flags : ... avx512_bf16 ... amx_bf16 ..."; Arm: "Features : ... bf16 ...".
    const bool x86 = line.rfind("flags", 0) == 0, arm = line.rfind("Features", 0) == 0;
    const size_t colon = line.find(':');
    if ((!x86 && !arm) || colon == std::string::npos) continue;
    std::istringstream words(line.substr(colon + 1));
    std::string w;
    while (words >> w)
      if ((x86 && (w == "avx512_bf16" || w == "amx_bf16")) || (arm && w == "bf16")) return true;
  }
  return false;
}

bool cpu_has_native_bf16() {
  static const bool native = [] {
    std::ifstream f("/proc/cpuinfo");
    std::stringstream text;
    text << f.rdbuf();
    return cpuinfo_has_native_bf16(text.str());
  }();
  return native;
}

bool resolve_bf16(Precision precision, torch::Device device, bool cpu_native) {
  switch (precision) {
    case Precision::fp32: return false;
    case Precision::bf16: return true;
    case Precision::auto_: return device.is_cuda() || cpu_native;
  }
  return false;
}

Runtime setup_runtime(const RunConfig& run, int local_ranks) {
  Runtime rt;
  rt.threads = resolve_threads(run.threads, "run.threads", local_ranks);
  compat::set_threads(rt.threads);
  torch::manual_seed(static_cast<uint64_t>(run.seed));
  if (run.device == RunDevice::cuda) {
    if (!torch::cuda::is_available())
      throw ConfigError("run.device: cuda was asked for, but this build of LibTorch has no CUDA device "
                        "available; use run.device=cpu");
    rt.device = torch::Device(torch::kCUDA, 0);
    torch::cuda::manual_seed_all(static_cast<uint64_t>(run.seed));
  }
  rt.bf16 = resolve_bf16(run.precision, rt.device, cpu_has_native_bf16());
  if (run.precision == Precision::bf16 && rt.device.is_cpu() && !cpu_has_native_bf16())
    spdlog::warn("run.precision: bf16 on a CPU without native bf16 (no avx512_bf16 or amx_bf16 in /proc/cpuinfo): "
                 "LibTorch emulates it, measured 14-22x slower than fp32 on such a CPU; run.precision=auto "
                 "picks fp32 here");
  if (run.deterministic) at::globalContext().setDeterministicAlgorithms(true, /*warn_only=*/true);
  return rt;
}

namespace {
spdlog::sink_ptr g_run_file_sink;  // the train.log sink of this process's run, if it opened one
}  // namespace

void log_to_run_file_only(const std::string& line) {
  if (!g_run_file_sink) return;
  spdlog::details::log_msg msg("infini", spdlog::level::err, line);
  g_run_file_sink->log(msg);
  g_run_file_sink->flush();
}

void setup_logging(const std::string& level, const std::string& log_file, bool console) {
  std::vector<spdlog::sink_ptr> sinks;
  if (console) sinks.push_back(std::make_shared<spdlog::sinks::stderr_color_sink_mt>());
  if (!log_file.empty()) sinks.push_back(std::make_shared<spdlog::sinks::basic_file_sink_mt>(log_file, false));
  g_run_file_sink = log_file.empty() ? nullptr : sinks.back();
  auto logger = std::make_shared<spdlog::logger>("infini", sinks.begin(), sinks.end());
  logger->set_pattern("[%H:%M:%S] %^%l%$ %v");
  if (g_run_file_sink) g_run_file_sink->set_pattern("[%Y-%m-%d %H:%M:%S.%e] %l %v");
  logger->set_level(spdlog::level::from_str(level));
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
}

void keep_freed_memory() {
#if defined(__GLIBC__)
  if (const char* e = std::getenv("INFINI_KEEP_FREED_MEMORY"); e && std::string(e) == "0") return;
  mallopt(M_MMAP_MAX, 0);                 // large blocks come from the heap too ...
  mallopt(M_TRIM_THRESHOLD, 1 << 30);     // ... which is kept (up to 1 GB free at its top)
  mallopt(M_TOP_PAD, 64 << 20);           // and grown in 64 MB steps
#endif
}

}  // namespace infini
