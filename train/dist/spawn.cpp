// The local launcher (see spawn.h): fork + exec of /proc/self/exe per rank, a TCPStore served here.
#include "train/dist/spawn.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <thread>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include "core/error.h"

namespace infini {
namespace {

volatile std::sig_atomic_t g_forward = 0;
void on_signal(int sig) { g_forward = sig; }

std::string describe(int status) {
  if (WIFSIGNALED(status)) return fmt::format("was killed by signal {}", WTERMSIG(status));
  return fmt::format("exited with code {}", WEXITSTATUS(status));
}
int code_of(int status) { return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status); }

}  // namespace

int spawn_local_workers(int nproc, const std::vector<std::string>& args, int64_t timeout_s) {
  if (nproc < 1) throw ConfigError(fmt::format("--nproc: expected a count >= 1, found {}", nproc));
  if (std::getenv("RANK") || std::getenv("WORLD_SIZE"))
    throw ConfigError("--nproc: this process was already started by a launcher (RANK / WORLD_SIZE are set); "
                      "use one or the other");
  // The store lives as long as the job; port 0 lets the system pick a free one.
  c10d::TCPStoreOptions o;
  o.port = 0;
  o.isServer = true;
  o.waitWorkers = false;
  o.timeout = std::chrono::seconds(timeout_s);
  auto store = c10::make_intrusive<c10d::TCPStore>("127.0.0.1", o);
  const std::string port = std::to_string(store->getPort());

  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  std::vector<pid_t> pids;
  for (int r = 0; r < nproc; ++r) {
    const pid_t pid = ::fork();
    if (pid < 0) throw Error(fmt::format("--nproc: could not start rank {} (fork failed)", r));
    if (pid == 0) {
      std::signal(SIGINT, SIG_DFL);
      std::signal(SIGTERM, SIG_DFL);
      ::setenv("RANK", std::to_string(r).c_str(), 1);
      ::setenv("LOCAL_RANK", std::to_string(r).c_str(), 1);
      ::setenv("WORLD_SIZE", std::to_string(nproc).c_str(), 1);
      ::setenv("LOCAL_WORLD_SIZE", std::to_string(nproc).c_str(), 1);
      ::setenv("MASTER_ADDR", "127.0.0.1", 1);
      ::setenv("MASTER_PORT", port.c_str(), 1);
      ::setenv("TORCHELASTIC_USE_AGENT_STORE", "True", 1);
      ::setenv("INFINI_LAUNCHER", "infini --nproc", 1);
      std::vector<std::string> argv_s{"infini"};
      argv_s.insert(argv_s.end(), args.begin(), args.end());
      std::vector<char*> argv;
      for (auto& a : argv_s) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv("/proc/self/exe", argv.data());
      std::fprintf(stderr, "error: --nproc: could not start rank %d (exec of /proc/self/exe failed)\n", r);
      ::_exit(127);
    }
    pids.push_back(pid);
  }
  spdlog::info("--nproc: started {} ranks (pids {}), store at 127.0.0.1:{}", nproc, fmt::join(pids, " "), port);

  int result = 0, alive = nproc, forwarded = 0;
  bool failed = false;
  std::chrono::steady_clock::time_point kill_at{};
  while (alive > 0) {
    if (g_forward && g_forward != forwarded) {
      forwarded = g_forward;
      for (pid_t p : pids)
        if (p > 0) ::kill(p, forwarded);
    }
    int status = 0;
    const pid_t done = ::waitpid(-1, &status, WNOHANG);
    if (done > 0) {
      for (size_t r = 0; r < pids.size(); ++r) {
        if (pids[r] != done) continue;
        pids[r] = -1;
        --alive;
        const int code = code_of(status);
        if (code != 0 && result == 0) result = code;
        // After a forwarded signal every rank stops on its own (rank 0 checkpoints first).
        if (code != 0 && !failed && !forwarded) {
          failed = true;
          if (alive > 0) {
            spdlog::error("--nproc: rank {} (pid {}) {}; stopping the other {} rank(s)", r, done, describe(status),
                          alive);
            for (pid_t p : pids)
              if (p > 0) ::kill(p, SIGTERM);
            kill_at = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
          }
        }
      }
      continue;
    }
    if (failed && std::chrono::steady_clock::now() > kill_at) {
      spdlog::error("--nproc: {} rank(s) still running {} s after the failure; killing them", alive, timeout_s);
      for (pid_t p : pids)
        if (p > 0) ::kill(p, SIGKILL);
      kill_at = std::chrono::steady_clock::now() + std::chrono::hours(1);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return result;
}

}  // namespace infini
