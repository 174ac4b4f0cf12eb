// GradSync (see grad_sync.h): buckets built once, in parameter order; per step pack, reduce, unpack.
#include "train/dist/grad_sync.h"

#include <fmt/format.h>

namespace infini {

GradSync::GradSync(std::shared_ptr<Comm> comm, std::vector<torch::Tensor> params, int64_t bucket_bytes)
    : comm_(std::move(comm)), params_(std::move(params)) {
  for (size_t i = 0; i < params_.size(); ++i) {
    const torch::Tensor& p = params_[i];
    const int64_t b = p.numel() * static_cast<int64_t>(p.element_size());
    bytes_ += b;
    const bool fits = !buckets_.empty() && buckets_.back().dtype == p.scalar_type() &&
                      (buckets_.back().numel * static_cast<int64_t>(p.element_size()) + b <= bucket_bytes);
    if (!fits) buckets_.push_back({{}, 0, p.scalar_type()});
    buckets_.back().params.push_back(i);
    buckets_.back().numel += p.numel();
  }
}

void GradSync::reduce(torch::Tensor extra) {
  if (!comm_->distributed()) return;
  // Which gradients exist where: a count per parameter, reduced with the extras.
  const int64_t n_extra = extra.numel();
  torch::Tensor small = torch::zeros({n_extra + static_cast<int64_t>(params_.size())}, torch::kFloat64);
  small.narrow(0, 0, n_extra).copy_(extra.reshape({-1}));
  auto* have = small.data_ptr<double>() + n_extra;
  std::vector<torch::Tensor> flat;
  std::vector<Comm::Pending> pending;
  for (const Bucket& b : buckets_) {
    torch::Tensor buf = torch::zeros({b.numel}, torch::TensorOptions().dtype(b.dtype));
    int64_t at = 0;
    for (size_t i : b.params) {
      const torch::Tensor& g = params_[i].grad();
      const int64_t n = params_[i].numel();
      if (g.defined()) {
        buf.narrow(0, at, n).copy_(g.reshape({-1}));
        have[i] = 1;
      }
      at += n;
    }
    pending.push_back(comm_->all_reduce_sum_async(buf, fmt::format("the gradient all-reduce (bucket {} of {})",
                                                                   flat.size() + 1, buckets_.size())));
    flat.push_back(buf);
  }
  pending.push_back(comm_->all_reduce_sum_async(small, "the loss and metric all-reduce"));
  for (auto& p : pending) p.wait();
  for (size_t k = 0; k < buckets_.size(); ++k) {
    int64_t at = 0;
    for (size_t i : buckets_[k].params) {
      torch::Tensor& p = params_[i];
      const int64_t n = p.numel();
      if (have[i] > 0) {
        torch::Tensor sum = flat[k].narrow(0, at, n).view(p.sizes());
        if (p.grad().defined()) p.mutable_grad().copy_(sum);
        else p.mutable_grad() = sum.to(p.device()).clone();
      } else if (p.grad().defined()) {
        p.mutable_grad() = torch::Tensor();
      }
      at += n;
    }
  }
  extra.copy_(small.narrow(0, 0, n_extra).view(extra.sizes()));
}

}  // namespace infini
