// The model replicas of a data-parallel job: made equal at the start (rank 0's parameters and
// buffers broadcast to all), and checked equal cheaply (a hash of every tensor's bytes compared
// through the store) where they must already be, such as after every rank resumed from one
// checkpoint. Not the per-step gradient sum (train/dist/grad_sync.h).
#pragma once
#include <string>

#include <torch/nn/module.h>

#include "train/dist/comm.h"

namespace infini {

// Every rank's parameters and buffers become rank 0's.
void broadcast_from_rank0(Comm& comm, torch::nn::Module& model);
// An infini::Error on every rank naming the ranks whose weights differ from rank 0's (`when` says
// at which point, e.g. "after resuming from DIR").
void check_replicas_equal(Comm& comm, const torch::nn::Module& model, const std::string& when);

}  // namespace infini
