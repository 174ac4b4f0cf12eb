// Comm (see comm.h) on c10d: TCPStore (rank 0 serves it unless the launcher's agent does) wrapped
// in a PrefixStore per job attempt, ProcessGroupGloo over TCP, and a heartbeat per rank in the
// store so that a failed collective can say which rank stopped answering.
#include "train/dist/comm.h"

#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <thread>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
// ProcessGroupGloo.hpp declares nothing without it (CMake checks that gloo's headers are there).
#ifndef USE_C10D_GLOO
#define USE_C10D_GLOO 1
#endif
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

namespace infini {
namespace {

using Ms = std::chrono::milliseconds;
constexpr auto kBeat = std::chrono::seconds(1);

c10::intrusive_ptr<c10d::Store> connect_store(const LaunchEnv& env, bool serve, Ms timeout) {
  c10d::TCPStoreOptions o;
  o.port = static_cast<uint16_t>(env.master_port);
  o.isServer = serve;
  o.waitWorkers = false;
  o.timeout = timeout;
  auto tcp = c10::make_intrusive<c10d::TCPStore>(env.master_addr, o);
  return c10::make_intrusive<c10d::PrefixStore>(fmt::format("infini/attempt_{}", env.restart_count), tcp);
}

std::vector<uint8_t> bytes(const std::string& s) { return {s.begin(), s.end()}; }
std::string text(const std::vector<uint8_t>& b) { return {b.begin(), b.end()}; }

}  // namespace

struct Comm::Impl {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> pg;
  // Heartbeats: a thread with its own store connection adds 1 to hb/<rank> every second.
  std::thread beat;
  std::mutex mu;
  std::condition_variable cv;
  bool stop = false;
  int64_t gathers = 0;  // all_gather / broadcast_string calls so far (their keys are numbered)

