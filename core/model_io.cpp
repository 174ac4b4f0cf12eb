// Model files: ModelConfig <-> JSON, save/load of a Decoder's weights with strict name/shape checks.
// Not the safetensors byte format (core/safetensors.cpp) nor checkpoint directories (train/).
#include "core/model_io.h"

#include <algorithm>
#include <filesystem>
#include <optional>
#include <type_traits>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/error.h"
#include "core/hf_checkpoint.h"
#include "core/lora.h"

namespace infini {
namespace {

using json = nlohmann::json;

template <class T> struct always_false : std::false_type {};

// visit_fields visitor: ModelConfig -> JSON.
struct ToJson {
  json& out;
  template <class T> void operator()(const char* name, T& field, const char*) {
    if constexpr (std::is_same_v<T, MemoryUpdate> || std::is_same_v<T, MemoryGradient>) out[name] = to_string(field);
    else out[name] = field;
  }
  template <class S> void section(const char* name, S& sub) {
    json j = json::object();
    ToJson v{j};
    visit_fields(sub, v);
    out[name] = j;
  }
};

// visit_fields visitor: JSON -> ModelConfig, every key required, with the type each field has.
struct FromJson {
  const json& in;
  std::string where;   // "FILE: model_config"
  std::string prefix;  // "" or "memory."
  std::vector<std::string> seen;

  [[noreturn]] void fail(const std::string& key, const std::string& expected, const json& found) {
    throw Error(fmt::format("{} key {}{}: expected {}, found {}", where, prefix, key, expected, found.dump()));
  }
  const json& get(const char* name) {
    seen.push_back(name);
    auto it = in.find(name);
    if (it == in.end()) throw Error(fmt::format("{} is missing key {}{}", where, prefix, name));
    return *it;
  }
  // Keys added after files were first written: a file from before them has none and means the
  // default (the model those files describe, which the defaults reproduce).
  bool added_later(const char* name) const {
    const std::string key = prefix + name;
    return key == "memory.write_gate" || key == "memory.write_gate_bias";
  }
  template <class T> void operator()(const char* name, T& field, const char*) {
    if (in.find(name) == in.end() && added_later(name)) {
      seen.push_back(name);
      return;
    }
    const json& v = get(name);
    if constexpr (std::is_same_v<T, bool>) {
      if (!v.is_boolean()) fail(name, "true or false", v);
      field = v.get<bool>();
    } else if constexpr (std::is_integral_v<T>) {
      if (!v.is_number_integer()) fail(name, "an integer", v);
      field = v.get<T>();
    } else if constexpr (std::is_floating_point_v<T>) {
      if (!v.is_number()) fail(name, "a number", v);
      field = v.get<T>();
    } else if constexpr (std::is_same_v<T, std::string>) {
      if (!v.is_string()) fail(name, "a string", v);
      field = v.get<std::string>();
    } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
      if (!v.is_array() || !std::all_of(v.begin(), v.end(), [](const json& e) { return e.is_string(); }))
        fail(name, "a list of strings", v);
      field = v.get<std::vector<std::string>>();
    } else if constexpr (std::is_same_v<T, MemoryUpdate>) {
      if (!v.is_string() || !parse_memory_update(v.get<std::string>(), &field))
        fail(name, "\"linear\", \"delta\" or \"unit_delta\"", v);
    } else if constexpr (std::is_same_v<T, MemoryGradient>) {
      if (!v.is_string() || !parse_memory_gradient(v.get<std::string>(), &field))
        fail(name, "\"bptt\" or \"detach\"", v);
    } else {
      static_assert(always_false<T>::value, "model_io: add this field type to FromJson");
    }
  }
  template <class S> void section(const char* name, S& sub) {
    const json& v = get(name);
    if (!v.is_object()) fail(name, "an object", v);
    FromJson inner{v, where, prefix + name + ".", {}};
    visit_fields(sub, inner);
    inner.check_unknown();
  }
  void check_unknown() {
    for (auto it = in.begin(); it != in.end(); ++it)
      if (std::find(seen.begin(), seen.end(), it.key()) == seen.end())
        throw Error(fmt::format("{} has unknown key {}{}", where, prefix, it.key()));
  }
};

std::string shape_str(c10::IntArrayRef s) { return fmt::format("[{}]", fmt::join(s, ", ")); }

const std::string& metadata_value(const std::map<std::string, std::string>& meta, const std::string& key,
                                  const std::string& path) {
  auto it = meta.find(key);
  if (it == meta.end())
    throw Error(fmt::format("{}: metadata has no '{}' (not a model file written by infini?)", path, key));
  return it->second;
}

void check_format(const std::map<std::string, std::string>& meta, const std::string& path) {
  const std::string& f = metadata_value(meta, "format", path);
  if (f != "infini")
    throw Error(fmt::format("{}: metadata format is '{}', expected 'infini'", path, f));
}

ModelConfig config_from_metadata(const std::map<std::string, std::string>& meta, const std::string& path) {
  check_format(meta, path);
  json j = json::parse(metadata_value(meta, "model_config", path), nullptr, false);
  if (j.is_discarded() || !j.is_object())
    throw Error(fmt::format("{}: metadata model_config is not a JSON object", path));
  return model_config_from_json(j, path + ": model_config");
}

Head head_from_metadata(const std::map<std::string, std::string>& meta, const std::string& path) {
  const std::string& h = metadata_value(meta, "head", path);
  if (h == "lm") return Head::lm;
  if (h == "scalar") return Head::scalar;
  throw Error(fmt::format("{}: metadata head is '{}', expected 'lm' or 'scalar'", path, h));
}

// A config struct with visit_fields to JSON, and back strictly (every key, no other, validated).
template <class C> json fields_to_json(const C& cfg) {
  C c = cfg;
  json j = json::object();
  ToJson v{j};
  visit_fields(c, v);
  return j;
}

template <class C> C fields_from_json(const json& j, const std::string& where) {
  if (!j.is_object()) throw Error(fmt::format("{}: expected a JSON object, found {}", where, j.type_name()));
  C cfg;
  FromJson v{j, where, "", {}};
  visit_fields(cfg, v);
  v.check_unknown();
  if (std::string err = cfg.validate(); !err.empty()) throw Error(fmt::format("{}: {}", where, err));
  return cfg;
}

}  // namespace

