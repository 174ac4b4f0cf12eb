// Where this process stands in a data-parallel job, read from the environment a launcher sets:
// torchrun / torch.distributed.run (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR,
// MASTER_PORT, TORCHELASTIC_USE_AGENT_STORE), SLURM's srun (SLURM_PROCID, SLURM_NTASKS,
// SLURM_LOCALID, SLURM_NTASKS_PER_NODE or SLURM_TASKS_PER_NODE, with MASTER_ADDR / MASTER_PORT), or
// `infini train --nproc N` (train/dist/spawn.h), which sets torchrun's variables. No variables: one
// process, as without a launcher. Not the connection itself (train/dist/comm.h).
#pragma once
#include <string>

namespace infini {

struct LaunchEnv {
  int rank = 0, world_size = 1;        // global
  int local_rank = 0, local_world_size = 1;  // on this node
  std::string master_addr;             // where the rendezvous store listens
  int master_port = 0;
  bool agent_store = false;            // the launcher hosts the store (torchrun's agent): connect as a client
  int restart_count = 0;               // torchrun's TORCHELASTIC_RESTART_COUNT (store keys are per attempt)
  std::string launcher;                // "torchrun", "infini --nproc", "slurm" or "" (one process)
  bool distributed() const { return world_size > 1; }
};

// Reads the variables above; a ConfigError naming the variable when one is malformed or missing
// (e.g. WORLD_SIZE 2 without MASTER_ADDR). torchrun's variables win over SLURM's.
LaunchEnv read_launch_env();

}  // namespace infini
