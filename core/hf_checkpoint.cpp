// Hugging Face LLaMA weights in and out: folder reading with strict name/shape/dtype checks, the
// name map (HF model.layers.L.self_attn.q_proj <-> our layers.L.attention.wq, ...), the RoPE row
// permutation and the gate fold. Not config.json's keys (core/hf_config.cpp) nor any file writing.
#include "core/hf_checkpoint.h"

#include <filesystem>
#include <fstream>
#include <set>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/error.h"
#include "core/model_io.h"
#include "core/safetensors.h"

namespace infini {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::string shape_str(c10::IntArrayRef s) { return fmt::format("[{}]", fmt::join(s, ", ")); }

// load_safetensors, with its defects (truncated, bad header) as ConfigErrors: the folder is the
// command's argument.
SafeTensors load_file(const std::string& path, const ByteProgress& progress) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) throw ConfigError(fmt::format("{}: no such file", path));
  try {
    return load_safetensors(path, progress);
  } catch (const ConfigError&) {
    throw;
  } catch (const Error& e) {
    throw ConfigError(e.what());
  }
}

std::string layer_name(int64_t l, const char* rest) { return fmt::format("model.layers.{}.{}", l, rest); }
std::string infini_gate(int64_t l) { return fmt::format("infini.layers.{}.attention.gate", l); }
std::string infini_wo(int64_t l) { return fmt::format("infini.layers.{}.attention.wo.weight", l); }
// The write gate of memory.write_gate: (Hkv, D) and (Hkv), kept as they are.
std::string infini_write_gate(int64_t l, const char* which) {
  return fmt::format("infini.layers.{}.attention.{}", l, which);
}

// HF name -> shape for the tensors of a model with config `c` (required), and the optional ones.
void expected_tensors(const ModelConfig& c, std::map<std::string, std::vector<int64_t>>* required,
                      std::map<std::string, std::vector<int64_t>>* optional) {
  const int64_t D = c.d_model, F = c.ffn_dim(), V = c.vocab_size, Dh = c.head_dim();
  const int64_t H = c.n_heads, Hkv = c.kv_heads();
  auto& r = *required;
  r["model.embed_tokens.weight"] = {V, D};
  r["model.norm.weight"] = {D};
  (c.tie_embeddings ? *optional : r)["lm_head.weight"] = {V, D};
  for (int64_t l = 0; l < c.n_layers; ++l) {
    r[layer_name(l, "input_layernorm.weight")] = {D};
    r[layer_name(l, "post_attention_layernorm.weight")] = {D};
    r[layer_name(l, "self_attn.q_proj.weight")] = {H * Dh, D};
    r[layer_name(l, "self_attn.k_proj.weight")] = {Hkv * Dh, D};
    r[layer_name(l, "self_attn.v_proj.weight")] = {Hkv * Dh, D};
    r[layer_name(l, "self_attn.o_proj.weight")] = {D, H * Dh};
    r[layer_name(l, "mlp.gate_proj.weight")] = {F, D};
    r[layer_name(l, "mlp.up_proj.weight")] = {F, D};
    r[layer_name(l, "mlp.down_proj.weight")] = {D, F};
    (*optional)[infini_gate(l)] = {H};
    (*optional)[infini_wo(l)] = {D, H * Dh};
    (*optional)[infini_write_gate(l, "write_gate")] = {Hkv, D};
    (*optional)[infini_write_gate(l, "write_gate_bias")] = {Hkv};
  }
}

const char* dtype_label(torch::ScalarType t) {
  switch (t) {
    case torch::kFloat: return "float32";
    case torch::kBFloat16: return "bfloat16";
    case torch::kHalf: return "float16";
    default: return "other";
  }
}

