// Fuzz target: trainer_state.json of a step folder (train/run/checkpoint.h, session.h) along the
// path a resume takes: verify_checkpoint (is the step folder complete?), load_trainer_state, the
// stage and step check (resume_step) and the JSON parts every stage registers: for pretrain, sft
// and reward tokens_seen, loader and rng_cpu; for ppo loader, kl_controller and rng_cpu. The loader is a real one, over a prepared shard folder of 301 tokens (20 samples of
// seq_len 16). Property: a state that resumes, in a folder named for its step, also verifies.
// Not the model and optimizer files of a checkpoint (targets_safetensors.cpp).
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>

#include "data/loader.h"
#include "data/token_shards.h"
#include "tests/fuzz/targets.h"
#include "train/rlhf/ppo_math.h"
#include "train/run/checkpoint.h"
#include "train/run/checkpoint_dir.h"
#include "train/run/session.h"

namespace fs = std::filesystem;

namespace infini::fuzz {

namespace trainer_state_target {

// A prepared corpus the loader part reads: one train shard, an index as `data prepare` writes it.
std::string make_shards() {
  const std::string dir = scratch_dir() + "/trainer_state/shards";
  fs::create_directories(dir);
  ShardWriter w(dir + "/train_000.bin", 320);
  std::vector<int> ids(301);
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int>(i * 11 % 320);
  w.append(ids.data(), ids.size());
  w.finish();
  const std::string index = R"({"format": "infini-token-shards", "version": 1, "vocab_size": 320, "bos_id": 1,
    "eos_id": 2, "train": [{"file": "train_000.bin", "tokens": 301}], "val": []})";
  write_scratch("trainer_state/shards/index.json", reinterpret_cast<const uint8_t*>(index.data()), index.size());
  return dir;
}

Loader& loader() {
  static std::unique_ptr<Loader> l = [] {
    DataConfig cfg;
    cfg.train = {make_shards()};
    cfg.seq_len = 16;
    cfg.prefetch = 0;
    return std::make_unique<Loader>(cfg, Split::train, nullptr, 2, 0);
  }();
  return *l;
}

}  // namespace trainer_state_target

Outcome fuzz_trainer_state(const uint8_t* data, size_t size) {
  Loader& loader = trainer_state_target::loader();
  const std::string dir = scratch_dir() + "/trainer_state/step_00000005";
  const std::string source = write_scratch("trainer_state/step_00000005/trainer_state.json", data, size);
  return guarded([&](Outcome& o) {
    const std::string verified = verify_checkpoint(dir);
    const nlohmann::json state = load_trainer_state(dir);
    const nlohmann::json& stage = state.contains("stage") ? state["stage"] : nlohmann::json();
    const std::string name = stage.is_string() ? stage.get<std::string>() : "pretrain";
    const int64_t step = resume_step(state, source, name);
    double tokens_seen = 0;
    KLController kl;
    std::vector<CheckpointPart> parts;
    if (name != "ppo")
      parts.push_back(json_part(
          "tokens_seen", [] { return nlohmann::json(); },
          [&](const nlohmann::json& j, const std::string&) { tokens_seen = j.get<double>(); }));
    parts.push_back(loader_part("loader", loader));
    if (name == "ppo")
      parts.push_back(json_part(
          "kl_controller", [] { return nlohmann::json(); },
          [&](const nlohmann::json& j, const std::string& src) { kl.load_state(j, src); }));
    parts.push_back(rng_part(torch::kCPU));
    for (const CheckpointPart& p : parts) p.load(dir, state, source);
    o.accepted = true;
    if (step == 5 && !verified.empty())
      o.finding = "a state that resumes at step 5 in step_00000005 does not verify: " + verified;
  });
}

}  // namespace infini::fuzz
