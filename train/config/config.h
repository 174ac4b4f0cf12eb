// The run configuration: one plain struct per component, the whole tree, and its YAML edge
// (load with overrides, validate, print, save). Parsing happens here and nowhere else.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/lora_config.h"
#include "core/model_config.h"
#include "train/config/choices.h"
#include "data/data_config.h"

namespace infini {

struct RunConfig {
  std::string dir = "runs/default";  // run directory: config.yaml, metrics.jsonl, checkpoints/
  int64_t seed = 0;                  // global seed (weights init, data order, sampling)
  int64_t threads = 0;               // intra-op threads; 0 = this node's cores / its ranks
  RunDevice device = RunDevice::cpu;  // cpu | cuda (needs a LibTorch built with CUDA)
  // fp32 | bf16 (autocast; master weights stay fp32) | auto: bf16 where the device computes it natively
  // (CUDA, a CPU with AVX512-BF16 or AMX), else fp32 (emulated bf16 measured 14-22x slower than fp32)
  Precision precision = Precision::auto_;
  LogLevel log_level = LogLevel::info;    // trace | debug | info | warn | error
  bool deterministic = false;        // deterministic kernels where LibTorch offers them
  bool tensorboard = true;           // TensorBoard event files beside metrics.jsonl (docs/monitoring.md)
  int64_t dist_timeout_s = 300;      // data parallel: seconds a rank waits for the others (joining, each
                                     // collective) before it stops with exit code 5 (docs/scaling.md)
  double dist_bucket_mb = 4.0;       // data parallel: MB of gradients per all-reduce bucket; buckets start
                                     // during the backward as they fill (docs/scaling.md)
};

struct OptimConfig {
  double lr = 3e-4;                        // peak learning rate of AdamW
  double weight_decay = 0.1;               // decoupled; not applied to norms, gates, biases
  std::vector<double> betas = {0.9, 0.95};  // AdamW beta1, beta2
  double eps = 1e-8;                       // AdamW epsilon
  double grad_clip = 1.0;                  // global gradient-norm clip; 0 = off
  double gate_lr_mult = 30.0;              // lr multiplier of the memory gates beta
  int64_t freeze_layers = 0;               // the token embedding and the first N blocks get no updates
                                           // (an SFT trunk kept intact under new blocks); 0 = train all
};

struct ScheduleConfig {
  int64_t warmup_steps = 0;      // linear warm-up from 0 to optim.lr
  Decay decay = Decay::cosine;   // cosine | linear | constant (after warm-up)
  double min_lr = 0.0;           // floor reached at train.max_steps
};

struct TrainConfig {
  int64_t max_steps = 100;         // optimizer steps
  int64_t batch_size = 8;          // sequences per micro-batch
  int64_t grad_accum = 1;          // micro-batches per optimizer step
  int64_t log_every = 10;          // metrics line every L steps
  int64_t eval_every = 0;          // validation every K steps (and at the end); 0 = only at the end
  int64_t eval_batches = 8;        // validation batches per evaluation; 0 = the whole split
  OnNonfinite on_nonfinite = OnNonfinite::stop;  // stop | skip: what a NaN/inf loss or gradient does
  double peak_flops = 0.0;         // FLOP/s for MFU; 0 = not reported
  int64_t stop_after = 0;          // end this invocation after N steps, checkpointed (the schedule
                                   // still runs to max_steps); 0 = run to max_steps
  PrefixGradient prefix_gradient = PrefixGradient::none;  // with model.memory.gradient: detach, what the segments
                                   // before a record's first counted target learn: none (they only
                                   // carry the memory forward) | writes (their memory writes also
                                   // get the gradient the loss puts on the memory it reads; ~4x that
                                   // prefix's cost, memory still bounded; train/run/trainer.h, lm_loss)
  double prefix_write_weight = 1.0;  // writes: multiplies the gradient the writes get (summed
                                   // over thousands of segments it can dwarf the rest)
};

struct CheckpointConfig {
  int64_t every = 0;      // checkpoint every K steps (and always at the end); 0 = only at the end
  int64_t keep_last = 3;  // step directories kept; 0 = all
};

// stage: reward - the pairwise loss of the reward model (docs/rlhf.md).
struct RewardConfig {
  double margin = 0.0;       // loss -log sigmoid(r_chosen - r_rejected - margin)
  double center_coef = 0.0;  // + center_coef * (r_chosen + r_rejected)^2 keeps scores near 0
};

// stage: ppo - rollouts, rewards and the clipped updates (docs/rlhf.md). train.max_steps counts
// rollouts, train.batch_size is prompts per rollout; init_from is the SFT model (actor + reference).
struct PPOConfig {
  std::string reward_model;           // reward run or checkpoint (critic init; scores when reward_source uses it)
  RewardSource reward_source = RewardSource::model;  // model | rule | sum (rule: match against the record's answer)
  RuleMatch rule = RuleMatch::exact;  // exact | numeric: how a response is matched with its answer
  int64_t mini_batch_size = 4;        // sequences per PPO update
  int64_t ppo_epochs = 2;             // passes over each rollout batch
  double actor_lr = 1e-5;             // AdamW lr of the actor (constant)
  double critic_lr = 1e-5;            // AdamW lr of the critic (constant)
  double temperature = 1.0;           // sampling temperature of rollouts (> 0)
  int64_t top_k = 0;                  // must be 0 (all tokens): see train/config/validate.cpp
  double top_p = 1.0;                 // must be 1 (all tokens)
  int64_t max_new_tokens = 16;        // response length cap
  double kl_coef = 0.05;              // KL penalty coefficient (initial value when adaptive)
  bool kl_adaptive = false;           // adapt kl_coef toward kl_target
  double kl_target = 6.0;             // target KL per response (nats) of the adaptive controller
  double kl_horizon = 10000;          // horizon of the adaptive controller
  double gamma = 1.0;                 // GAE discount
  double lambda = 0.95;               // GAE lambda
  double clip_eps = 0.2;              // policy ratio clip
  double value_clip = 0.2;            // value clip around the rollout's values
  bool whiten_advantages = true;      // normalise advantages per rollout batch
  double reward_clip = 0.0;           // clip scores to +-reward_clip; 0 = off
  double missing_eos_penalty = 0.0;   // subtracted from the score of a response without EOS; 0 = off
  int64_t eval_every = 0;             // greedy true accuracy on data.val every K rollouts (and first/last); 0 = first/last only
  int64_t eval_prompts = 32;          // held-out prompts per data.val file per evaluation (accuracy per file too)
  int64_t critic_warmup = 0;          // the first K rollouts update the critic only (actor unchanged); 0 = off
  int64_t samples_per_prompt = 1;     // responses sampled per prompt; a rollout holds batch_size x this
  Advantage advantage = Advantage::gae;  // gae (critic + GAE) | rloo (score minus the mean of the prompt's
                                      // other samples, KL as return-to-go; no critic; needs samples_per_prompt >= 2)
                                      // | grpo (score normalised within the prompt's group, KL as a loss term)
  bool grpo_scale_rewards = true;     // grpo: divide by the group's standard deviation (false: centre only)
  LossAverage loss_average = LossAverage::token;  // policy loss over all response tokens, or per sequence first
};

// stage: dpo - Direct Preference Optimization on preference pairs (docs/rlhf.md). The policy starts
// from init_from; the frozen reference is the same checkpoint unless `reference` names another.
struct DpoConfig {
  double beta = 0.1;             // strength of the implicit KL toward the reference (> 0)
  DpoLoss loss = DpoLoss::sigmoid;  // sigmoid (DPO) | ipo (on per-token mean log-probs) | hinge
  double label_smoothing = 0.0;  // sigmoid only: assumed share of flipped labels, in [0, 0.5)
  std::string reference;         // frozen reference run, step dir or HF folder ("" = init_from)
};

struct Config {
  Stage stage = Stage::pretrain;  // pretrain | sft | reward | ppo | dpo (required in the YAML)
  RunConfig run;
  ModelConfig model;
  TokenizerConfig tokenizer;
  DataConfig data;
  OptimConfig optim;
  ScheduleConfig schedule;
  TrainConfig train;
  CheckpointConfig checkpoint;
  RewardConfig reward;
  PPOConfig ppo;
  DpoConfig dpo;
  LoraConfig lora;            // low-rank adapters on init_from's frozen weights (docs/lora.md); rank 0 = off
  std::string init_from;      // weights only, from a run or step directory or a Hugging Face folder ("" = fresh init)
  bool init_extra_layers = false;  // true: blocks deeper than init_from's model start fresh (a deeper
                                   // reward model on a shallower SFT trunk); false: a depth mismatch is an error
  Resume resume = Resume::auto_;  // auto (from the run's latest checkpoint, if any) | never
};

template <class V> void visit_fields(RunConfig& c, V& v) {
  v("dir", c.dir, "run directory");
  v("seed", c.seed, "global seed");
  v("threads", c.threads, "intra-op threads; 0 = this node's cores / its ranks");
  v("device", c.device, "cpu | cuda");
  v("precision", c.precision, "fp32 | bf16 | auto (bf16 where native, else fp32)");
  v("log_level", c.log_level, "trace | debug | info | warn | error");
  v("deterministic", c.deterministic, "deterministic kernels where available");
  v("tensorboard", c.tensorboard, "TensorBoard event files in the run directory");
  v("dist_timeout_s", c.dist_timeout_s, "data parallel: seconds to wait for the other ranks");
  v("dist_bucket_mb", c.dist_bucket_mb, "data parallel: MB of gradients per all-reduce bucket");
}
template <class V> void visit_fields(OptimConfig& c, V& v) {
  v("lr", c.lr, "peak learning rate");
  v("weight_decay", c.weight_decay, "AdamW decoupled weight decay");
  v("betas", c.betas, "AdamW betas");
  v("eps", c.eps, "AdamW epsilon");
  v("grad_clip", c.grad_clip, "global grad-norm clip; 0 = off");
  v("gate_lr_mult", c.gate_lr_mult, "lr multiplier of the memory gates");
  v("freeze_layers", c.freeze_layers, "embedding + first N blocks not updated; 0 = train all");
}
template <class V> void visit_fields(ScheduleConfig& c, V& v) {
  v("warmup_steps", c.warmup_steps, "linear warm-up steps");
  v("decay", c.decay, "cosine | linear | constant");
  v("min_lr", c.min_lr, "learning rate at max_steps");
}
template <class V> void visit_fields(TrainConfig& c, V& v) {
  v("max_steps", c.max_steps, "optimizer steps");
  v("batch_size", c.batch_size, "sequences per micro-batch");
  v("grad_accum", c.grad_accum, "micro-batches per step");
  v("log_every", c.log_every, "log every L steps");
  v("eval_every", c.eval_every, "validate every K steps; 0 = at the end");
  v("eval_batches", c.eval_batches, "batches per validation; 0 = all");
  v("on_nonfinite", c.on_nonfinite, "stop | skip");
  v("peak_flops", c.peak_flops, "peak FLOP/s for MFU; 0 = off");
  v("stop_after", c.stop_after, "end this invocation after N steps; 0 = off");
  v("prefix_gradient", c.prefix_gradient, "none | writes (detached memory: train the prefix's writes)");
  v("prefix_write_weight", c.prefix_write_weight, "weight of the writes' gradient");
}
template <class V> void visit_fields(CheckpointConfig& c, V& v) {
  v("every", c.every, "checkpoint every K steps; 0 = at the end");
  v("keep_last", c.keep_last, "checkpoints kept; 0 = all");
}
template <class V> void visit_fields(RewardConfig& c, V& v) {
  v("margin", c.margin, "pairwise loss margin");
  v("center_coef", c.center_coef, "score centring coefficient; 0 = off");
}
template <class V> void visit_fields(PPOConfig& c, V& v) {
  v("reward_model", c.reward_model, "reward run or checkpoint");
  v("reward_source", c.reward_source, "model | rule | sum");
  v("rule", c.rule, "exact | numeric");
  v("mini_batch_size", c.mini_batch_size, "sequences per PPO update");
  v("ppo_epochs", c.ppo_epochs, "passes over each rollout batch");
  v("actor_lr", c.actor_lr, "actor learning rate");
  v("critic_lr", c.critic_lr, "critic learning rate");
  v("temperature", c.temperature, "rollout sampling temperature");
  v("top_k", c.top_k, "rollout top-k; only 0 (all)");
  v("top_p", c.top_p, "rollout top-p; only 1 (all)");
  v("max_new_tokens", c.max_new_tokens, "response length cap");
  v("kl_coef", c.kl_coef, "KL penalty coefficient (initial when adaptive)");
  v("kl_adaptive", c.kl_adaptive, "adapt kl_coef toward kl_target");
  v("kl_target", c.kl_target, "target KL of the adaptive controller");
  v("kl_horizon", c.kl_horizon, "horizon of the adaptive controller");
  v("gamma", c.gamma, "GAE discount");
  v("lambda", c.lambda, "GAE lambda");
  v("clip_eps", c.clip_eps, "policy ratio clip");
  v("value_clip", c.value_clip, "value clip");
  v("whiten_advantages", c.whiten_advantages, "normalise advantages");
  v("reward_clip", c.reward_clip, "score clip; 0 = off");
  v("missing_eos_penalty", c.missing_eos_penalty, "penalty for no EOS; 0 = off");
  v("eval_every", c.eval_every, "true accuracy every K rollouts; 0 = first/last");
  v("eval_prompts", c.eval_prompts, "held-out prompts per data.val file per evaluation");
  v("critic_warmup", c.critic_warmup, "first K rollouts update the critic only");
  v("samples_per_prompt", c.samples_per_prompt, "responses per prompt in a rollout");
  v("advantage", c.advantage, "gae | rloo | grpo");
  v("grpo_scale_rewards", c.grpo_scale_rewards, "grpo: divide by the group's std");
  v("loss_average", c.loss_average, "token | sequence");
}
template <class V> void visit_fields(DpoConfig& c, V& v) {
  v("beta", c.beta, "KL strength toward the reference");
  v("loss", c.loss, "sigmoid | ipo | hinge");
  v("label_smoothing", c.label_smoothing, "sigmoid: share of flipped labels; 0 = off");
  v("reference", c.reference, "frozen reference; \"\" = init_from");
}
template <class V> void visit_fields(Config& c, V& v) {
  v("stage", c.stage, "pretrain | sft | reward | ppo | dpo");
  v.section("run", c.run);
  v.section("model", c.model);
  v.section("tokenizer", c.tokenizer);
  v.section("data", c.data);
  v.section("optim", c.optim);
  v.section("schedule", c.schedule);
  v.section("train", c.train);
  v.section("checkpoint", c.checkpoint);
  v.section("reward", c.reward);
  v.section("ppo", c.ppo);
  v.section("dpo", c.dpo);
  v.section("lora", c.lora);
  v("init_from", c.init_from, "weights only, from a run or step directory or a Hugging Face folder");
  v("init_extra_layers", c.init_extra_layers, "true: blocks deeper than init_from's model start fresh");
  v("resume", c.resume, "auto | never");
}

// Loads a YAML file and the files it names as `base: FILE` (relative to the file that names it; a
// base may have a base, a cycle is an error): the deepest base is read first and each file then sets
// the keys it gives, sections merged key by key, lists replaced whole. Then applies `key.path=value`
// overrides (values in YAML syntax: 3, 1e-4, [a, b], true) and validates. Every error is an infini::ConfigError with one line naming the file,
// the line and the key path (or the override), what was expected and what was found.
Config load_config(const std::string& path, const std::vector<std::string>& overrides = {});

// Same, from YAML text (`source` names it in messages; a `base:` in it is relative to source's folder).
Config parse_config(const std::string& yaml_text, const std::string& source,
                    const std::vector<std::string>& overrides = {});

// Checks values and their consistency; throws ConfigError naming the key path.
void validate_config(const Config& c, const std::string& source);

// The resolved config as YAML with a comment per field; loading it back gives an identical Config.
std::string config_to_yaml(const Config& c);

// Field-wise equality (for the round-trip guarantee).
bool configs_equal(const Config& a, const Config& b);

}  // namespace infini
