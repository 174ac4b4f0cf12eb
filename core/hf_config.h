// Hugging Face config.json of the LLaMA family <-> ModelConfig: which keys are read, which values
// are refused (one ConfigError line naming the file, the key, what was expected and what was found).
// Not the tensors (core/hf_checkpoint.h) nor the tokenizer.
#pragma once
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "core/model_config.h"

namespace infini {

// Segment length a converted model gets when nothing else says: min(max_position_embeddings, this).
constexpr int64_t kHfDefaultSegmentLen = 2048;

struct HfConfig {
  std::string architecture;              // "LlamaForCausalLM" | "MistralForCausalLM"
  ModelConfig model;                     // memory off; segment_len = min(max_position_embeddings, 2048)
  int64_t max_position_embeddings = 0;
  nlohmann::json raw;                    // the whole file as read ("infini" section included)
};

// Reads `j` (the content of config.json; `where` names the file in errors). Accepted:
// architectures [LlamaForCausalLM] or [MistralForCausalLM] (sliding_window null or absent),
// hidden_act silu, attention_bias / mlp_bias false, head_dim absent or hidden_size /
// num_attention_heads, rope scaling absent or "default" (rope_scaling or rope_parameters).
// Anything else throws ConfigError.
HfConfig parse_hf_config(const nlohmann::json& j, const std::string& where);

// Reads and parses DIR/config.json; a missing or non-JSON file is a ConfigError naming it.
HfConfig read_hf_config(const std::string& dir);

// config.json for `cfg` as a LlamaForCausalLM: `base` (a converted model's original config.json,
// or an empty object) with every key infini defines set from `cfg`; `dtype` is "float32",
// "bfloat16" or "float16". Keys a LlamaForCausalLM cannot express (sliding_window, rope scaling)
// are removed from the base.
nlohmann::json hf_config_json(const ModelConfig& cfg, const nlohmann::json& base, const std::string& dtype);

}  // namespace infini