// The folder's tensors by name, from model.safetensors or model.safetensors.index.json.
void read_tensors(HfFolder& f, const ByteProgress& progress) {
  const fs::path dir(f.dir);
  const std::string single = (dir / "model.safetensors").string();
  const std::string index = (dir / "model.safetensors.index.json").string();
  std::error_code ec;
  if (fs::is_regular_file(single, ec)) {
    SafeTensors st = load_file(single, progress);
    for (auto& [name, t] : st.tensors) {
      f.file_of[name] = single;
      f.tensors[name] = std::move(t);
    }
    return;
  }
  if (!fs::is_regular_file(index, ec)) {
    std::string found;
    if (fs::exists(dir / "pytorch_model.bin", ec) || fs::exists(dir / "pytorch_model.bin.index.json", ec))
      found = " (pytorch_model.bin is a pickle file, not read here: re-save the model with safe_serialization=True)";
    throw ConfigError(fmt::format("{}: no model.safetensors or model.safetensors.index.json{}", f.dir, found));
  }
  std::ifstream in(index);
  json j = json::parse(in, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object())
    throw ConfigError(fmt::format("{}: expected a JSON object with a \"weight_map\" object", index));
  std::map<std::string, std::vector<std::string>> by_file;
  for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
    if (!it->is_string())
      throw ConfigError(fmt::format("{}: weight_map[\"{}\"]: expected a file name, found {}", index, it.key(), it->dump()));
    const std::string file = it->get<std::string>();
    if (file.empty() || file.find('/') != std::string::npos || file == "." || file == "..")
      throw ConfigError(
          fmt::format("{}: weight_map[\"{}\"]: expected a file name in the folder, found \"{}\"", index, it.key(), file));
    by_file[file].push_back(it.key());
  }
  uint64_t total = 0, before = 0;  // bytes of all shards, and of the shards read
  for (const auto& [file, names] : by_file) {
    const std::string path = (dir / file).string();
    if (!fs::is_regular_file(path, ec))
      throw ConfigError(fmt::format("{}: shard {} (named by {} for {} tensors, e.g. {}) does not exist", path, file,
                                    index, names.size(), names.front()));
    total += fs::file_size(path, ec);
  }
  for (const auto& [file, names] : by_file) {
    const std::string path = (dir / file).string();
    SafeTensors st = load_file(path, [&](uint64_t done, uint64_t) {
      if (progress) progress(before + done, total);
    });
    before += fs::file_size(path, ec);
    for (const auto& name : names) {
      auto t = st.tensors.find(name);
      if (t == st.tensors.end())
        throw ConfigError(fmt::format("{}: has no tensor {} (the index {} puts it there)", path, name, index));
      f.file_of[name] = path;
      f.tensors[name] = std::move(t->second);
    }
  }
}

// Every required tensor present with its shape and a float dtype, nothing unknown.
void check_tensors(HfFolder& f) {
  std::map<std::string, std::vector<int64_t>> required, optional;
  expected_tensors(f.config.model, &required, &optional);
  // Older transformers saved the RoPE frequencies as a buffer; they are recomputed.
  for (auto it = f.tensors.begin(); it != f.tensors.end();)
    it = it->first.find("rotary_emb.inv_freq") != std::string::npos ? f.tensors.erase(it)
                                                                                              : std::next(it);
  const std::string cfg_file = (fs::path(f.dir) / "config.json").string();
  for (const auto& [name, shape] : required)
    if (!f.tensors.count(name))
      throw ConfigError(fmt::format("{}: missing tensor {} (expected shape {} from {})", f.dir, name,
                                    shape_str(shape), cfg_file));
  std::set<torch::ScalarType> dtypes;
  for (const auto& [name, t] : f.tensors) {
    auto r = required.find(name);
    auto o = optional.find(name);
    if (r == required.end() && o == optional.end())
      throw ConfigError(fmt::format("{}: unexpected tensor {} (shape {}): not part of a {} with this config", f.file_of[name],
                                    name, shape_str(t.sizes()), f.config.architecture));
    const auto& shape = r != required.end() ? r->second : o->second;
    if (t.sizes() != c10::IntArrayRef(shape))
      throw ConfigError(fmt::format("{}: tensor {} has shape {}, expected {} from {}", f.file_of[name], name,
                                    shape_str(t.sizes()), shape_str(shape), cfg_file));
    const torch::ScalarType st = t.scalar_type();
    if (st != torch::kFloat && st != torch::kBFloat16 && st != torch::kHalf)
      throw ConfigError(fmt::format("{}: tensor {} has dtype {}, expected F32, BF16 or F16 (quantized weights are not "
                                    "supported)",
                                    f.file_of[name], name, safetensors_dtype_name(st)));
    if (name.rfind("infini.", 0) != 0) dtypes.insert(st);
  }
  if (f.config.model.tie_embeddings && f.tensors.count("lm_head.weight")) {
    if (!torch::equal(f.tensors["lm_head.weight"], f.tensors["model.embed_tokens.weight"]))
      throw ConfigError(fmt::format("{}: tensor lm_head.weight differs from model.embed_tokens.weight, but {} says "
                                    "tie_word_embeddings: true",
                                    f.file_of["lm_head.weight"], cfg_file));
    f.tensors.erase("lm_head.weight");
  }
  f.dtype = dtypes.size() == 1 ? dtype_label(*dtypes.begin()) : "mixed";
}

