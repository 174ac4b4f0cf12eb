// Model files: a Decoder's weights in model.safetensors with its ModelConfig and head in the metadata,
// so a file alone rebuilds the model. Not checkpoints (optimizer, trainer state: train/) nor llama2.c.
#pragma once
#include <map>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "core/decoder.h"
#include "core/lora_config.h"
#include "core/model_config.h"
#include "core/safetensors.h"

namespace infini {

// Every field of ModelConfig (memory.* nested) as a JSON object, and back. Reading is strict:
// unknown keys, missing keys and wrong types throw infini::Error naming `where` and the key;
// the result is validated (ModelConfig::validate).
nlohmann::json model_config_to_json(const ModelConfig& cfg);
ModelConfig model_config_from_json(const nlohmann::json& j, const std::string& where);

const char* to_string(Head h);  // "lm" | "scalar"

// Writes the model's parameters (as F32, by registered name) to `path` with metadata
// "format": "infini", "model_config": JSON text, "head": "lm"|"scalar", plus `extra_metadata`
// (e.g. "tokenizer_path", "tokenizer_hash"). `progress` hears of every tensor written.
void save_model(const std::string& path, Decoder& model, std::map<std::string, std::string> extra_metadata = {},
                const ByteProgress& progress = {});

// Config and head recorded in a model file (header only; the whole header is validated).
ModelConfig read_model_config(const std::string& path);
Head read_model_head(const std::string& path);

// LoRA model files (core/lora.h) hold only the adapters, gates and a scalar head, with metadata
// "lora" (the LoraConfig as JSON), "lora_base" (the base model file or Hugging Face folder) and
// "lora_base_fingerprint"; save_model writes one for a model with adapters (only then). Read back:
nlohmann::json lora_config_to_json(const LoraConfig& cfg);
std::optional<LoraConfig> lora_of(const std::map<std::string, std::string>& metadata, const std::string& path);

// A model file's tensors with its metadata. For a LoRA file: the base's weights (itself read this
// way, after its fingerprint is checked) with the file's tensors over them, adapters merged into
// the weights (a plain model) unless keep_adapters.
SafeTensors read_model_weights(const std::string& path, bool keep_adapters = false);

// Rebuilds the model from the file alone (config + head from the metadata, then load_weights);
// a LoRA file gives the plain model with its adapters merged.
Decoder load_model(const std::string& path);

// Copies st's tensors into the model's parameters. Every parameter must be present with its exact
// shape and a floating dtype, and no other tensor may be present; otherwise infini::Error naming
// `path` and the tensor(s), e.g. "m.safetensors: tensor layers.0.attention.wq.weight has shape
// [64, 32], expected [32, 32]".
void load_weights(Decoder& model, const SafeTensors& st, const std::string& path);

// Parameter count of a model (all registered parameters).
int64_t parameter_count(Decoder& model);

}  // namespace infini
