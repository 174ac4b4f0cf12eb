// AdamW with parameter groups, its moments keyed by parameter NAME so checkpoints are portable
// and independent of LibTorch's internal optimizer-state layout (which changed across versions).
#pragma once
#include <map>
#include <string>
#include <vector>

#include <torch/torch.h>

namespace infini {

struct AdamWGroup {
  std::vector<std::string> names;    // parameter names in this group
  std::vector<torch::Tensor> params;  // same order as names
  double lr_mult = 1.0;               // lr of the group = schedule lr * lr_mult
  double weight_decay = 0.0;          // decoupled weight decay of the group
};

// The update of torch.optim.AdamW (decoupled decay, bias-corrected moments), step by step.
class AdamW {
 public:
  AdamW(std::vector<AdamWGroup> groups, double beta1, double beta2, double eps);
  void step(double lr);  // one update of every parameter that has a gradient
  void zero_grad();
  int64_t steps() const { return step_; }
  const std::vector<AdamWGroup>& groups() const { return groups_; }

  // "exp_avg.<name>", "exp_avg_sq.<name>" (fp32) plus "step" (int64 scalar).
  std::map<std::string, torch::Tensor> state_dict() const;
  // Throws infini::Error naming the missing or mis-shaped moment (source = file path for messages).
  void load_state_dict(const std::map<std::string, torch::Tensor>& state, const std::string& source);

 private:
  std::vector<AdamWGroup> groups_;
  double beta1_, beta2_, eps_;
  int64_t step_ = 0;
  std::map<std::string, torch::Tensor> exp_avg_, exp_avg_sq_;
};

// Global gradient norm of every group's parameters (fp32 accumulation); when max_norm > 0 and the
// norm is finite and larger, gradients are scaled in place down to max_norm. Returns the norm.
double clip_grad_norm(const std::vector<AdamWGroup>& groups, double max_norm);
// The same in two halves, so a caller can read the norm together with other values in one
// device-to-host copy: the norm as a 0-dim fp64 tensor on the gradients' device (0 without
// gradients), and the scaling once the norm is known on the host.
torch::Tensor grad_norm_tensor(const std::vector<AdamWGroup>& groups);
void clip_grads_to(const std::vector<AdamWGroup>& groups, double max_norm, double norm);

// Groups a model's parameters: memory gates (name ends in ".gate") get lr * gate_lr_mult and no
// decay; norms (1-d weights) and biases get no decay; every other matrix gets weight_decay.
std::vector<AdamWGroup> make_param_groups(const torch::nn::Module& model, double weight_decay,
                                          double gate_lr_mult);

}  // namespace infini
