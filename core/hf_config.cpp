// config.json of Hugging Face LLaMA / Mistral models: strict reading into ModelConfig and writing
// back for LlamaForCausalLM. Defaults for absent keys are those of transformers' LlamaConfig /
// MistralConfig. Not the tensor layout (core/hf_checkpoint.cpp).
#include "core/hf_config.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <optional>

#include <fmt/format.h>

#include "core/error.h"

namespace infini {
namespace {

using json = nlohmann::json;

// Reads keys of one config.json; every refusal is one line: FILE: key K: expected E, found F.
struct Keys {
  const json& j;
  const std::string& where;

  [[noreturn]] void fail(const std::string& key, const std::string& expected, const std::string& found) const {
    throw ConfigError(fmt::format("{}: key {}: expected {}, found {}", where, key, expected, found));
  }
  bool has(const char* key) const { return j.contains(key) && !j.at(key).is_null(); }
  int64_t integer(const char* key, int64_t min, std::optional<int64_t> def = std::nullopt) const {
    if (!has(key)) {
      if (def) return *def;
      fail(key, fmt::format("an integer >= {}", min), "no such key");
    }
    const json& v = j.at(key);
    if (!v.is_number_integer() || v.get<int64_t>() < min) fail(key, fmt::format("an integer >= {}", min), v.dump());
    return v.get<int64_t>();
  }
  double number(const json& obj, const std::string& key, double def) const {
    if (!obj.contains(key) || obj.at(key).is_null()) return def;
    const json& v = obj.at(key);
    if (!v.is_number() || !(v.get<double>() > 0)) fail(key, "a number > 0", v.dump());
    return v.get<double>();
  }
  bool boolean(const char* key, bool def) const {
    if (!has(key)) return def;
    const json& v = j.at(key);
    if (!v.is_boolean()) fail(key, "true or false", v.dump());
    return v.get<bool>();
  }
  void must_be_false(const char* key, const std::string& why) const {
    if (boolean(key, false)) fail(key, fmt::format("false ({})", why), "true");
  }
};

// The rope type of a rope_scaling / rope_parameters object ("default" when it names none).
std::string rope_type(const Keys& k, const char* key) {
  const json& r = k.j.at(key);
  if (!r.is_object()) k.fail(key, "null or an object", r.dump());
  for (const char* t : {"rope_type", "type"})
    if (r.contains(t)) {
      if (!r.at(t).is_string()) k.fail(fmt::format("{}.{}", key, t), "a string", r.at(t).dump());
      return r.at(t).get<std::string>();
    }
  return "default";
}

}  // namespace

HfConfig parse_hf_config(const json& j, const std::string& where) {
  if (!j.is_object()) throw ConfigError(fmt::format("{}: expected a JSON object, found {}", where, j.type_name()));
  Keys k{j, where};
  HfConfig out;
  out.raw = j;

  const std::string supported = "[\"LlamaForCausalLM\"] or [\"MistralForCausalLM\"]";
  if (!k.has("architectures")) k.fail("architectures", supported, "no such key");
  const json& arch = j.at("architectures");
  if (!arch.is_array() || arch.size() != 1 || !arch[0].is_string()) k.fail("architectures", supported, arch.dump());
  out.architecture = arch[0].get<std::string>();
  if (out.architecture != "LlamaForCausalLM" && out.architecture != "MistralForCausalLM") {
    std::string found = arch.dump();
    if (out.architecture.rfind("Qwen2", 0) == 0) found += " (its q/k/v biases are not supported)";
    k.fail("architectures", supported, found);
  }
  const bool mistral = out.architecture == "MistralForCausalLM";
  if (k.has("model_type")) {
    const std::string want = mistral ? "mistral" : "llama";
    if (j.at("model_type") != want) k.fail("model_type", fmt::format("\"{}\" (architectures {})", want, arch.dump()),
                                           j.at("model_type").dump());
  }
  if (mistral && k.has("sliding_window"))
    k.fail("sliding_window", "null (sliding-window attention is not supported)", j.at("sliding_window").dump());
  if (k.has("hidden_act") && j.at("hidden_act") != "silu")
    k.fail("hidden_act", "\"silu\" (SwiGLU)", j.at("hidden_act").dump());
  k.must_be_false("attention_bias", "projections without bias");
  k.must_be_false("mlp_bias", "projections without bias");

  ModelConfig& c = out.model;
  c.d_model = k.integer("hidden_size", 2);
  c.n_layers = k.integer("num_hidden_layers", 1);
  c.n_heads = k.integer("num_attention_heads", 1);
  c.vocab_size = k.integer("vocab_size", 2);
  c.ffn_hidden = k.integer("intermediate_size", 1);
  // MistralConfig's default is 8 key/value heads, LlamaConfig's one per query head.
  c.n_kv_heads = k.integer("num_key_value_heads", 1, mistral ? 8 : c.n_heads);
  if (c.d_model % c.n_heads != 0)
    k.fail("num_attention_heads", fmt::format("a divisor of hidden_size ({})", c.d_model), std::to_string(c.n_heads));
  if (c.n_heads % c.n_kv_heads != 0)
    k.fail("num_key_value_heads", fmt::format("a divisor of num_attention_heads ({})", c.n_heads),
           std::to_string(c.n_kv_heads));
  if (k.has("head_dim") && k.integer("head_dim", 1) != c.d_model / c.n_heads)
    k.fail("head_dim", fmt::format("hidden_size / num_attention_heads = {}", c.d_model / c.n_heads),
           j.at("head_dim").dump());
  if ((c.d_model / c.n_heads) % 2 != 0)
    k.fail("hidden_size", fmt::format("an even head size hidden_size / num_attention_heads (RoPE); {} / {}", c.d_model,
                                      c.n_heads),
           std::to_string(c.d_model / c.n_heads));
  c.norm_eps = k.number(j, "rms_norm_eps", 1e-6);
  c.tie_embeddings = k.boolean("tie_word_embeddings", false);
  c.init_std = k.has("initializer_range") ? k.number(j, "initializer_range", 0.02) : 0.02;

  // RoPE: transformers 5 writes rope_parameters {rope_type, rope_theta}; 4.x rope_theta and rope_scaling.
  c.rope_theta = k.number(j, "rope_theta", 10000.0);
  for (const char* key : {"rope_scaling", "rope_parameters"}) {
    if (!k.has(key)) continue;
    const std::string t = rope_type(k, key);
    if (t != "default")
      k.fail(fmt::format("{}.rope_type", key), "\"default\" (plain RoPE; scaled variants are not implemented)",
             fmt::format("\"{}\"", t));
    if (std::string(key) == "rope_parameters") c.rope_theta = k.number(j.at(key), "rope_theta", c.rope_theta);
  }

  out.max_position_embeddings = k.integer("max_position_embeddings", 1, mistral ? 4096 * 32 : 2048);
  c.segment_len = std::min(out.max_position_embeddings, kHfDefaultSegmentLen);
  c.memory.enabled = false;
  if (std::string err = c.validate(); !err.empty()) throw ConfigError(fmt::format("{}: {}", where, err));
  return out;
}

HfConfig read_hf_config(const std::string& dir) {
  const std::string path = (std::filesystem::path(dir) / "config.json").string();
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec))
    throw ConfigError(fmt::format("{}: no such folder (expected a Hugging Face model folder)", dir));
  if (!std::filesystem::is_regular_file(path, ec))
    throw ConfigError(fmt::format("{}: no such file (a Hugging Face model folder holds config.json)", path));
  std::ifstream in(path);
  json j = json::parse(in, nullptr, false);
  if (j.is_discarded()) throw ConfigError(fmt::format("{}: not valid JSON", path));
  return parse_hf_config(j, path);
}

