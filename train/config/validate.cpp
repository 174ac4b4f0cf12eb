// Config value checks, one function per section (see train/config/validate.h).
#include "train/config/validate.h"

#include <initializer_list>

#include <fmt/format.h>

#include "core/error.h"

namespace infini {
namespace {

void check(bool ok, const std::string& message) {
  if (!ok) throw ConfigError(message);
}

bool one_of(const std::string& v, std::initializer_list<const char*> set) {
  for (const char* s : set)
    if (v == s) return true;
  return false;
}

}  // namespace

void check_run(const RunConfig& r) {
  check(r.threads >= 0, fmt::format("run.threads: expected >= 0, found {}", r.threads));
  check(r.dist_timeout_s >= 1, fmt::format("run.dist_timeout_s: expected >= 1 (seconds), found {}", r.dist_timeout_s));
  check(r.dist_bucket_mb > 0 && r.dist_bucket_mb <= 1024,
        fmt::format("run.dist_bucket_mb: expected a size in (0, 1024] MB, found {}", r.dist_bucket_mb));
  check(!r.dir.empty(), "run.dir: expected a directory, found an empty string");
}

void check_optim(const OptimConfig& o, const ModelConfig& m) {
  check(o.lr >= 0, fmt::format("optim.lr: expected >= 0, found {}", o.lr));
  check(o.weight_decay >= 0, fmt::format("optim.weight_decay: expected >= 0, found {}", o.weight_decay));
  check(o.betas.size() == 2 && o.betas[0] >= 0 && o.betas[0] < 1 && o.betas[1] >= 0 && o.betas[1] < 1,
        fmt::format("optim.betas: expected two numbers in [0, 1), found [{}]", fmt::join(o.betas, ", ")));
  check(o.eps > 0, fmt::format("optim.eps: expected > 0, found {}", o.eps));
  check(o.grad_clip >= 0, fmt::format("optim.grad_clip: expected >= 0, found {}", o.grad_clip));
  check(o.gate_lr_mult > 0, fmt::format("optim.gate_lr_mult: expected > 0, found {}", o.gate_lr_mult));
  check(o.freeze_layers >= 0 && o.freeze_layers < m.n_layers,
        fmt::format("optim.freeze_layers: expected 0 to model.n_layers - 1 ({}), found {}", m.n_layers - 1,
                    o.freeze_layers));
}

void check_schedule(const ScheduleConfig& s, const OptimConfig& o) {
  check(s.warmup_steps >= 0, fmt::format("schedule.warmup_steps: expected >= 0, found {}", s.warmup_steps));
  check(s.min_lr >= 0 && s.min_lr <= o.lr,
        fmt::format("schedule.min_lr: expected between 0 and optim.lr ({}), found {}", o.lr, s.min_lr));
}

void check_train(const TrainConfig& t, const ModelConfig& m) {
  check(t.max_steps >= 1, fmt::format("train.max_steps: expected >= 1, found {}", t.max_steps));
  check(t.batch_size >= 1, fmt::format("train.batch_size: expected >= 1, found {}", t.batch_size));
  check(t.grad_accum >= 1, fmt::format("train.grad_accum: expected >= 1, found {}", t.grad_accum));
  check(t.log_every >= 1, fmt::format("train.log_every: expected >= 1, found {}", t.log_every));
  check(t.eval_every >= 0, fmt::format("train.eval_every: expected >= 0, found {}", t.eval_every));
  check(t.eval_batches >= 0, fmt::format("train.eval_batches: expected >= 0, found {}", t.eval_batches));
  check(t.peak_flops >= 0, fmt::format("train.peak_flops: expected >= 0, found {}", t.peak_flops));
  check(t.stop_after >= 0, fmt::format("train.stop_after: expected >= 0, found {}", t.stop_after));
  check(t.prefix_write_weight >= 0,
        fmt::format("train.prefix_write_weight: expected >= 0, found {}", t.prefix_write_weight));
  check(t.prefix_gradient == PrefixGradient::none || (m.memory.enabled && m.memory.gradient == MemoryGradient::detach),
        fmt::format("train.prefix_gradient: writes needs model.memory with enabled: true and gradient: detach, "
                    "found enabled: {}, gradient: {}", m.memory.enabled, to_string(m.memory.gradient)));
}

void check_checkpoint(const CheckpointConfig& c) {
  check(c.every >= 0, fmt::format("checkpoint.every: expected >= 0, found {}", c.every));
  check(c.keep_last >= 0, fmt::format("checkpoint.keep_last: expected >= 0, found {}", c.keep_last));
}

void check_reward(const RewardConfig& r) {
  check(r.center_coef >= 0, fmt::format("reward.center_coef: expected >= 0, found {}", r.center_coef));
}

void check_ppo(const PPOConfig& p) {
  check(p.mini_batch_size >= 1, fmt::format("ppo.mini_batch_size: expected >= 1, found {}", p.mini_batch_size));
  check(p.ppo_epochs >= 1, fmt::format("ppo.ppo_epochs: expected >= 1, found {}", p.ppo_epochs));
  check(p.actor_lr >= 0, fmt::format("ppo.actor_lr: expected >= 0, found {}", p.actor_lr));
  check(p.critic_lr >= 0, fmt::format("ppo.critic_lr: expected >= 0, found {}", p.critic_lr));
  check(p.temperature > 0, fmt::format("ppo.temperature: expected > 0, found {}", p.temperature));
  // The old, reference and new log-probabilities (ratios, KL) are of the full softmax at
  // ppo.temperature; sampling from a top-k / top-p truncation of it would bias both.
  check(p.top_k == 0, fmt::format("ppo.top_k: expected 0 (PPO's ratios and KL are computed over the whole "
                                  "vocabulary; sampling from the top k would bias them), found {}", p.top_k));
  check(p.top_p == 1, fmt::format("ppo.top_p: expected 1 (PPO's ratios and KL are computed over the whole "
                                  "vocabulary; nucleus sampling would bias them), found {}", p.top_p));
  check(p.max_new_tokens >= 1, fmt::format("ppo.max_new_tokens: expected >= 1, found {}", p.max_new_tokens));
  check(p.kl_coef >= 0, fmt::format("ppo.kl_coef: expected >= 0, found {}", p.kl_coef));
  check(p.kl_target > 0, fmt::format("ppo.kl_target: expected > 0, found {}", p.kl_target));
  check(p.kl_horizon > 0, fmt::format("ppo.kl_horizon: expected > 0, found {}", p.kl_horizon));
  check(p.gamma >= 0 && p.gamma <= 1, fmt::format("ppo.gamma: expected in [0, 1], found {}", p.gamma));
  check(p.lambda >= 0 && p.lambda <= 1, fmt::format("ppo.lambda: expected in [0, 1], found {}", p.lambda));
  check(p.clip_eps > 0, fmt::format("ppo.clip_eps: expected > 0, found {}", p.clip_eps));
  check(p.value_clip > 0, fmt::format("ppo.value_clip: expected > 0, found {}", p.value_clip));
  check(p.reward_clip >= 0, fmt::format("ppo.reward_clip: expected >= 0, found {}", p.reward_clip));
  check(p.missing_eos_penalty >= 0,
        fmt::format("ppo.missing_eos_penalty: expected >= 0, found {}", p.missing_eos_penalty));
  check(p.eval_every >= 0, fmt::format("ppo.eval_every: expected >= 0, found {}", p.eval_every));
  check(p.critic_warmup >= 0, fmt::format("ppo.critic_warmup: expected >= 0, found {}", p.critic_warmup));
  check(p.samples_per_prompt >= 1,
        fmt::format("ppo.samples_per_prompt: expected >= 1, found {}", p.samples_per_prompt));
  check(p.advantage == Advantage::gae || p.samples_per_prompt >= 2,
        fmt::format("ppo.advantage: {} needs ppo.samples_per_prompt >= 2, found {}", choice_name(p.advantage),
                    p.samples_per_prompt));
  check(p.eval_prompts >= 0, fmt::format("ppo.eval_prompts: expected >= 0, found {}", p.eval_prompts));
}

void check_dpo(const DpoConfig& d) {
  check(d.beta > 0, fmt::format("dpo.beta: expected > 0, found {}", d.beta));
  check(d.label_smoothing >= 0 && d.label_smoothing < 0.5,
        fmt::format("dpo.label_smoothing: expected in [0, 0.5), found {}", d.label_smoothing));
  check(d.label_smoothing == 0 || d.loss == DpoLoss::sigmoid,
        fmt::format("dpo.label_smoothing: only the sigmoid loss uses it, found {} with loss {}", d.label_smoothing,
                    choice_name(d.loss)));
}

void check_lora(const Config& c) {
  const std::string err = c.lora.validate();
  check(err.empty(), err);
  if (!c.lora.enabled()) return;
  check(!c.init_from.empty(),
        fmt::format("lora.rank: adapters ({}) train on the frozen weights of a base model: set init_from, found none",
                    c.lora.rank));
  check(c.optim.freeze_layers == 0,
        fmt::format("optim.freeze_layers: with lora.rank {} every base weight is frozen already; expected 0, found {}",
                    c.lora.rank, c.optim.freeze_layers));
  check(!c.init_extra_layers,
        "init_extra_layers: new blocks would stay frozen at their random weights under lora; expected false");
}

void check_data(const DataConfig& d) {
  check(one_of(d.format, {"tokens", "sft", "preference", "prompts"}),
        fmt::format("data.format: expected tokens, sft, preference or prompts, found '{}'", d.format));
  check(d.seq_len >= 1, fmt::format("data.seq_len: expected >= 1, found {}", d.seq_len));
  check(one_of(d.truncate, {"left", "right", "drop"}),
        fmt::format("data.truncate: expected left, right or drop, found '{}'", d.truncate));
  check(d.prefetch >= 0, fmt::format("data.prefetch: expected >= 0, found {}", d.prefetch));
  check(d.max_record_bytes >= 1, fmt::format("data.max_record_bytes: expected >= 1, found {}", d.max_record_bytes));
  check(!d.pack || d.format != "tokens",
        "data.pack: token shards fill their rows already; expected false for format tokens, found true");
}

void check_stage(const Config& c) {
  if (c.stage == Stage::ppo) {
    check(c.ppo.reward_source == RewardSource::rule || !c.ppo.reward_model.empty(),
          fmt::format("ppo.reward_model: reward_source {} needs a reward run or checkpoint, found none",
                      choice_name(c.ppo.reward_source)));
    check(c.data.format == "prompts", fmt::format("data.format: stage ppo reads prompts, found '{}'", c.data.format));
  }
  if (c.stage == Stage::reward)
    check(c.data.format == "preference",
          fmt::format("data.format: stage reward reads preference pairs, found '{}'", c.data.format));
  if (c.stage == Stage::dpo) {
    check(c.data.format == "preference",
          fmt::format("data.format: stage dpo reads preference pairs, found '{}'", c.data.format));
    check(!c.init_from.empty(),
          "init_from: stage dpo starts the policy (and, without dpo.reference, the reference) from a checkpoint, "
          "found none");
  }
}

void check_config_values(const Config& c) {
  check_run(c.run);
  const std::string m = c.model.validate();
  check(m.empty(), m);
  check_optim(c.optim, c.model);
  check_schedule(c.schedule, c.optim);
  check_train(c.train, c.model);
  check_checkpoint(c.checkpoint);
  check_reward(c.reward);
  check_ppo(c.ppo);
  check_dpo(c.dpo);
  check_lora(c);
  check_stage(c);
  check_data(c.data);
}

}  // namespace infini
