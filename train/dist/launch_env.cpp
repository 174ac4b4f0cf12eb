// The launcher's environment (see launch_env.h), checked variable by variable.
#include "train/dist/launch_env.h"

#include <cstdlib>
#include <optional>

#include <fmt/format.h>

#include "core/error.h"

namespace infini {
namespace {

std::optional<std::string> env(const char* name) {
  const char* v = std::getenv(name);
  if (!v || !*v) return std::nullopt;
  return std::string(v);
}

int env_int(const char* name, int lo, int fallback, bool required) {
  const auto v = env(name);
  if (!v) {
    if (required) throw ConfigError(fmt::format("environment: {} is not set (the launcher sets it)", name));
    return fallback;
  }
  size_t used = 0;
  long long x = 0;
  try {
    x = std::stoll(*v, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != v->size() || x < lo || x > (1 << 30))
    throw ConfigError(fmt::format("environment: {}: expected an integer >= {}, found '{}'", name, lo, *v));
  return static_cast<int>(x);
}

// SLURM_TASKS_PER_NODE is like "4(x2),3": the first node's count is this node's only when the
// counts agree, so SLURM_NTASKS_PER_NODE (set with --ntasks-per-node) is preferred.
int slurm_local_world() {
  if (env("SLURM_NTASKS_PER_NODE")) return env_int("SLURM_NTASKS_PER_NODE", 1, 1, true);
  if (const auto t = env("SLURM_TASKS_PER_NODE")) {
    size_t used = 0;
    int n = 0;
    try {
      n = std::stoi(*t, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || n < 1)
      throw ConfigError(fmt::format("environment: SLURM_TASKS_PER_NODE: expected a count like 4 or 4(x2), found '{}'", *t));
    return n;
  }
  return 1;
}

}  // namespace

LaunchEnv read_launch_env() {
  LaunchEnv e;
  if (env("RANK") || env("WORLD_SIZE")) {
    e.launcher = env("INFINI_LAUNCHER").value_or("torchrun");
    e.world_size = env_int("WORLD_SIZE", 1, 1, true);
    e.rank = env_int("RANK", 0, 0, true);
    e.local_rank = env_int("LOCAL_RANK", 0, e.rank, false);
    e.local_world_size = env_int("LOCAL_WORLD_SIZE", 1, e.world_size, false);
    e.restart_count = env_int("TORCHELASTIC_RESTART_COUNT", 0, 0, false);
    e.agent_store = env("TORCHELASTIC_USE_AGENT_STORE").value_or("") == "True";
  } else if (env("SLURM_PROCID") && env("SLURM_NTASKS")) {
    e.launcher = "slurm";
    e.world_size = env_int("SLURM_NTASKS", 1, 1, true);
    e.rank = env_int("SLURM_PROCID", 0, 0, true);
    e.local_rank = env_int("SLURM_LOCALID", 0, 0, false);
    e.local_world_size = slurm_local_world();
  } else {
    return e;
  }
  if (e.rank >= e.world_size)
    throw ConfigError(fmt::format("environment: rank {} is not below the world size {}", e.rank, e.world_size));
  if (e.local_rank >= e.local_world_size)
    throw ConfigError(fmt::format("environment: local rank {} is not below the local world size {}", e.local_rank,
                                  e.local_world_size));
  if (!e.distributed()) return e;
  const auto addr = env("MASTER_ADDR");
  if (!addr)
    throw ConfigError(fmt::format("environment: MASTER_ADDR is not set ({} ranks need the address of rank 0's node; "
                                  "with srun: export MASTER_ADDR=$(scontrol show hostnames | head -n1))",
                                  e.world_size));
  e.master_addr = *addr;
  e.master_port = env_int("MASTER_PORT", 1, 0, true);
  if (e.master_port > 65535)
    throw ConfigError(fmt::format("environment: MASTER_PORT: expected a port in 1..65535, found {}", e.master_port));
  return e;
}

}  // namespace infini