json hf_config_json(const ModelConfig& cfg, const json& base, const std::string& dtype) {
  json j = base.is_object() ? base : json::object();
  for (const char* key : {"sliding_window", "rope_scaling", "torch_dtype", "infini"}) j.erase(key);
  j["architectures"] = json::array({"LlamaForCausalLM"});
  j["model_type"] = "llama";
  j["hidden_size"] = cfg.d_model;
  j["intermediate_size"] = cfg.ffn_dim();
  j["num_hidden_layers"] = cfg.n_layers;
  j["num_attention_heads"] = cfg.n_heads;
  j["num_key_value_heads"] = cfg.kv_heads();
  j["head_dim"] = cfg.head_dim();
  j["hidden_act"] = "silu";
  j["attention_bias"] = false;
  j["mlp_bias"] = false;
  j["rms_norm_eps"] = cfg.norm_eps;
  j["rope_theta"] = cfg.rope_theta;
  j["rope_parameters"] = {{"rope_type", "default"}, {"rope_theta", cfg.rope_theta}};
  j["tie_word_embeddings"] = cfg.tie_embeddings;
  j["vocab_size"] = cfg.vocab_size;
  j["dtype"] = dtype;
  if (!j.contains("max_position_embeddings")) j["max_position_embeddings"] = cfg.segment_len;
  if (!j.contains("initializer_range")) j["initializer_range"] = cfg.init_std;
  return j;
}

}  // namespace infini
