// RunSession: what every training stage's run has around its loop, in one place: the run directory,
// logging, runtime (threads, seed, device), signal handlers, config.yaml, the tokenizer check,
// resume, metrics.jsonl, checkpoints (every part saved and loaded symmetrically, the whole step
// directory made durable) and the end-of-step decision (go on, interrupted, stopped, finished).
// Not a loop and not a stage: run_trainer (train/run/trainer.h) and the PPO stage drive it.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/decoder.h"
#include "data/loader.h"
#include "data/tokenizer.h"
#include "train/config/config.h"
#include "train/run/adamw.h"
#include "train/run/metrics_log.h"
#include "train/run/run_lock.h"
#include "train/run/runtime.h"

namespace infini {

// One stateful thing in a checkpoint. save writes its files under the step directory `dir` and/or
// its fields into trainer_state.json's object; load reads the same back (`source` names the file
// for error messages). A part with neither is fine (e.g. one whose state lives only in JSON).
struct CheckpointPart {
  std::string name;
  std::function<void(const std::string& dir, nlohmann::json& state)> save;
  std::function<void(const std::string& dir, const nlohmann::json& state, const std::string& source)> load;
};

// model.safetensors (+ optimizer.safetensors when opt is given) in `subdir` of the step directory
// ("" = the step directory itself); `metadata` goes into the model file (stage, tokenizer).
CheckpointPart model_part(const std::string& subdir, Decoder model, AdamW* opt,
                          std::map<std::string, std::string> metadata);
// A loader's position under `key`.
CheckpointPart loader_part(const std::string& key, Loader& loader);
// The default generators of the CPU and, on CUDA, of the run's device (rng_cpu, rng_cuda).
CheckpointPart rng_part(const torch::Device& device);
// A JSON value under `key`, read and written by the caller's functions (e.g. a KL controller).
CheckpointPart json_part(const std::string& key, std::function<nlohmann::json()> get,
                         std::function<void(const nlohmann::json&, const std::string& source)> set);

// The step a resume goes on from: trainer_state.json's (`state`, read from `source`) when its stage is
// `stage` and its step an integer >= 0; otherwise an infini::Error naming source and the key.
int64_t resume_step(const nlohmann::json& state, const std::string& source, const std::string& stage);

// How a step ended, as decided by RunSession::end_step.
enum class StepEnd {
  next,         // go on with the next step
  interrupted,  // SIGINT/SIGTERM: a checkpoint was written; exit with kExitInterrupted
  stopped,      // train.stop_after reached: a checkpoint was written; exit 0
};

class Comm;

class RunSession {
 public:
  // Creates the run directory and locks it (a ConfigError when another process holds it), logs
  // to RUN_DIR/train.log, sets up the runtime and the signal handlers, removes what interrupted
  // checkpoint writes left, loads the tokenizer (a ConfigError when needs_tokenizer and there is
  // none, or when model.vocab_size is smaller than its vocabulary) and finds the checkpoint to
  // resume from (resume: auto; see latest_checkpoint). config.yaml is written by resume(). `stage` names the stage in logs, in checkpoints and
  // in the resume check; `unit` names a step in messages ("step", or "rollout" for PPO).
  RunSession(const Config& cfg, std::string stage, bool needs_tokenizer, std::string unit = "step");

  const Config& config() const { return cfg_; }
  const Runtime& runtime() const { return rt_; }
  // This process's place in a data-parallel job (world size 1 without a launcher).
  const std::shared_ptr<Comm>& comm() const { return comm_; }
  const Tokenizer* tokenizer() const { return tok_ ? &*tok_ : nullptr; }
  const std::string& run_dir() const { return cfg_.run.dir; }
  const std::string& config_path() const { return config_path_; }
  // The metadata every model file of this run carries: stage, tokenizer path and hash.
  std::map<std::string, std::string> model_metadata() const;

  // Registers a checkpoint part; parts are saved and loaded in the order added.
  void add(CheckpointPart part);
  bool resuming() const { return !resume_dir_.empty(); }
  // Loads every part from the resume checkpoint and returns its step, or returns 0 when starting
  // fresh. Refused (nothing written): a checkpoint of another stage, a step that is not an integer
  // >= 0, a model config or tokenizer other than the checkpoint's (ConfigError naming the key, old
  // and new value). Other config changes since the last invocation are logged. Then writes
  // config.yaml and opens metrics.jsonl, keeping the records up to that step.
  int64_t resume();
  MetricsLog& metrics() { return *metrics_; }

  // True (and logged) when the run is already at max_steps: nothing is left to do.
  bool already_finished(int64_t step) const;
  // True (and logged) when SIGINT/SIGTERM came during set-up: the run ends before its first step,
  // with kExitInterrupted and nothing to save.
  bool interrupted_before_start() const;
  // Writes checkpoint `step` with every part (atomically, every file and folder fsynced).
  void save(int64_t step);
  const std::string& last_checkpoint() const { return last_checkpoint_; }

  // After step `step` (first_step: where this process started): on a signal or at
  // train.stop_after, saves and says so; a periodic checkpoint (checkpoint.every) is saved too.
  // The last step (max_steps) is left to finish().
  StepEnd end_step(int64_t step, int64_t first_step);
  // The final checkpoint at `step`, with a closing log line (`summary` adds what the stage did).
  void finish(int64_t step, const std::string& summary);

 private:
  Config cfg_;
  std::string stage_, unit_;
  Runtime rt_;
  std::optional<Tokenizer> tok_;
  std::string config_path_, resume_dir_, last_checkpoint_;
  std::vector<CheckpointPart> parts_;
  std::unique_ptr<MetricsLog> metrics_;
  std::unique_ptr<RunLock> lock_;
  std::shared_ptr<Comm> comm_;

  void log_config_changes() const;
  // A ConfigError on every rank when a rank's resolved config is not rank 0's (naming the key).
  void check_same_config() const;
};

}  // namespace infini
