// What goes inside a training checkpoint: weights, optimizer moments by name, trainer_state.json
// (step, tokens, loader position, RNG, stage extras). Directory handling is checkpoint_dir.h.
#pragma once
#include <map>
#include <string>

#include <ATen/core/Generator.h>
#include <nlohmann/json.hpp>
#include <torch/types.h>

#include "core/decoder.h"
#include "train/run/adamw.h"

namespace infini {

constexpr int kCheckpointFormatVersion = 1;

// A generator's state as hex text, and back (for trainer_state.json); `what` names the field in
// error messages (e.g. rng_cpu).
std::string generator_state_hex(const at::Generator& gen);
void set_generator_state_hex(at::Generator& gen, const std::string& hex, const std::string& source,
                             const std::string& what);
// The same for a device's default generator.
std::string rng_state_hex(const torch::Device& device = torch::kCPU);
void set_rng_state_hex(const std::string& hex, const std::string& source, const torch::Device& device = torch::kCPU);
// {"rng_cpu": ..., and on CUDA "rng_cuda": ...} for trainer_state.json, and back: a state saved
// on CUDA resumes exactly on the same GPU; on CPU its CUDA part is not needed and not read.
nlohmann::json rng_states(const torch::Device& device);
void restore_rng_states(const nlohmann::json& state, const std::string& source, const torch::Device& device);

// DIR/model.safetensors (metadata: model config, head, extras such as tokenizer path/hash)
// and, when opt is given, DIR/optimizer.safetensors.
void save_model_and_optimizer(const std::string& dir, Decoder& model, const AdamW* opt,
                              const std::map<std::string, std::string>& metadata);
// Loads both back into existing objects; errors name the file and the tensor.
void load_model_and_optimizer(const std::string& dir, Decoder& model, AdamW* opt);

// trainer_state.json: writes `state` plus format_version; reads and checks the version.
void save_trainer_state(const std::string& dir, nlohmann::json state);
nlohmann::json load_trainer_state(const std::string& dir);

// The block a parameter belongs to: i for "layers.<i>....", -1 for the others (embedding, final
// norm, heads).
int64_t block_index(const std::string& param_name);

// Loads only weights from CK (a run or step directory, or a Hugging Face folder converted to the
// model's config as `convert hf` does: core/hf_checkpoint.h) into `model`, for init_from: tensors in
// `ignore` are skipped in the source, those in `fresh` keep their initial values when the source
// lacks them (a reward model from an SFT model gets a new score head; from a reward model it keeps
// the trained one). With extra_layers, the blocks of `model` deeper than the source's keep their
// initial values too (a deeper model grown from a shallower one; returns how many). Every other
// mismatch (missing, unexpected, mis-shaped tensor) is an error naming the tensor and shapes.
int64_t init_weights_from(const std::string& ck, Decoder& model, const std::set<std::string>& ignore = {},
                          const std::set<std::string>& fresh = {}, bool extra_layers = false);

}  // namespace infini
