// GradSync: sums the trainable parameters' gradients over the ranks of a data-parallel job, the
// part of PyTorch's DistributedDataParallel that LibTorch's C++ API lacks. Gradients are packed
// into flat buckets of about bucket_bytes (consecutive parameters of one dtype), every bucket's
// all-reduce is started before the first is waited for, and the sums are unpacked back into .grad.
// The trainer scales each rank's loss by its share of the global batch, so the sum is the
// gradient of the global mean: nothing is divided afterwards. A gradient that no rank produced
// stays undefined (the optimizer skips it, as on one rank); one that some ranks produced is
// defined on all. Parameters of a CUDA model go through CPU buffers (Gloo is the backend).
// Not the collectives themselves (train/dist/comm.h).
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include <torch/types.h>

#include "train/dist/comm.h"

namespace infini {

class GradSync {
 public:
  GradSync(std::shared_ptr<Comm> comm, std::vector<torch::Tensor> params, int64_t bucket_bytes = 4 << 20);
  // Sums every gradient over the ranks; `extra` (a small fp64 CPU tensor: loss sums, counts) is
  // summed alongside, in the same round.
  void reduce(torch::Tensor extra);
  size_t buckets() const { return buckets_.size(); }
  int64_t bytes() const { return bytes_; }  // gradient bytes reduced per step

 private:
  struct Bucket {
    std::vector<size_t> params;  // indices into params_
    int64_t numel = 0;
    torch::ScalarType dtype;
  };
  std::shared_ptr<Comm> comm_;
  std::vector<torch::Tensor> params_;
  std::vector<Bucket> buckets_;
  int64_t bytes_ = 0;
};

}  // namespace infini
