// GradSync (see grad_sync.h): buckets built once, from the last parameter to the first; per step
// pack (in the gradient hooks when armed, else all at once), start in bucket order, wait, unpack.
#include "train/dist/grad_sync.h"

#include <algorithm>

#include <fmt/format.h>

namespace infini {

GradSync::GradSync(std::shared_ptr<Comm> comm, std::vector<torch::Tensor> params, int64_t bucket_bytes)
    : comm_(std::move(comm)), params_(std::move(params)), bucket_of_(params_.size()) {
  for (size_t k = params_.size(); k-- > 0;) {
    const torch::Tensor& p = params_[k];
    const int64_t b = p.numel() * static_cast<int64_t>(p.element_size());
    bytes_ += b;
    const bool fits = !buckets_.empty() && buckets_.back().dtype == p.scalar_type() &&
                      (buckets_.back().numel * static_cast<int64_t>(p.element_size()) + b <= bucket_bytes);
    if (!fits) buckets_.push_back({{}, {}, 0, p.scalar_type()});
    buckets_.back().params.push_back(k);
    buckets_.back().offsets.push_back(buckets_.back().numel);
    buckets_.back().numel += p.numel();
    bucket_of_[k] = buckets_.size() - 1;
  }
  if (!comm_->distributed()) return;
  for (size_t k = 0; k < params_.size(); ++k)
    if (params_[k].requires_grad())
      hooks_.emplace_back(k, params_[k].register_hook([this, k](const torch::Tensor& g) { on_grad(k, g); }));
}

GradSync::~GradSync() {
  for (const auto& [k, handle] : hooks_) params_[k].remove_hook(handle);
}

void GradSync::arm() {
  if (!comm_->distributed()) return;
  std::lock_guard<std::mutex> l(mu_);
  reset();
  armed_ = true;
}

void GradSync::reset() {
  flat_.clear();
  for (const Bucket& b : buckets_) flat_.push_back(torch::zeros({b.numel}, torch::TensorOptions().dtype(b.dtype)));
  missing_.clear();
  for (const Bucket& b : buckets_) missing_.push_back(static_cast<int64_t>(b.params.size()));
  packed_.assign(params_.size(), 0);
  have_.assign(params_.size(), 0.0);
  pending_.clear();
  next_ = 0;
}

// Runs inside the backward, before the gradient is added to .grad: what .grad will hold is what it
// holds now (earlier micro-batches) plus this gradient.
void GradSync::on_grad(size_t param, const torch::Tensor& grad) {
  std::lock_guard<std::mutex> l(mu_);
  if (!armed_ || packed_[param]) return;
  const torch::Tensor& acc = params_[param].grad();
  pack(param, acc.defined() ? acc + grad : grad);
  while (next_ < buckets_.size() && missing_[next_] == 0) start(next_++);
}

void GradSync::pack(size_t param, const torch::Tensor& grad) {
  const size_t k = bucket_of_[param];
  const Bucket& b = buckets_[k];
  const size_t j = static_cast<size_t>(std::find(b.params.begin(), b.params.end(), param) - b.params.begin());
  if (grad.defined()) {
    flat_[k].narrow(0, b.offsets[j], params_[param].numel()).copy_(grad.reshape({-1}));
    have_[param] = 1;
  }
  packed_[param] = 1;
  --missing_[k];
}

void GradSync::start(size_t k) {
  pending_.push_back(comm_->all_reduce_sum_async(
      flat_[k], fmt::format("the gradient all-reduce (bucket {} of {})", k + 1, buckets_.size())));
}

void GradSync::reduce(torch::Tensor extra) {
  if (!comm_->distributed()) return;
  std::lock_guard<std::mutex> l(mu_);
  if (!armed_) reset();  // nothing packed yet: everything is packed below, after the backward
  armed_ = false;
  started_early_ = next_;
  // What did not arrive through the hooks: gradients of earlier micro-batches only, or none.
  for (size_t i = 0; i < params_.size(); ++i)
    if (!packed_[i]) pack(i, params_[i].grad());
  while (next_ < buckets_.size()) start(next_++);
  // Which gradients exist where: a count per parameter, reduced with the extras.
  const int64_t n_extra = extra.numel();
  torch::Tensor small = torch::zeros({n_extra + static_cast<int64_t>(params_.size())}, torch::kFloat64);
  small.narrow(0, 0, n_extra).copy_(extra.reshape({-1}));
  std::copy(have_.begin(), have_.end(), small.data_ptr<double>() + n_extra);
  pending_.push_back(comm_->all_reduce_sum_async(small, "the loss and metric all-reduce"));
  for (auto& p : pending_) p.wait();
  pending_.clear();
  const double* have = small.data_ptr<double>() + n_extra;
  for (size_t k = 0; k < buckets_.size(); ++k) {
    const Bucket& b = buckets_[k];
    for (size_t j = 0; j < b.params.size(); ++j) {
      torch::Tensor& p = params_[b.params[j]];
      if (have[b.params[j]] > 0) {
        torch::Tensor sum = flat_[k].narrow(0, b.offsets[j], p.numel()).view(p.sizes());
        if (p.grad().defined()) p.mutable_grad().copy_(sum);
        else p.mutable_grad() = sum.to(p.device()).clone();
      } else if (p.grad().defined()) {
        p.mutable_grad() = torch::Tensor();
      }
    }
  }
  extra.copy_(small.narrow(0, 0, n_extra).view(extra.sizes()));
}

}  // namespace infini
