// Checkpoint contents: model + optimizer safetensors and trainer_state.json, with validation.
// Every stage (and PPO's actor/critic) saves and loads through these functions.
#include "train/run/checkpoint.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <sstream>

#include <fmt/format.h>

#include "core/error.h"
#include "core/hf_checkpoint.h"
#include "core/lora.h"
#include "core/model_io.h"
#include "core/safetensors.h"
#include "train/run/checkpoint_dir.h"

namespace fs = std::filesystem;

namespace infini {

std::string generator_state_hex(const at::Generator& gen) {
  torch::Tensor s = gen.get_state().contiguous();  // uint8 on the host, for CUDA generators too
  const auto* p = s.data_ptr<uint8_t>();
  static const char* digits = "0123456789abcdef";
  std::string out;
  out.reserve(static_cast<size_t>(s.numel()) * 2);
  for (int64_t i = 0; i < s.numel(); ++i) {
    out.push_back(digits[p[i] >> 4]);
    out.push_back(digits[p[i] & 15]);
  }
  return out;
}

void set_generator_state_hex(at::Generator& gen, const std::string& hex, const std::string& source,
                             const std::string& what) {
  if (hex.empty() || hex.size() % 2 != 0)
    throw Error(fmt::format("{}: {}: expected an even-length hex string, found {} characters", source, what,
                            hex.size()));
  torch::Tensor s = torch::empty({static_cast<int64_t>(hex.size() / 2)}, torch::kUInt8);
  auto* p = s.data_ptr<uint8_t>();
  auto val = [&](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    throw Error(fmt::format("{}: {}: not a hex digit '{}'", source, what, c));
  };
  for (size_t i = 0; i < hex.size() / 2; ++i) p[i] = static_cast<uint8_t>(val(hex[2 * i]) * 16 + val(hex[2 * i + 1]));
  try {
    gen.set_state(s);
  } catch (const c10::Error&) {
    throw Error(fmt::format("{}: {}: not a generator state ({} bytes)", source, what, s.numel()));
  }
}

std::string rng_state_hex(const torch::Device& device) {
  at::Generator gen = at::globalContext().defaultGenerator(device);
  std::lock_guard<std::mutex> lock(gen.mutex());
  return generator_state_hex(gen);
}

void set_rng_state_hex(const std::string& hex, const std::string& source, const torch::Device& device) {
  at::Generator gen = at::globalContext().defaultGenerator(device);
  std::lock_guard<std::mutex> lock(gen.mutex());
  set_generator_state_hex(gen, hex, source, device.is_cpu() ? "rng_cpu" : "rng_cuda");
}

nlohmann::json rng_states(const torch::Device& device) {
  nlohmann::json j{{"rng_cpu", rng_state_hex()}};
  if (device.is_cuda()) j["rng_cuda"] = rng_state_hex(device);
  return j;
}

void restore_rng_states(const nlohmann::json& state, const std::string& source, const torch::Device& device) {
  if (state.contains("rng_cpu")) set_rng_state_hex(state["rng_cpu"].get<std::string>(), source);
  if (device.is_cuda() && state.contains("rng_cuda"))
    set_rng_state_hex(state["rng_cuda"].get<std::string>(), source, device);
}

void save_model_and_optimizer(const std::string& dir, Decoder& model, const AdamW* opt,
                              const std::map<std::string, std::string>& metadata) {
  save_model((fs::path(dir) / kModelFileName).string(), model, metadata);
  if (opt) save_safetensors((fs::path(dir) / "optimizer.safetensors").string(), opt->state_dict(), {});
}

void load_model_and_optimizer(const std::string& dir, Decoder& model, AdamW* opt) {
  const std::string mpath = (fs::path(dir) / kModelFileName).string();
  const bool lora = model->lora.enabled();
  const std::optional<LoraConfig> saved = lora_of(read_safetensors_metadata(mpath), mpath);
  if (lora != saved.has_value())
    throw Error(fmt::format("{}: holds {}, this run has lora.rank {}; a resumed run keeps how it trains", mpath,
                            saved ? fmt::format("LoRA adapters (rank {})", saved->rank) : "full weights",
                            model->lora.rank));
  if (lora && lora_config_to_json(*saved) != lora_config_to_json(model->lora))
    throw Error(fmt::format("{}: its adapters were made with lora {}, this run has lora {}; a resumed run keeps its "
                            "adapters", mpath, lora_config_to_json(*saved).dump(),
                            lora_config_to_json(model->lora).dump()));
  SafeTensors st = read_model_weights(mpath, /*keep_adapters=*/lora);
  if (lora) {
    model->lora_base = st.metadata.at("lora_base");
    model->lora_base_fingerprint = st.metadata.at("lora_base_fingerprint");
  }
  load_weights(model, st, mpath);
  if (opt) {
    const std::string opath = (fs::path(dir) / "optimizer.safetensors").string();
    if (!fs::exists(opath)) throw Error(fmt::format("{}: missing (needed to resume the optimizer)", opath));
    opt->load_state_dict(load_safetensors(opath).tensors, opath);
  }
}

void save_trainer_state(const std::string& dir, nlohmann::json state) {
  state["format_version"] = kCheckpointFormatVersion;
  const fs::path path = fs::path(dir) / "trainer_state.json";
  std::ofstream out(path);
  out << state.dump(2) << "\n";
  out.flush();  // a full disk shows on the flush, not on the buffered write
  if (!out) throw Error(fmt::format("{}: cannot write ({})", path.string(), std::strerror(errno)));
}

nlohmann::json load_trainer_state(const std::string& dir) {
  const std::string path = (fs::path(dir) / "trainer_state.json").string();
  std::ifstream in(path);
  if (!in) throw Error(fmt::format("{}: missing or unreadable", path));
  nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
  if (j.is_discarded() || !j.is_object()) throw Error(fmt::format("{}: not a JSON object", path));
  if (!j.contains("format_version") || !j["format_version"].is_number_integer())
    throw Error(fmt::format("{}: format_version missing", path));
  const int64_t v = j["format_version"].get<int64_t>();  // 64 bits: a huge value must not wrap onto 1
  if (v != kCheckpointFormatVersion)
    throw Error(fmt::format("{}: format_version {} is not supported (expected {})", path, v,
                            kCheckpointFormatVersion));
  return j;
}

int64_t block_index(const std::string& param_name) {
  if (param_name.rfind("layers.", 0) != 0) return -1;
  return std::stoll(param_name.substr(7, param_name.find('.', 7) - 7));
}

int64_t init_weights_from(const std::string& ck, Decoder& model, const std::set<std::string>& ignore,
                          const std::set<std::string>& fresh, bool extra_layers) {
  // A Hugging Face model folder (config.json beside its weights) converts on the fly, as `convert hf`
  // would to this model's config (memory gates at gate_init, wo scaled to match).
  const bool hf = is_hf_folder(ck);
  const std::string path = hf ? ck : (fs::path(resolve_checkpoint(ck)) / kModelFileName).string();
  SafeTensors st;
  int64_t source_layers = 0;
  if (hf) {
    st.tensors = hf_to_infini_weights(read_hf_folder(ck), model->config());
    source_layers = model->config().n_layers;
  } else {
    st = read_model_weights(path);  // a LoRA file: its base with the adapters merged
    source_layers = read_model_config(path).n_layers;
  }
  for (const auto& name : ignore) st.tensors.erase(name);
  const int64_t model_layers = model->config().n_layers;
  if (model_layers > source_layers && !extra_layers)
    throw Error(fmt::format("{}: has {} blocks (model.n_layers), this model {}; set init_extra_layers: true to "
                            "start layers.{}-{} fresh",
                            path, source_layers, model_layers, source_layers, model_layers - 1));
  const int64_t added = extra_layers ? std::max<int64_t>(0, model_layers - source_layers) : 0;
  // New adapters keep their initial values (B = 0: the model starts as the source); the source is
  // their base, by fingerprint.
  const bool lora = model->lora.enabled();
  for (const auto& item : model->named_parameters(true)) {
    const bool adapter = lora && is_adapter_tensor(item.key());
    if ((fresh.count(item.key()) || adapter || (added && block_index(item.key()) >= source_layers)) &&
        !st.tensors.count(item.key()))
      st.tensors[item.key()] = item.value().detach().to(torch::kCPU).clone();
  }
  load_weights(model, st, path);
  if (lora) {
    model->lora_base = fs::weakly_canonical(fs::absolute(hf ? ck : path)).string();
    model->lora_base_fingerprint = model_fingerprint(model->lora_base);
  }
  return added;
}

}  // namespace infini
