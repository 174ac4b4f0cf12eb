// RunSession (see session.h): set-up, resume, checkpoints and the end-of-step decision shared by
// every training stage.
#include "train/run/session.h"

#include <algorithm>
#include <filesystem>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <yaml-cpp/yaml.h>

#include "core/error.h"
#include "core/model_io.h"
#include "core/safetensors.h"
#include "train/dist/comm.h"
#include "train/run/checkpoint.h"
#include "train/run/checkpoint_dir.h"
#include "train/run/run_lock.h"
#include "train/run/signals.h"
#include "train/run/stopwatch.h"

namespace fs = std::filesystem;

namespace infini {

namespace {

// "key: old -> new" for every leaf that differs between two JSON objects (keys joined with '.').
void json_diff(const nlohmann::json& a, const nlohmann::json& b, const std::string& prefix,
               std::vector<std::string>* out) {
  for (auto it = b.begin(); it != b.end(); ++it) {
    const std::string key = prefix + it.key();
    const nlohmann::json old = a.contains(it.key()) ? a[it.key()] : nlohmann::json();
    if (it->is_object() && old.is_object()) json_diff(old, *it, key + ".", out);
    else if (old != *it) out->push_back(fmt::format("{}: {} -> {}", key, old.dump(), it->dump()));
  }
}

// The same for two YAML maps (scalars and lists compared as text).
void yaml_diff(const YAML::Node& a, const YAML::Node& b, const std::string& prefix, std::vector<std::string>* out) {
  for (auto it = b.begin(); it != b.end(); ++it) {
    const std::string k = it->first.as<std::string>();
    const YAML::Node old = a[k];
    if (it->second.IsMap() && old && old.IsMap()) {
      yaml_diff(old, it->second, prefix + k + ".", out);
      continue;
    }
    YAML::Emitter eo, en;
    eo << YAML::Flow << old;
    en << YAML::Flow << it->second;
    if (std::string(eo.c_str()) != en.c_str())
      out->push_back(fmt::format("{}{}: {} -> {}", prefix, k, eo.c_str(), en.c_str()));
  }
}

// A resumed run keeps its model and tokenizer: the checkpoint's must be the configured ones.
void check_resumed_model(const std::string& file, const Decoder& model,
                         const std::map<std::string, std::string>& meta) {
  std::vector<std::string> diffs;
  json_diff(model_config_to_json(read_model_config(file)), model_config_to_json(model->config()), "model.", &diffs);
  // How fresh weights are drawn does not change a model that has weights.
  diffs.erase(std::remove_if(diffs.begin(), diffs.end(), [](const std::string& d) {
                return d.rfind("model.init_std:", 0) == 0 || d.rfind("model.gate_init:", 0) == 0;
              }), diffs.end());
  if (!diffs.empty())
    throw ConfigError(fmt::format("{} (checkpoint -> config): the checkpoint {} was trained with another model; a "
                                  "resumed run keeps its model (to change it, start a new run.dir with init_from)",
                                  diffs.front(), file));
  const auto saved = read_safetensors_metadata(file);
  const auto a = saved.find("tokenizer_hash"), b = meta.find("tokenizer_hash");
  if (a != saved.end() && b != meta.end() && a->second != b->second)
    throw ConfigError(fmt::format("tokenizer.model: its content (hash {}) is not the tokenizer the checkpoint {} was "
                                  "trained with (hash {}); a resumed run keeps its tokenizer",
                                  b->second, file, a->second));
}

}  // namespace

CheckpointPart model_part(const std::string& subdir, Decoder model, AdamW* opt,
                          std::map<std::string, std::string> metadata) {
  auto where = [subdir](const std::string& dir) { return subdir.empty() ? dir : (fs::path(dir) / subdir).string(); };
  return {subdir.empty() ? "model" : subdir,
          [=](const std::string& dir, nlohmann::json&) mutable {
            fs::create_directories(where(dir));
            save_model_and_optimizer(where(dir), model, opt, metadata);
          },
          [=](const std::string& dir, const nlohmann::json&, const std::string&) mutable {
            check_resumed_model((fs::path(where(dir)) / kModelFileName).string(), model, metadata);
            load_model_and_optimizer(where(dir), model, opt);
          }};
}

CheckpointPart loader_part(const std::string& key, Loader& loader) {
  return json_part(
      key, [&loader] { return loader.state(); },
      [&loader](const nlohmann::json& j, const std::string&) { loader.load_state(j); });
}

CheckpointPart rng_part(const torch::Device& device) {
  return {"rng",
          [device](const std::string&, nlohmann::json& state) { state.update(rng_states(device)); },
          [device](const std::string&, const nlohmann::json& state, const std::string& source) {
            if (!state.contains("rng_cpu")) throw Error(fmt::format("{}: rng_cpu is missing", source));
            restore_rng_states(state, source, device);
          }};
}

int64_t resume_step(const nlohmann::json& state, const std::string& source, const std::string& stage) {
  if (state.contains("stage") && !state["stage"].is_string())
    throw Error(fmt::format("{}: stage: expected a string (the stage that wrote it), found {}", source,
                            state["stage"].dump()));
  const std::string saved_stage = state.value("stage", "");
  if (saved_stage != stage)
    throw Error(fmt::format("{}: stage is '{}', expected {} (a run directory belongs to one stage)", source,
                            saved_stage, stage));
  if (!state.contains("step") || !state["step"].is_number_integer() || state["step"].get<int64_t>() < 0)
    throw Error(fmt::format("{}: step: expected an integer >= 0, found {}", source,
                            state.contains("step") ? state["step"].dump() : "nothing"));
  return state.at("step").get<int64_t>();
}

CheckpointPart json_part(const std::string& key, std::function<nlohmann::json()> get,
                         std::function<void(const nlohmann::json&, const std::string& source)> set) {
  return {key,
          [key, get](const std::string&, nlohmann::json& state) { state[key] = get(); },
          [key, set](const std::string&, const nlohmann::json& state, const std::string& source) {
            if (!state.contains(key)) throw Error(fmt::format("{}: {} is missing", source, key));
            try {
              set(state.at(key), source);
            } catch (const nlohmann::json::exception& e) {
              throw Error(fmt::format("{}: {}: {} (found {})", source, key, e.what(), state.at(key).dump()));
            }
          }};
}

RunSession::RunSession(const Config& cfg, std::string stage, bool needs_tokenizer, std::string unit)
    : cfg_(cfg), stage_(std::move(stage)), unit_(std::move(unit)), comm_(process_comm(cfg.run.dist_timeout_s)) {
  const std::string& dir = cfg_.run.dir;
  check_same_config();
  // Rank 0 owns the run directory: it locks it, logs to train.log and the console, writes every
  // file; the other ranks read the checkpoint rank 0 chose and log to train.rank<R>.log only.
  if (comm_->is_main()) {
    fs::create_directories(dir);
    lock_ = std::make_unique<RunLock>(dir);  // before anything in the directory is touched
    setup_logging(choice_name(cfg_.run.log_level), (fs::path(dir) / "train.log").string());
    clean_checkpoint_temporaries(dir);
  }
  resume_dir_ = comm_->broadcast_string("resume_dir", comm_->is_main() && cfg_.resume == Resume::auto_
                                                          ? latest_checkpoint(dir) : "");
  if (!comm_->is_main())
    setup_logging(choice_name(cfg_.run.log_level),
                  (fs::path(dir) / fmt::format("train.rank{}.log", comm_->rank())).string(), /*console=*/false);
  rt_ = setup_runtime(cfg_.run, comm_->env().local_world_size);
  install_stop_handlers();
  last_checkpoint_ = resume_dir_;
  config_path_ = (fs::path(dir) / "config.yaml").string();  // written once the run is accepted (resume)
  if (comm_->distributed())
    spdlog::info("data parallel: rank {} of {} ({} on this node, launched by {})", comm_->rank(), comm_->world_size(),
                 comm_->env().local_world_size, comm_->env().launcher);
  spdlog::info("stage {} -> {} ({} threads, {}, {})", stage_, dir, rt_.threads, rt_.device.is_cpu() ? "cpu" : "cuda",
               rt_.bf16 ? "bf16 autocast" : "fp32");
  spdlog::debug("resolved config:\n{}", config_to_yaml(cfg_));
  if (cfg_.model.memory.enabled && cfg_.data.seq_len <= cfg_.model.segment_len)
    spdlog::warn("model.segment_len ({}) is not shorter than data.seq_len ({}): every sequence fits in one segment, "
                 "so the memory is never read in training", cfg_.model.segment_len, cfg_.data.seq_len);

  if (!cfg_.tokenizer.model.empty()) {
    tok_ = Tokenizer::load(cfg_.tokenizer.model);
    if (tok_->vocab_size() > cfg_.model.vocab_size)
      throw ConfigError(fmt::format("model.vocab_size ({}) is smaller than the tokenizer's vocabulary ({} in {})",
                                    cfg_.model.vocab_size, tok_->vocab_size(), cfg_.tokenizer.model));
  } else if (needs_tokenizer) {
    throw ConfigError(fmt::format("tokenizer.model: stage {} needs a tokenizer, found none", stage_));
  }
}

void RunSession::check_same_config() const {
  if (!comm_->distributed()) return;
  const std::vector<std::string> all = comm_->all_gather("config", config_to_yaml(cfg_));
  for (size_t r = 1; r < all.size(); ++r) {
    if (all[r] == all[0]) continue;
    std::vector<std::string> diffs;
    yaml_diff(YAML::Load(all[0]), YAML::Load(all[r]), "", &diffs);
    throw ConfigError(fmt::format("rank {}'s config differs from rank 0's ({}, rank 0 -> rank {}): every rank must "
                                  "run the same config", r, diffs.empty() ? "key order" : diffs.front(), r));
  }
}

std::map<std::string, std::string> RunSession::model_metadata() const {
  std::map<std::string, std::string> meta{{"stage", stage_}};
  if (tok_) {
    meta["tokenizer_path"] = fs::absolute(tok_->path()).string();
    meta["tokenizer_hash"] = tok_->content_hash();
  }
  return meta;
}

void RunSession::add(CheckpointPart part) { parts_.push_back(std::move(part)); }

int64_t RunSession::resume() {
  int64_t step = 0;
  if (resuming()) {
    const std::string source = (fs::path(resume_dir_) / "trainer_state.json").string();
    const nlohmann::json state = load_trainer_state(resume_dir_);
    step = resume_step(state, source, stage_);
    for (const CheckpointPart& p : parts_)
      if (p.load) p.load(resume_dir_, state, source);
    spdlog::info("resumed from {} ({} {})", resume_dir_, unit_, step);
    if (state.contains("world_size") && state["world_size"].is_number_integer() &&
        state["world_size"].get<int64_t>() != comm_->world_size())
      spdlog::info("the checkpoint was written by {} rank(s); this run has {} (the global batch and sample order "
                   "are unchanged)", state["world_size"].get<int64_t>(), comm_->world_size());
    if (comm_->is_main()) log_config_changes();
  }
  if (!comm_->is_main()) {  // nothing is written by the other ranks
    metrics_ = std::make_unique<MetricsLog>("", -1);
    return step;
  }
  // The run is accepted: only now is its config.yaml (re)written.
  write_file_atomic(config_path_, config_to_yaml(cfg_));
  // Records of steps after the checkpoint (of every step, on a fresh start) were an interrupted
  // session's: this one writes them again.
  const int64_t first_new_step = resuming() ? step + 1 : 0;
  std::unique_ptr<TensorBoardLog> tb;
  if (cfg_.run.tensorboard) tb = std::make_unique<TensorBoardLog>(run_dir(), first_new_step, config_to_yaml(cfg_));
  metrics_ = std::make_unique<MetricsLog>((fs::path(run_dir()) / "metrics.jsonl").string(), first_new_step,
                                          std::move(tb));
  return step;
}

void RunSession::log_config_changes() const {
  // What the model and stage allow to change was checked against the checkpoint; the rest (steps,
  // logging, schedule, data) may change between invocations and is said once.
  if (!fs::exists(config_path_)) return;
  std::vector<std::string> diffs;
  try {
    yaml_diff(YAML::Load(config_to_yaml(load_config(config_path_))), YAML::Load(config_to_yaml(cfg_)), "", &diffs);
  } catch (const std::exception& e) {
    spdlog::warn("{}: not compared with this run's config ({})", config_path_, e.what());
    return;
  }
  for (const std::string& d : diffs) spdlog::info("config changed since the last run: {}", d);
}

bool RunSession::already_finished(int64_t step) const {
  if (step < cfg_.train.max_steps) return false;
  spdlog::info("already finished: {} is at {} {} of {}", run_dir(), unit_, step, cfg_.train.max_steps);
  return true;
}

bool RunSession::interrupted_before_start() const {
  if (!comm_->any(stop_requested(), "the stop check")) return false;
  spdlog::warn("interrupted by signal {} during set-up; nothing trained, nothing to save", stop_signal());
  return true;
}

void RunSession::save(int64_t step) {
  if (!comm_->is_main()) return;  // the replicas are equal: rank 0's copy is the checkpoint
  const auto t0 = std::chrono::steady_clock::now();
  last_checkpoint_ = commit_checkpoint(
      run_dir(), step,
      [&](const std::string& dir) {
        nlohmann::json state{{"step", step}, {"stage", stage_}, {"world_size", comm_->world_size()}};
        for (const CheckpointPart& p : parts_)
          if (p.save) p.save(dir, state);
        save_trainer_state(dir, state);
      },
      static_cast<int>(cfg_.checkpoint.keep_last));
  spdlog::info("checkpoint {} ({:.2f} s)", last_checkpoint_, seconds_since(t0));
}

StepEnd RunSession::end_step(int64_t step, int64_t first_step) {
  const int64_t max_steps = cfg_.train.max_steps;
  // A signal to any rank stops all of them at the same step.
  if (comm_->any(stop_requested(), "the stop check")) {
    save(step);
    spdlog::warn("interrupted by signal {} at {} {}; checkpoint {} written. Resume with: infini train {} "
                 "(resume: auto continues from {}/checkpoints/latest)",
                 stop_signal(), unit_, step, last_checkpoint_, config_path_, run_dir());
    return StepEnd::interrupted;
  }
  if (cfg_.train.stop_after > 0 && step - first_step >= cfg_.train.stop_after && step != max_steps) {
    save(step);
    spdlog::info("stopping after {} {}s as train.stop_after asks; resume continues at {} {}", cfg_.train.stop_after,
                 unit_, unit_, step + 1);
    return StepEnd::stopped;
  }
  if (cfg_.checkpoint.every > 0 && step % cfg_.checkpoint.every == 0 && step != max_steps) save(step);
  return StepEnd::next;
}

void RunSession::finish(int64_t step, const std::string& summary) {
  save(step);
  spdlog::info("done: {}; final checkpoint {}", summary, last_checkpoint_);
}

}  // namespace infini
