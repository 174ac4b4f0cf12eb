// GradSync: sums the trainable parameters' gradients over the ranks of a data-parallel job, the
// part of PyTorch's DistributedDataParallel that LibTorch's C++ API lacks. Gradients are packed
// into flat buckets of about bucket_bytes (consecutive parameters of one dtype, from the last
// parameter to the first, the order in which a backward produces them) and summed with
// asynchronous all-reduces, then unpacked back into .grad.
// Overlap with the backward: arm() before the step's last backward; each parameter's gradient hook
// then packs the gradient as it is produced (plus what .grad already holds from earlier
// micro-batches), and a bucket's all-reduce starts as soon as it is complete and every bucket
// before it has started (the ranks must start them in one order), while the backward goes on.
// reduce() packs whatever did not arrive, starts the rest and waits. Unarmed, reduce() packs and
// starts every bucket itself, after the backward.
// The trainer scales each rank's loss by its share of the global batch, so the sum is the
// gradient of the global mean: nothing is divided afterwards. A gradient that no rank produced
// stays undefined (the optimizer skips it, as on one rank); one that some ranks produced is
// defined on all. Parameters of a CUDA model go through CPU buffers (Gloo is the backend).
// Not the collectives themselves (train/dist/comm.h).
#pragma once
#include <cstdint>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include <torch/types.h>

#include "train/dist/comm.h"

namespace infini {

class GradSync {
 public:
  GradSync(std::shared_ptr<Comm> comm, std::vector<torch::Tensor> params, int64_t bucket_bytes = 4 << 20);
  ~GradSync();  // removes its gradient hooks
  GradSync(const GradSync&) = delete;  // the gradient hooks hold `this`
  GradSync& operator=(const GradSync&) = delete;
  // The next backward is the step's last: its gradients are reduced as they arrive. Only for a
  // backward that produces each parameter's gradient once (not for a second backward of the same
  // step; such a step reduces after it, unarmed).
  void arm();
  // Sums every gradient over the ranks; `extra` (a small fp64 CPU tensor: loss sums, counts) is
  // summed alongside, in the same round. Disarms.
  void reduce(torch::Tensor extra);
  size_t buckets() const { return buckets_.size(); }
  int64_t bytes() const { return bytes_; }  // gradient bytes reduced per step
  // Of the last reduce(): the buckets whose all-reduce had started before the backward ended.
  size_t started_during_backward() const { return started_early_; }

 private:
  struct Bucket {
    std::vector<size_t> params;  // indices into params_
    std::vector<int64_t> offsets;  // each parameter's place in the flat buffer
    int64_t numel = 0;
    torch::ScalarType dtype;
  };
  void on_grad(size_t param, const torch::Tensor& grad);
  void reset();                                        // under mu_: fresh buffers, nothing packed
  void pack(size_t param, const torch::Tensor& grad);  // under mu_
  void start(size_t bucket);                           // under mu_
  std::shared_ptr<Comm> comm_;
  std::vector<torch::Tensor> params_;
  std::vector<Bucket> buckets_;
  std::vector<size_t> bucket_of_;  // per parameter
  std::vector<std::pair<size_t, unsigned>> hooks_;  // (parameter, hook handle)
  int64_t bytes_ = 0;
  // One reduction's state (armed: filled by the hooks during the backward).
  std::mutex mu_;
  bool armed_ = false;
  std::vector<torch::Tensor> flat_;     // per bucket
  std::vector<int64_t> missing_;        // per bucket: parameters not packed yet
  std::vector<char> packed_;            // per parameter
  std::vector<double> have_;            // per parameter: 1 when this rank has its gradient
  std::vector<Comm::Pending> pending_;  // started all-reduces, in bucket order
  size_t next_ = 0;                     // the next bucket to start
  size_t started_early_ = 0;
};

}  // namespace infini