json model_config_to_json(const ModelConfig& cfg) { return fields_to_json(cfg); }

ModelConfig model_config_from_json(const json& j, const std::string& where) {
  return fields_from_json<ModelConfig>(j, where);
}

json lora_config_to_json(const LoraConfig& cfg) { return fields_to_json(cfg); }

const char* to_string(Head h) { return h == Head::lm ? "lm" : "scalar"; }

void save_model(const std::string& path, Decoder& model, std::map<std::string, std::string> extra_metadata,
                const ByteProgress& progress) {
  const bool lora = model->lora.enabled();
  if (lora && model->lora_base.empty())
    throw Error(fmt::format("{}: cannot write LoRA adapters without their base model (set by init_from)", path));
  std::map<std::string, torch::Tensor> tensors;
  for (const auto& item : model->named_parameters(/*recurse=*/true))
    if (!lora || is_lora_tensor(item.key()))
      tensors[item.key()] = item.value().detach().to(torch::kCPU, torch::kFloat);
  if (lora) {
    extra_metadata["lora"] = lora_config_to_json(model->lora).dump();
    extra_metadata["lora_base"] = model->lora_base;
    extra_metadata["lora_base_fingerprint"] = model->lora_base_fingerprint;
  }
  extra_metadata["format"] = "infini";
  extra_metadata["model_config"] = model_config_to_json(model->config()).dump();
  extra_metadata["head"] = to_string(model->head_kind());
  save_safetensors(path, tensors, extra_metadata, progress);
}

ModelConfig read_model_config(const std::string& path) {
  return config_from_metadata(read_safetensors_metadata(path), path);
}

Head read_model_head(const std::string& path) {
  auto meta = read_safetensors_metadata(path);
  check_format(meta, path);
  return head_from_metadata(meta, path);
}

std::optional<LoraConfig> lora_of(const std::map<std::string, std::string>& meta, const std::string& path) {
  auto it = meta.find("lora");
  if (it == meta.end()) return std::nullopt;
  json j = json::parse(it->second, nullptr, false);
  if (j.is_discarded()) throw Error(fmt::format("{}: metadata lora is not JSON", path));
  LoraConfig cfg = fields_from_json<LoraConfig>(j, path + ": lora");
  if (!cfg.enabled()) throw Error(fmt::format("{}: metadata lora has rank 0 (no adapters)", path));
  return cfg;
}

