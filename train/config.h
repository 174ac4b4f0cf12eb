// The run configuration: one plain struct per component, the whole tree, and its YAML edge
// (load with overrides, validate, print, save). Parsing happens here and nowhere else.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/model_config.h"
#include "data/data_config.h"

namespace infini {

struct RunConfig {
  std::string dir = "runs/default";  // run directory: config.yaml, metrics.jsonl, checkpoints/
  int64_t seed = 0;                  // global seed (weights init, data order, sampling)
  int64_t threads = 0;               // intra-op threads; 0 = all cores
  std::string device = "cpu";        // cpu | cuda (needs a LibTorch built with CUDA)
  std::string precision = "bf16";    // fp32 | bf16 (autocast; master weights stay fp32)
  std::string log_level = "info";    // trace | debug | info | warn | error
  bool deterministic = false;        // deterministic kernels where LibTorch offers them
};

struct OptimConfig {
  double lr = 3e-4;                        // peak learning rate of AdamW
  double weight_decay = 0.1;               // decoupled; not applied to norms, gates, biases
  std::vector<double> betas = {0.9, 0.95};  // AdamW beta1, beta2
  double eps = 1e-8;                       // AdamW epsilon
  double grad_clip = 1.0;                  // global gradient-norm clip; 0 = off
  double gate_lr_mult = 30.0;              // lr multiplier of the memory gates beta
};

struct ScheduleConfig {
  int64_t warmup_steps = 0;      // linear warm-up from 0 to optim.lr
  std::string decay = "cosine";  // cosine | linear | constant (after warm-up)
  double min_lr = 0.0;           // floor reached at train.max_steps
};

struct TrainConfig {
  int64_t max_steps = 100;         // optimizer steps
  int64_t batch_size = 8;          // sequences per micro-batch
  int64_t grad_accum = 1;          // micro-batches per optimizer step
  int64_t log_every = 10;          // metrics line every L steps
  int64_t eval_every = 0;          // validation every K steps (and at the end); 0 = only at the end
  int64_t eval_batches = 8;        // validation batches per evaluation; 0 = the whole split
  std::string on_nonfinite = "stop";  // stop | skip: what a NaN/inf loss or gradient does
  double peak_flops = 0.0;         // FLOP/s for MFU; 0 = not reported
};

struct CheckpointConfig {
  int64_t every = 0;      // checkpoint every K steps (and always at the end); 0 = only at the end
  int64_t keep_last = 3;  // step directories kept; 0 = all
};

struct Config {
  std::string stage;          // pretrain | sft | reward | ppo
  RunConfig run;
  ModelConfig model;
  TokenizerConfig tokenizer;
  DataConfig data;
  OptimConfig optim;
  ScheduleConfig schedule;
  TrainConfig train;
  CheckpointConfig checkpoint;
  std::string init_from;      // weights only, from a run or step directory ("" = fresh init)
  std::string resume = "auto";  // auto | never
};

template <class V> void visit_fields(RunConfig& c, V& v) {
  v("dir", c.dir, "run directory");
  v("seed", c.seed, "global seed");
  v("threads", c.threads, "intra-op threads; 0 = all cores");
  v("device", c.device, "cpu | cuda");
  v("precision", c.precision, "fp32 | bf16");
  v("log_level", c.log_level, "trace | debug | info | warn | error");
  v("deterministic", c.deterministic, "deterministic kernels where available");
}
template <class V> void visit_fields(OptimConfig& c, V& v) {
  v("lr", c.lr, "peak learning rate");
  v("weight_decay", c.weight_decay, "AdamW decoupled weight decay");
  v("betas", c.betas, "AdamW betas");
  v("eps", c.eps, "AdamW epsilon");
  v("grad_clip", c.grad_clip, "global grad-norm clip; 0 = off");
  v("gate_lr_mult", c.gate_lr_mult, "lr multiplier of the memory gates");
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
}
template <class V> void visit_fields(CheckpointConfig& c, V& v) {
  v("every", c.every, "checkpoint every K steps; 0 = at the end");
  v("keep_last", c.keep_last, "checkpoints kept; 0 = all");
}
template <class V> void visit_fields(Config& c, V& v) {
  v("stage", c.stage, "pretrain | sft | reward | ppo");
  v.section("run", c.run);
  v.section("model", c.model);
  v.section("tokenizer", c.tokenizer);
  v.section("data", c.data);
  v.section("optim", c.optim);
  v.section("schedule", c.schedule);
  v.section("train", c.train);
  v.section("checkpoint", c.checkpoint);
  v("init_from", c.init_from, "weights only, from a run or step directory");
  v("resume", c.resume, "auto | never");
}

// Loads a YAML file, applies `key.path=value` overrides (values in YAML syntax: 3, 1e-4, [a, b],
// true), then validates. Every error is an infini::ConfigError with one line naming the file,
// the line and the key path (or the override), what was expected and what was found.
Config load_config(const std::string& path, const std::vector<std::string>& overrides = {});

// Same, from YAML text (`source` names it in messages).
Config parse_config(const std::string& yaml_text, const std::string& source,
                    const std::vector<std::string>& overrides = {});

// Checks values and their consistency; throws ConfigError naming the key path.
void validate_config(const Config& c, const std::string& source);

// The resolved config as YAML with a comment per field; loading it back gives an identical Config.
std::string config_to_yaml(const Config& c);

// Field-wise equality (for the round-trip guarantee).
bool configs_equal(const Config& a, const Config& b);

}  // namespace infini