// Per-column factor (1 - sigmoid(gate)) of wo's input columns (head h owns columns h*Dh..).
torch::Tensor gate_columns(const torch::Tensor& gate, int64_t head_dim) {
  return (1 - torch::sigmoid(gate.to(torch::kFloat))).repeat_interleave(head_dim).unsqueeze(0);  // (1, H*Dh)
}

}  // namespace

torch::Tensor hf_rows_to_interleaved(const torch::Tensor& w, int64_t n_heads) {
  const int64_t rows = w.size(0), cols = w.size(1), dh = rows / n_heads;
  TORCH_CHECK(rows == n_heads * dh && dh % 2 == 0, "hf_rows_to_interleaved: bad shape");
  // HF row j*Dh/2 + i  ->  our row 2i + j.
  return w.reshape({n_heads, 2, dh / 2, cols}).transpose(1, 2).reshape({rows, cols}).contiguous();
}

torch::Tensor interleaved_rows_to_hf(const torch::Tensor& w, int64_t n_heads) {
  const int64_t rows = w.size(0), cols = w.size(1), dh = rows / n_heads;
  TORCH_CHECK(rows == n_heads * dh && dh % 2 == 0, "interleaved_rows_to_hf: bad shape");
  return w.reshape({n_heads, dh / 2, 2, cols}).transpose(1, 2).reshape({rows, cols}).contiguous();
}

HfFolder read_hf_folder(const std::string& dir, const ByteProgress& progress) {
  HfFolder f;
  f.dir = dir;
  f.config = read_hf_config(dir);
  read_tensors(f, progress);
  check_tensors(f);
  return f;
}

bool is_hf_folder(const std::string& dir) {
  std::error_code ec;
  return fs::is_regular_file(fs::path(dir) / "config.json", ec);
}

void check_hf_compatible(const HfConfig& hf, const ModelConfig& t, const std::string& where) {
  const ModelConfig& h = hf.model;
  auto differ = [&](const char* ours, const char* theirs, const std::string& a, const std::string& b) {
    throw ConfigError(fmt::format("{}: model.{} is {}, but the Hugging Face config.json says {}: {}", where, ours, a,
                                  theirs, b));
  };
  auto same_int = [&](const char* ours, const char* theirs, int64_t a, int64_t b) {
    if (a != b) differ(ours, theirs, std::to_string(a), std::to_string(b));
  };
  same_int("vocab_size", "vocab_size", t.vocab_size, h.vocab_size);
  same_int("d_model", "hidden_size", t.d_model, h.d_model);
  same_int("n_layers", "num_hidden_layers", t.n_layers, h.n_layers);
  same_int("n_heads", "num_attention_heads", t.n_heads, h.n_heads);
  same_int("n_kv_heads", "num_key_value_heads", t.kv_heads(), h.kv_heads());
  same_int("ffn_hidden", "intermediate_size", t.ffn_dim(), h.ffn_dim());
  if (t.norm_eps != h.norm_eps) differ("norm_eps", "rms_norm_eps", fmt::format("{}", t.norm_eps), fmt::format("{}", h.norm_eps));
  if (t.rope_theta != h.rope_theta)
    differ("rope_theta", "rope_theta", fmt::format("{}", t.rope_theta), fmt::format("{}", h.rope_theta));
  if (t.tie_embeddings != h.tie_embeddings)
    differ("tie_embeddings", "tie_word_embeddings", t.tie_embeddings ? "true" : "false", h.tie_embeddings ? "true" : "false");
}