SafeTensors read_model_weights(const std::string& path, bool keep_adapters) {
  SafeTensors st = load_safetensors(path);
  const std::optional<LoraConfig> lora = lora_of(st.metadata, path);
  if (!lora) return st;
  const ModelConfig cfg = config_from_metadata(st.metadata, path);
  const Head head = head_from_metadata(st.metadata, path);
  const std::string& base = metadata_value(st.metadata, "lora_base", path);
  const std::string& recorded = metadata_value(st.metadata, "lora_base_fingerprint", path);
  std::error_code ec;
  if (!std::filesystem::exists(base, ec))
    throw Error(fmt::format("{}: its base model {} is missing (LoRA adapters need the model they were trained on)",
                            path, base));
  if (const std::string now = model_fingerprint(base); now != recorded)
    throw Error(fmt::format("{}: its base model {} has changed since the adapters were trained (fingerprint {}, "
                            "recorded {})", path, base, now, recorded));
  std::map<std::string, torch::Tensor> tensors =
      is_hf_folder(base) ? hf_to_infini_weights(read_hf_folder(base), cfg) : read_model_weights(base).tensors;
  // The base may carry the other head (a reward model's adapters on an LM).
  if (head == Head::scalar || cfg.tie_embeddings) tensors.erase("output.weight");
  if (head == Head::lm) tensors.erase("score.weight");
  for (auto& [name, t] : st.tensors) tensors[name] = t;
  st.tensors = keep_adapters ? std::move(tensors) : merge_lora(std::move(tensors), *lora);
  return st;
}

Decoder load_model(const std::string& path) {
  SafeTensors st = read_model_weights(path);
  ModelConfig cfg = config_from_metadata(st.metadata, path);
  Decoder model(cfg, head_from_metadata(st.metadata, path));
  load_weights(model, st, path);
  return model;
}

void load_weights(Decoder& model, const SafeTensors& st, const std::string& path) {
  auto params = model->named_parameters(/*recurse=*/true);
  std::vector<std::string> missing, unexpected;
  for (const auto& item : params)
    if (!st.tensors.count(item.key()))
      missing.push_back(fmt::format("{} (expected shape {})", item.key(), shape_str(item.value().sizes())));
  for (const auto& [name, t] : st.tensors)
    if (!params.contains(name)) unexpected.push_back(fmt::format("{} (shape {})", name, shape_str(t.sizes())));
  if (!missing.empty())
    throw Error(fmt::format("{}: missing tensor{} {}", path, missing.size() > 1 ? "s" : "", fmt::join(missing, ", ")));
  if (!unexpected.empty())
    throw Error(fmt::format("{}: unexpected tensor{} {} (not a parameter of this model)", path,
                            unexpected.size() > 1 ? "s" : "", fmt::join(unexpected, ", ")));
  for (const auto& item : params) {
    const torch::Tensor& t = st.tensors.at(item.key());
    if (t.sizes() != item.value().sizes())
      throw Error(fmt::format("{}: tensor {} has shape {}, expected {}", path, item.key(), shape_str(t.sizes()),
                              shape_str(item.value().sizes())));
    if (!t.is_floating_point())
      throw Error(fmt::format("{}: tensor {} has dtype {}, expected a floating-point dtype (F32)", path, item.key(),
                              safetensors_dtype_name(t.scalar_type())));
    // One reduction per tensor: weights with NaN or Inf would only show up later as a NaN loss or
    // perplexity.
    const int64_t bad = t.numel() - torch::isfinite(t).sum().item<int64_t>();
    if (bad > 0)
      throw Error(fmt::format("{}: tensor {} has {} non-finite value{} (NaN or Inf) of {}; the weights are corrupt or "
                              "were saved after training diverged", path, item.key(), bad, bad > 1 ? "s" : "", t.numel()));
  }
  torch::NoGradGuard no_grad;
  for (auto& item : params) item.value().copy_(st.tensors.at(item.key()));
}

int64_t parameter_count(Decoder& model) {
  int64_t n = 0;
  for (const auto& p : model->parameters()) n += p.numel();
  return n;
}

}  // namespace infini