  ~Impl() {
    {
      std::lock_guard<std::mutex> l(mu);
      stop = true;
    }
    cv.notify_all();
    if (beat.joinable()) beat.join();
  }
};

Comm::Comm() = default;

Comm::Comm(const LaunchEnv& env, std::chrono::seconds timeout) : env_(env), timeout_(timeout), impl_(new Impl) {
  if (!env_.distributed()) return;
  const Ms t(timeout);
  const bool serve = env_.rank == 0 && !env_.agent_store;
  try {
    impl_->store = connect_store(env_, serve, t);
    auto opts = c10d::ProcessGroupGloo::Options::create(t);
    // GLOO_SOCKET_IFNAME picks the network interface as in PyTorch; all ranks on one node talk
    // over loopback; otherwise the interface this host's name resolves to.
    if (const char* ifname = std::getenv("GLOO_SOCKET_IFNAME"); ifname && *ifname)
      opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
    else if (env_.local_world_size == env_.world_size)
      opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
    else
      opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    opts->threads = 2;
    impl_->pg = c10::make_intrusive<c10d::ProcessGroupGloo>(impl_->store, env_.rank, env_.world_size, opts);
  } catch (const std::exception& e) {
    throw RankLostError(fmt::format("rank {}: could not join the {} ranks at {}:{} within {} s (run.dist_timeout_s): {}",
                                    env_.rank, env_.world_size, env_.master_addr, env_.master_port, timeout.count(),
                                    c10::GetExceptionString(e)));
  }
  // The heartbeat has a connection of its own: the store's client is not shared across threads.
  c10::intrusive_ptr<c10d::Store> beat_store = connect_store(env_, false, t);
  impl_->beat = std::thread([impl = impl_.get(), beat_store, key = fmt::format("hb/{}", env_.rank)] {
    std::unique_lock<std::mutex> l(impl->mu);
    while (!impl->stop) {
      l.unlock();
      try {
        beat_store->add(key, 1);
      } catch (const std::exception&) {
        return;  // the store is gone: the next collective reports it
      }
      l.lock();
      impl->cv.wait_for(l, kBeat, [impl] { return impl->stop; });
    }
  });
  spdlog::debug("rank {}/{} joined (store {}:{}{})", env_.rank, env_.world_size, env_.master_addr, env_.master_port,
                env_.agent_store ? ", the launcher's" : serve ? ", served here" : "");
}

Comm::~Comm() = default;

void Comm::fail(const std::string& what, const std::string& cause) const {
  // Which ranks stopped beating: read every counter, wait three beats, read again.
  std::string who;
  try {
    auto s = connect_store(env_, false, Ms(5000));
    std::vector<int64_t> before(static_cast<size_t>(env_.world_size));
    for (int r = 0; r < env_.world_size; ++r) before[static_cast<size_t>(r)] = s->add(fmt::format("hb/{}", r), 0);
    std::this_thread::sleep_for(3 * kBeat + Ms(500));
    std::vector<std::string> lost;
    for (int r = 0; r < env_.world_size; ++r)
      if (r != env_.rank && s->add(fmt::format("hb/{}", r), 0) == before[static_cast<size_t>(r)])
        lost.push_back(std::to_string(r));
    if (lost.size() == 1) who = fmt::format("rank {} is lost", lost[0]);
    else if (!lost.empty()) who = fmt::format("ranks {} are lost", fmt::join(lost, ", "));
    else who = "every rank still beats (one is stuck, or the network failed)";
  } catch (const std::exception&) {
    who = env_.agent_store ? fmt::format("the launcher's store at {}:{} is gone (the launcher stopped)",
                                         env_.master_addr, env_.master_port)
                           : fmt::format("rank 0 is lost (its store at {}:{} is gone)", env_.master_addr,
                                         env_.master_port);
  }
  throw RankLostError(fmt::format("rank {}: {} failed: {}; stopping ({})", env_.rank, what, who, cause));
}

Comm::Pending Comm::all_reduce_sum_async(torch::Tensor t, const std::string& what) {
  if (!distributed()) return {};
  TORCH_CHECK(t.is_contiguous() && t.device().is_cpu(), "all_reduce_sum: a contiguous CPU tensor");
  std::vector<torch::Tensor> v{t};
  c10d::AllreduceOptions o;
  o.reduceOp = c10d::ReduceOp::SUM;
  o.timeout = Ms(timeout_);
  try {
    auto work = impl_->pg->allreduce(v, o);
    return Pending([this, work, what]() {
      try {
        work->wait();
      } catch (const std::exception& e) {
        fail(what, c10::GetExceptionString(e));
      }
    });
  } catch (const RankLostError&) {
    throw;
  } catch (const std::exception& e) {
    fail(what, c10::GetExceptionString(e));
  }
}

void Comm::broadcast(torch::Tensor t, const std::string& what, int root) {
  if (!distributed()) return;
  TORCH_CHECK(t.is_contiguous() && t.device().is_cpu(), "broadcast: a contiguous CPU tensor");
  std::vector<torch::Tensor> v{t};
  c10d::BroadcastOptions o;
  o.rootRank = root;
  o.timeout = Ms(timeout_);
  try {
    impl_->pg->broadcast(v, o)->wait();
  } catch (const std::exception& e) {
    fail(what, c10::GetExceptionString(e));
  }
}

bool Comm::any(bool flag, const std::string& what) {
  if (!distributed()) return flag;
  torch::Tensor t = torch::full({1}, flag ? 1.0 : 0.0, torch::kFloat64);
  all_reduce_sum(t, what);
  return t.item<double>() > 0;
}

std::vector<std::string> Comm::all_gather(const std::string& key, const std::string& mine) {
  if (!distributed()) return {mine};
  const std::string base = fmt::format("gather/{}/{}", impl_->gathers++, key);
  std::vector<std::string> out;
  try {
    impl_->store->set(fmt::format("{}/{}", base, env_.rank), bytes(mine));
    for (int r = 0; r < env_.world_size; ++r) out.push_back(text(impl_->store->get(fmt::format("{}/{}", base, r))));
  } catch (const std::exception& e) {
    fail("exchanging " + key, c10::GetExceptionString(e));
  }
  return out;
}

std::string Comm::broadcast_string(const std::string& key, const std::string& value) {
  if (!distributed()) return value;
  const std::string k = fmt::format("bcast/{}/{}", impl_->gathers++, key);
  try {
    if (is_main()) impl_->store->set(k, bytes(value));
    return text(impl_->store->get(k));
  } catch (const std::exception& e) {
    fail("receiving " + key + " from rank 0", c10::GetExceptionString(e));
  }
}

std::shared_ptr<Comm> process_comm(int64_t timeout_s) {
  static std::shared_ptr<Comm> comm;
  static std::mutex mu;
  std::lock_guard<std::mutex> l(mu);
  if (!comm) {
    const LaunchEnv env = read_launch_env();
    comm = env.distributed() ? std::make_shared<Comm>(env, std::chrono::seconds(timeout_s)) : std::make_shared<Comm>();
  }
  return comm;
}

}  // namespace infini