ModelConfig hf_target_config(const HfFolder& f, const HfImportOptions& o) {
  const std::string cfg_file = (fs::path(f.dir) / "config.json").string();
  ModelConfig c = f.config.model;
  const json& raw = f.config.raw;
  if (raw.contains("infini")) {
    const json& sec = raw.at("infini");
    if (!sec.is_object() || !sec.contains("model_config"))
      throw ConfigError(fmt::format("{}: key infini: expected an object with \"model_config\" (written by infini "
                                    "export hf), found {}",
                                    cfg_file, sec.dump()));
    try {
      c = model_config_from_json(sec.at("model_config"), cfg_file + ": infini.model_config");
    } catch (const ConfigError&) {
      throw;
    } catch (const Error& e) {
      throw ConfigError(e.what());
    }
    check_hf_compatible(f.config, c, cfg_file + ": infini.model_config");
  }
  if (o.memory) c.memory.enabled = *o.memory;
  if (o.update) c.memory.update = *o.update;
  if (o.write_gate) c.memory.write_gate = *o.write_gate;
  if (o.segment_len) c.segment_len = *o.segment_len;
  if (std::string err = c.validate(); !err.empty()) throw ConfigError(err);
  return c;
}

std::map<std::string, torch::Tensor> hf_to_infini_weights(const HfFolder& f, const ModelConfig& c) {
  check_hf_compatible(f.config, c, f.dir);
  auto get = [&](const std::string& name) { return f.tensors.at(name).to(torch::kFloat).contiguous(); };
  std::map<std::string, torch::Tensor> w;
  w["tok_embeddings.weight"] = get("model.embed_tokens.weight");
  w["norm.weight"] = get("model.norm.weight");
  if (!c.tie_embeddings) w["output.weight"] = get("lm_head.weight");
  for (int64_t l = 0; l < c.n_layers; ++l) {
    auto ours = [&](const char* rest) { return fmt::format("layers.{}.{}", l, rest); };
    w[ours("attention_norm.weight")] = get(layer_name(l, "input_layernorm.weight"));
    w[ours("ffn_norm.weight")] = get(layer_name(l, "post_attention_layernorm.weight"));
    w[ours("attention.wq.weight")] = hf_rows_to_interleaved(get(layer_name(l, "self_attn.q_proj.weight")), c.n_heads);
    w[ours("attention.wk.weight")] = hf_rows_to_interleaved(get(layer_name(l, "self_attn.k_proj.weight")), c.kv_heads());
    w[ours("attention.wv.weight")] = get(layer_name(l, "self_attn.v_proj.weight"));
    w[ours("feed_forward.w1.weight")] = get(layer_name(l, "mlp.gate_proj.weight"));
    w[ours("feed_forward.w3.weight")] = get(layer_name(l, "mlp.up_proj.weight"));
    w[ours("feed_forward.w2.weight")] = get(layer_name(l, "mlp.down_proj.weight"));
    torch::Tensor wo = get(layer_name(l, "self_attn.o_proj.weight"));
    if (c.memory.enabled) {
      torch::Tensor gate = f.tensors.count(infini_gate(l)) ? get(infini_gate(l))
                                                            : torch::full({c.n_heads}, c.gate_init, torch::kFloat);
      w[ours("attention.gate")] = gate;
      wo = f.tensors.count(infini_wo(l)) ? get(infini_wo(l)) : wo / gate_columns(gate, c.head_dim());
      if (c.memory.write_gate) {  // from an export, else a fresh, open gate
        const std::string wg = infini_write_gate(l, "write_gate"), wb = infini_write_gate(l, "write_gate_bias");
        w[ours("attention.write_gate")] = f.tensors.count(wg) ? get(wg) : torch::zeros({c.kv_heads(), c.d_model});
        w[ours("attention.write_gate_bias")] =
            f.tensors.count(wb) ? get(wb) : torch::full({c.kv_heads()}, c.memory.write_gate_bias, torch::kFloat);
      }
    }
    w[ours("attention.wo.weight")] = wo;
  }
  return w;
}

