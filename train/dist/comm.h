// Comm: this process's place in a data-parallel job and the collectives the trainer needs, on
// PyTorch's c10d: a TCPStore for the rendezvous and small values, ProcessGroupGloo for tensors.
// One process (no launcher) is a Comm of world size 1 whose collectives return at once.
// A collective that cannot complete (a rank died, hangs, or never came) fails within
// run.dist_timeout_s with a RankLostError naming the rank(s) that stopped answering.
// Not the gradient bucketing (train/dist/grad_sync.h) nor the launchers (launch_env.h, spawn.h).
#pragma once
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <torch/types.h>

#include "core/error.h"
#include "train/dist/launch_env.h"

namespace infini {

// Another rank is gone or stuck; the CLI exits with kExitRankLost.
struct RankLostError : Error {
  using Error::Error;
};
constexpr int kExitRankLost = 5;

class Comm {
 public:
  Comm();  // one process
  // Joins the job `env` describes, waiting up to `timeout` for every rank to arrive.
  Comm(const LaunchEnv& env, std::chrono::seconds timeout);
  ~Comm();
  Comm(const Comm&) = delete;
  Comm& operator=(const Comm&) = delete;

  int rank() const { return env_.rank; }
  int world_size() const { return env_.world_size; }
  bool is_main() const { return env_.rank == 0; }
  bool distributed() const { return env_.world_size > 1; }
  const LaunchEnv& env() const { return env_; }
  std::chrono::seconds timeout() const { return timeout_; }

  // A collective in flight; wait() blocks until it is done (throwing RankLostError on failure).
  class Pending {
   public:
    Pending() = default;
    explicit Pending(std::function<void()> wait) : wait_(std::move(wait)) {}
    void wait() {
      if (wait_) std::exchange(wait_, nullptr)();
    }

   private:
    std::function<void()> wait_;
  };
  // Sums a contiguous CPU tensor over the ranks, in place. `what` names it in errors.
  Pending all_reduce_sum_async(torch::Tensor t, const std::string& what);
  void all_reduce_sum(torch::Tensor t, const std::string& what) { all_reduce_sum_async(std::move(t), what).wait(); }
  // Rank `root`'s contents of a contiguous CPU tensor, on every rank.
  void broadcast(torch::Tensor t, const std::string& what, int root = 0);
  // True on every rank when `flag` is true on any.
  bool any(bool flag, const std::string& what);
  // Every rank's `mine`, in rank order, through the store (for small values: config text, hashes).
  std::vector<std::string> all_gather(const std::string& key, const std::string& mine);
  // Rank 0's `value` on every rank.
  std::string broadcast_string(const std::string& key, const std::string& value);

 private:
  struct Impl;
  [[noreturn]] void fail(const std::string& what, const std::string& cause) const;
  LaunchEnv env_;
  std::chrono::seconds timeout_{300};
  std::unique_ptr<Impl> impl_;
};

// The process's Comm: joined on the first call from the launcher's environment (timeout in
// seconds), the same object afterwards. World size 1 without a launcher.
std::shared_ptr<Comm> process_comm(int64_t timeout_s);

}  // namespace infini
