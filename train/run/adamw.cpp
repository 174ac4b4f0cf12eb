// AdamW, written out so its state is keyed by parameter name and its arithmetic is visible.
// Matches torch.optim.AdamW: p *= 1 - lr*wd; m, v moments; p -= lr/bc1 * m / (sqrt(v)/sqrt(bc2) + eps).
#include "train/run/adamw.h"

#include <cmath>

#include <fmt/format.h>

#include "core/error.h"

namespace infini {

AdamW::AdamW(std::vector<AdamWGroup> groups, double beta1, double beta2, double eps)
    : groups_(std::move(groups)), beta1_(beta1), beta2_(beta2), eps_(eps) {
  for (const auto& g : groups_)
    for (size_t i = 0; i < g.params.size(); ++i) {
      exp_avg_[g.names[i]] = torch::zeros_like(g.params[i], torch::kFloat);
      exp_avg_sq_[g.names[i]] = torch::zeros_like(g.params[i], torch::kFloat);
    }
}

void AdamW::zero_grad() {
  for (auto& g : groups_)
    for (auto& p : g.params)
      if (p.grad().defined()) p.mutable_grad() = torch::Tensor();
}

void AdamW::step(double lr) {
  torch::NoGradGuard no_grad;
  ++step_;
  const double bc1 = 1.0 - std::pow(beta1_, static_cast<double>(step_));
  const double bc2 = 1.0 - std::pow(beta2_, static_cast<double>(step_));
  for (auto& g : groups_) {
    const double glr = lr * g.lr_mult;
    for (size_t i = 0; i < g.params.size(); ++i) {
      torch::Tensor& p = g.params[i];
      if (!p.grad().defined()) continue;
      const torch::Tensor grad = p.grad().to(torch::kFloat);
      torch::Tensor& m = exp_avg_[g.names[i]];
      torch::Tensor& v = exp_avg_sq_[g.names[i]];
      if (g.weight_decay != 0) p.mul_(1.0 - glr * g.weight_decay);
      m.mul_(beta1_).add_(grad, 1.0 - beta1_);
      v.mul_(beta2_).addcmul_(grad, grad, 1.0 - beta2_);
      torch::Tensor denom = v.sqrt();  // one temporary, finished in place
      denom.div_(std::sqrt(bc2)).add_(eps_);
      p.addcdiv_(m, denom, -glr / bc1);
    }
  }
}

std::map<std::string, torch::Tensor> AdamW::state_dict() const {
  std::map<std::string, torch::Tensor> out;
  for (const auto& [name, t] : exp_avg_) out["exp_avg." + name] = t;
  for (const auto& [name, t] : exp_avg_sq_) out["exp_avg_sq." + name] = t;
  out["step"] = torch::tensor(step_, torch::kLong);
  return out;
}

void AdamW::load_state_dict(const std::map<std::string, torch::Tensor>& state, const std::string& source) {
  auto get = [&](const std::string& key, const torch::Tensor& like) {
    auto it = state.find(key);
    if (it == state.end()) throw Error(fmt::format("{}: optimizer state {} is missing", source, key));
    if (it->second.sizes() != like.sizes())
      throw Error(fmt::format("{}: optimizer state {} has shape {}, expected {}", source, key,
                              fmt::join(it->second.sizes(), "x"), fmt::join(like.sizes(), "x")));
    return it->second.to(like.device(), torch::kFloat).clone();
  };
  for (auto& [name, t] : exp_avg_) t = get("exp_avg." + name, t);
  for (auto& [name, t] : exp_avg_sq_) t = get("exp_avg_sq." + name, t);
  auto it = state.find("step");
  if (it == state.end()) throw Error(fmt::format("{}: optimizer state step is missing", source));
  step_ = it->second.item<int64_t>();
}

torch::Tensor grad_norm_tensor(const std::vector<AdamWGroup>& groups) {
  torch::NoGradGuard ng;
  std::vector<torch::Tensor> norms;  // one per gradient; one synchronisation for all of them
  for (const auto& g : groups)
    for (const auto& p : g.params)
      if (p.grad().defined()) norms.push_back(p.grad().to(torch::kFloat).norm().to(torch::kDouble));
  return norms.empty() ? torch::zeros({}, torch::kDouble) : torch::stack(norms).norm();
}

void clip_grads_to(const std::vector<AdamWGroup>& groups, double max_norm, double norm) {
  if (!(max_norm > 0 && std::isfinite(norm) && norm > max_norm)) return;
  torch::NoGradGuard ng;
  const double scale = max_norm / (norm + 1e-6);
  for (const auto& g : groups)
    for (const auto& p : g.params)
      if (p.grad().defined()) p.grad().mul_(scale);
}

double clip_grad_norm(const std::vector<AdamWGroup>& groups, double max_norm) {
  const double norm = grad_norm_tensor(groups).item<double>();
  clip_grads_to(groups, max_norm, norm);
  return norm;
}

std::vector<AdamWGroup> make_param_groups(const torch::nn::Module& model, double weight_decay,
                                          double gate_lr_mult) {
  AdamWGroup decay{{}, {}, 1.0, weight_decay}, no_decay{{}, {}, 1.0, 0.0}, gates{{}, {}, gate_lr_mult, 0.0};
  for (const auto& item : model.named_parameters(/*recurse=*/true)) {
    const std::string& name = item.key();
    const torch::Tensor& p = item.value();
    if (!p.requires_grad()) continue;
    const bool is_gate = name.size() >= 5 && name.compare(name.size() - 5, 5, ".gate") == 0;
    AdamWGroup& g = is_gate ? gates : (p.dim() < 2 ? no_decay : decay);
    g.names.push_back(name);
    g.params.push_back(p);
  }
  std::vector<AdamWGroup> groups;
  for (auto* g : {&decay, &no_decay, &gates})
    if (!g->params.empty()) groups.push_back(*g);
  return groups;
}

}  // namespace infini
