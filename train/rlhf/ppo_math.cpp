// Reward-model and PPO arithmetic (see ppo_math.h); everything in fp32, autocast off.
// Hand-derived values for each function are in tests/test_rlhf_math.cpp.
#include "train/rlhf/ppo_math.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "core/compat.h"
#include "core/error.h"

namespace infini {

PairwiseLoss pairwise_loss(const torch::Tensor& r_chosen, const torch::Tensor& r_rejected, double margin,
                           double center_coef) {
  compat::AutocastOff fp32;
  auto rc = r_chosen.to(torch::kFloat);   // (B)
  auto rr = r_rejected.to(torch::kFloat);  // (B)
  auto diff = rc - rr;                      // (B)
  PairwiseLoss out;
  // -log sigmoid(x) = softplus(-x), stable for large |x|.
  out.loss = torch::nn::functional::softplus(-(diff - margin)).mean();
  if (center_coef > 0) out.loss = out.loss + center_coef * (rc + rr).pow(2).mean();
  out.accuracy = (diff > 0).to(torch::kFloat).mean().item<double>();
  out.margin = diff.mean().item<double>();
  return out;
}

torch::Tensor last_token_scores(const torch::Tensor& scores, const torch::Tensor& lengths) {
  auto idx = (lengths.to(torch::kLong) - 1).clamp_min(0).unsqueeze(1);  // (B, 1)
  return scores.gather(1, idx).squeeze(1);                             // (B)
}

torch::Tensor token_logprobs(const torch::Tensor& logits, const torch::Tensor& targets) {
  compat::AutocastOff fp32;
  auto logp = torch::log_softmax(logits.to(torch::kFloat), -1);     // (B, A, V)
  return logp.gather(2, targets.to(torch::kLong).unsqueeze(2)).squeeze(2);  // (B, A)
}

torch::Tensor token_entropy(const torch::Tensor& logits) {
  compat::AutocastOff fp32;
  auto logp = torch::log_softmax(logits.to(torch::kFloat), -1);  // (B, A, V)
  return -(logp.exp() * logp).sum(-1);                            // (B, A)
}

torch::Tensor per_token_rewards(const torch::Tensor& logp, const torch::Tensor& logp_ref, const torch::Tensor& mask,
                                const torch::Tensor& score, double kl_coef) {
  auto m = mask.to(torch::kFloat);
  auto rewards = -kl_coef * (logp - logp_ref).to(torch::kFloat) * m;  // (B, A)
  // Last response position of each row: the highest index where mask is 1.
  const int64_t A = m.size(1);
  auto pos = torch::arange(A, m.options()).unsqueeze(0).expand_as(m);  // (B, A)
  auto last = (pos * m - (1 - m)).argmax(1, /*keepdim=*/true);          // (B, 1)
  auto has = m.sum(1, true) > 0;                                        // (B, 1)
  auto add = torch::where(has, score.to(torch::kFloat).unsqueeze(1), torch::zeros_like(score.to(torch::kFloat)).unsqueeze(1));
  return rewards.scatter_add(1, last, add);
}

Advantages gae(const torch::Tensor& rewards, const torch::Tensor& values, const torch::Tensor& mask, double gamma,
               double lambda) {
  auto m = mask.to(torch::kFloat);
  auto r = rewards.to(torch::kFloat) * m;
  auto v = values.to(torch::kFloat).detach() * m;
  const int64_t A = m.size(1);
  std::vector<torch::Tensor> adv(static_cast<size_t>(A));
  auto next_adv = torch::zeros({m.size(0)}, m.options());  // A_{t+1}, (B)
  auto next_v = torch::zeros({m.size(0)}, m.options());    // V_{t+1}, (B)
  auto next_m = torch::zeros({m.size(0)}, m.options());    // mask_{t+1}: 0 past the response
  for (int64_t t = A - 1; t >= 0; --t) {
    auto mt = m.select(1, t);
    auto delta = r.select(1, t) + gamma * next_m * next_v - v.select(1, t);
    auto a = mt * (delta + gamma * lambda * next_m * next_adv);
    adv[static_cast<size_t>(t)] = a;
    next_adv = a;
    next_v = v.select(1, t);
    next_m = mt;
  }
  Advantages out;
  out.advantages = torch::stack(adv, 1);  // (B, A)
  out.returns = (out.advantages + v) * m;
  return out;
}

torch::Tensor leave_one_out_baseline(const torch::Tensor& score, int64_t group) {
  if (group < 2 || score.numel() % group != 0)
    throw Error(fmt::format("leave-one-out baseline: {} scores do not form groups of {} (>= 2)", score.numel(), group));
  auto s = score.to(torch::kFloat).reshape({-1, group});  // (B / group, group)
  return ((s.sum(1, true) - s) / static_cast<double>(group - 1)).reshape(score.sizes());
}

double mixed_group_fraction(const torch::Tensor& score, int64_t group) {
  auto s = score.to(torch::kCPU).view({-1, group});
  auto spread = std::get<0>(s.max(1)) - std::get<0>(s.min(1));
  return (spread > 1e-6).to(torch::kFloat).mean().item<double>();
}

torch::Tensor masked_mean(const torch::Tensor& x, const torch::Tensor& mask) {
  auto m = mask.to(torch::kFloat);
  return (x.to(torch::kFloat) * m).sum() / m.sum().clamp_min(1.0);
}

torch::Tensor masked_sequence_mean(const torch::Tensor& x, const torch::Tensor& mask) {
  auto m = mask.to(torch::kFloat);
  auto tokens = m.sum(1);                                                     // (B)
  auto row_mean = (x.to(torch::kFloat) * m).sum(1) / tokens.clamp_min(1.0);  // (B)
  auto rows = (tokens > 0).to(torch::kFloat);
  return (row_mean * rows).sum() / rows.sum().clamp_min(1.0);
}

torch::Tensor group_advantages(const torch::Tensor& score, int64_t group, bool scale) {
  if (group < 2 || score.numel() % group != 0)
    throw Error(fmt::format("group advantages: {} scores do not form groups of {} (>= 2)", score.numel(), group));
  auto s = score.to(torch::kFloat).reshape({-1, group});  // (B / group, group)
  auto a = s - s.mean(1, true);
  if (scale) a = a / (s.std(1, /*unbiased=*/true, /*keepdim=*/true) + 1e-4);
  return a.reshape(score.sizes());
}

torch::Tensor k3_kl(const torch::Tensor& logp, const torch::Tensor& logp_ref) {
  auto d = logp_ref.to(torch::kFloat) - logp.to(torch::kFloat);
  return d.exp() - d - 1;
}

torch::Tensor masked_whiten(const torch::Tensor& x, const torch::Tensor& mask, bool shift_mean) {
  auto m = mask.to(torch::kFloat);
  auto xf = x.to(torch::kFloat);
  const double n = m.sum().item<double>();
  auto mean = masked_mean(xf, m);
  auto var = ((xf - mean).pow(2) * m).sum() / std::max(1.0, n - 1.0);  // unbiased
  auto w = (xf - mean) * torch::rsqrt(var + 1e-8);
  if (!shift_mean) w = w + mean;
  return w * m;
}

torch::Tensor masked_whiten_across(const torch::Tensor& x, const torch::Tensor& mask,
                                   const std::function<void(torch::Tensor&)>& sum_over_ranks) {
  auto m = mask.to(torch::kFloat);
  auto xf = x.to(torch::kFloat);
  auto sums = torch::stack({(xf * m).sum(), m.sum()}).to(torch::kCPU, torch::kFloat64);
  sum_over_ranks(sums);
  const double n = sums[1].item<double>();
  const double mean = sums[0].item<double>() / std::max(1.0, n);
  auto dev = torch::stack({((xf - mean).pow(2) * m).sum()}).to(torch::kCPU, torch::kFloat64);
  sum_over_ranks(dev);
  const double var = dev[0].item<double>() / std::max(1.0, n - 1.0);  // unbiased
  return (xf - mean) * (1.0 / std::sqrt(var + 1e-8)) * m;
}

PolicyLoss policy_loss(const torch::Tensor& logp_new, const torch::Tensor& logp_old, const torch::Tensor& advantages,
                       const torch::Tensor& mask, double clip_eps, bool per_sequence) {
  compat::AutocastOff fp32;
  auto m = mask.to(torch::kFloat);
  auto log_ratio = logp_new.to(torch::kFloat) - logp_old.to(torch::kFloat).detach();
  auto ratio = log_ratio.exp();                                          // (B, A)
  auto adv = advantages.to(torch::kFloat).detach();
  auto unclipped = -adv * ratio;
  auto clipped = -adv * ratio.clamp(1.0 - clip_eps, 1.0 + clip_eps);
  PolicyLoss out;
  const auto per_token = torch::max(unclipped, clipped);
  out.loss = per_sequence ? masked_sequence_mean(per_token, m) : masked_mean(per_token, m);
  out.clip_fraction = masked_mean((clipped > unclipped).to(torch::kFloat), m).item<double>();
  out.approx_kl = masked_mean(0.5 * log_ratio.detach().pow(2), m).item<double>();
  return out;
}

ValueLoss value_loss(const torch::Tensor& values, const torch::Tensor& values_old, const torch::Tensor& returns,
                     const torch::Tensor& mask, double clip_eps) {
  compat::AutocastOff fp32;
  auto m = mask.to(torch::kFloat);
  auto v = values.to(torch::kFloat);
  auto v_old = values_old.to(torch::kFloat).detach();
  auto R = returns.to(torch::kFloat).detach();
  auto v_clipped = v_old + (v - v_old).clamp(-clip_eps, clip_eps);
  auto l1 = (v - R).pow(2);
  auto l2 = (v_clipped - R).pow(2);
  ValueLoss out;
  out.loss = 0.5 * masked_mean(torch::max(l1, l2), m);
  out.clip_fraction = masked_mean((l2 > l1).to(torch::kFloat), m).item<double>();
  return out;
}

double explained_variance(const torch::Tensor& values, const torch::Tensor& returns, const torch::Tensor& mask) {
  auto m = mask.to(torch::kFloat);
  auto R = returns.to(torch::kFloat);
  auto resid = R - values.to(torch::kFloat);
  auto var = [&](const torch::Tensor& x) {
    auto mu = masked_mean(x, m);
    return masked_mean((x - mu).pow(2), m).item<double>();
  };
  const double vr = var(R);
  return vr > 0 ? 1.0 - var(resid) / vr : 0.0;
}

void KLController::update(double current_kl, int64_t n_steps) {
  if (!adaptive) return;
  const double e = std::clamp(current_kl / target - 1.0, -0.2, 0.2);
  value *= 1.0 + e * static_cast<double>(n_steps) / horizon;
}

nlohmann::json KLController::state() const {
  return {{"value", value}, {"adaptive", adaptive}, {"target", target}, {"horizon", horizon}};
}

void KLController::load_state(const nlohmann::json& j, const std::string& source) {
  if (!j.is_object() || !j.contains("value") || !j["value"].is_number())
    throw Error(fmt::format("{}: kl_controller.value missing or not a number", source));
  value = j["value"].get<double>();
}

}  // namespace infini
