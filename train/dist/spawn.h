// `infini train --nproc N`: a launcher for people without torchrun or SLURM. It hosts the job's
// rendezvous store itself (as torchrun's agent does), starts N copies of this binary with
// torchrun's variables (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT,
// TORCHELASTIC_USE_AGENT_STORE), forwards SIGINT/SIGTERM to them, and when one fails, names it,
// stops the others (SIGTERM, then SIGKILL after the timeout) and returns that rank's exit code.
// Not the workers' side (launch_env.h, comm.h).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace infini {

// Runs `args` (the command line of each worker, without argv[0]) as `nproc` local ranks; returns
// 0 when all exit 0, else the first failing rank's code (128 + signal for a killed one).
int spawn_local_workers(int nproc, const std::vector<std::string>& args, int64_t timeout_s);

}  // namespace infini