Decoder import_hf(const HfFolder& f, const HfImportOptions& o) {
  const ModelConfig c = hf_target_config(f, o);
  Decoder model(c, Head::lm);
  try {
    load_weights(model, SafeTensors{hf_to_infini_weights(f, c), {}}, f.dir);
  } catch (const ConfigError&) {
    throw;
  } catch (const Error& e) {
    throw ConfigError(e.what());
  }
  model->eval();
  return model;
}

HfExport infini_to_hf(Decoder& model, const json& base_config, torch::ScalarType dtype) {
  if (model->head_kind() != Head::lm)
    throw ConfigError("this checkpoint has a scalar (reward/value) head; export hf writes language models "
                      "(LlamaForCausalLM) only");
  TORCH_CHECK(dtype == torch::kFloat || dtype == torch::kBFloat16 || dtype == torch::kHalf, "infini_to_hf: dtype");
  const ModelConfig& c = model->config();
  torch::NoGradGuard no_grad;
  std::map<std::string, torch::Tensor> p;
  for (const auto& item : model->named_parameters(true)) p[item.key()] = item.value().detach().to(torch::kCPU, torch::kFloat);
  HfExport out;
  auto put = [&](const std::string& name, const torch::Tensor& t) { out.tensors[name] = t.to(dtype).contiguous(); };
  put("model.embed_tokens.weight", p.at("tok_embeddings.weight"));
  put("model.norm.weight", p.at("norm.weight"));
  if (!c.tie_embeddings) put("lm_head.weight", p.at("output.weight"));
  for (int64_t l = 0; l < c.n_layers; ++l) {
    auto ours = [&](const char* rest) { return p.at(fmt::format("layers.{}.{}", l, rest)); };
    put(layer_name(l, "input_layernorm.weight"), ours("attention_norm.weight"));
    put(layer_name(l, "post_attention_layernorm.weight"), ours("ffn_norm.weight"));
    put(layer_name(l, "self_attn.q_proj.weight"), interleaved_rows_to_hf(ours("attention.wq.weight"), c.n_heads));
    put(layer_name(l, "self_attn.k_proj.weight"), interleaved_rows_to_hf(ours("attention.wk.weight"), c.kv_heads()));
    put(layer_name(l, "self_attn.v_proj.weight"), ours("attention.wv.weight"));
    put(layer_name(l, "mlp.gate_proj.weight"), ours("feed_forward.w1.weight"));
    put(layer_name(l, "mlp.up_proj.weight"), ours("feed_forward.w3.weight"));
    put(layer_name(l, "mlp.down_proj.weight"), ours("feed_forward.w2.weight"));
    const torch::Tensor wo = ours("attention.wo.weight");
    if (!c.memory.enabled) {
      put(layer_name(l, "self_attn.o_proj.weight"), wo);
      continue;
    }
    const torch::Tensor gate = ours("attention.gate");
    const torch::Tensor cols = gate_columns(gate, c.head_dim());
    put(layer_name(l, "self_attn.o_proj.weight"), wo * cols);
    out.tensors[infini_gate(l)] = gate.contiguous();
    // convert divides by the same factor; where that does not give back wo bit for bit, keep it.
    const torch::Tensor back = out.tensors.at(layer_name(l, "self_attn.o_proj.weight")).to(torch::kFloat) / cols;
    if (!torch::equal(back, wo)) out.tensors[infini_wo(l)] = wo.contiguous();
    if (c.memory.write_gate) {
      out.tensors[infini_write_gate(l, "write_gate")] = ours("attention.write_gate").contiguous();
      out.tensors[infini_write_gate(l, "write_gate_bias")] = ours("attention.write_gate_bias").contiguous();
    }
  }
  out.config = hf_config_json(c, base_config, dtype_label(dtype));
  out.config["infini"] = {
      {"format_version", 1},
      {"model_config", model_config_to_json(c)},
      {"tensors", "infini.layers.L.attention.gate: the memory gates (fp32); infini.layers.L.attention.wo.weight: wo "
                  "where o_proj / (1 - sigmoid(gate)) does not give it back exactly; "
                  "infini.layers.L.attention.write_gate, write_gate_bias: the memory's write gate (fp32), when "
                  "model_config.memory.write_gate is true"},
      {"o_proj", "wo with each head's input columns times (1 - sigmoid(gate)): the output inside one segment"}};
  return out;
}

}  // namespace infini
