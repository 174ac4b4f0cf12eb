// `infini info CK`: what a checkpoint holds (config, parameters, memory-state size, tensors) and
// whether its files are intact. Not a repair tool: a defect is reported and the exit code is 1.
#include <cstdio>
#include <filesystem>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/hf_checkpoint.h"
#include "core/model_io.h"
#include "core/safetensors.h"
#include "train/run/checkpoint.h"
#include "train/run/checkpoint_dir.h"
#include "train/cli/commands.h"

namespace fs = std::filesystem;

namespace infini {
namespace {

// "memory.update = delta" lines for a nested JSON config.
void print_config(const nlohmann::json& j, const std::string& prefix) {
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (it->is_object()) print_config(*it, prefix + it.key() + ".");
    else std::printf("  %s%s = %s\n", prefix.c_str(), it.key().c_str(), it->dump().c_str());
  }
}

// Where the weights came from: `convert llama2c` and `convert hf` record "source", training "stage".
std::string origin(const std::map<std::string, std::string>& meta) {
  auto get = [&](const char* key) {
    auto it = meta.find(key);
    return it == meta.end() ? std::string() : it->second;
  };
  const std::string source = get("source");
  if (!get("lora").empty())
    return fmt::format("LoRA adapters (stage {}) on {}, merged on load (parameters below: the merged model's)",
                       get("stage"), get("lora_base"));
  if (source.rfind("llama2c:", 0) == 0) return "llama2.c " + source.substr(8);
  if (source.rfind("hf:", 0) == 0) {
    nlohmann::json cfg = nlohmann::json::parse(get(kHfConfigMetadata), nullptr, false);
    std::string arch = "?";
    if (cfg.is_object() && cfg.contains("architectures") && cfg["architectures"].is_array() &&
        !cfg["architectures"].empty() && cfg["architectures"][0].is_string())
      arch = cfg["architectures"][0].get<std::string>();
    return fmt::format("hf {} ({}, {})", source.substr(3), arch, get(kHfDtypeMetadata));
  }
  if (!get("stage").empty()) return fmt::format("trained (stage {})", get("stage"));
  return source.empty() ? "unknown (no source or stage recorded)" : source;
}

int run_info(const std::string& ck) {
  const std::string dir = resolve_checkpoint(ck);
  const std::string path = (fs::path(dir) / kModelFileName).string();
  std::printf("checkpoint: %s\n", dir.c_str());
  // The model file must load and match its own config; anything else is listed, then reported.
  SafeTensors st = load_safetensors(path);
  Decoder model = load_model(path);
  const ModelConfig& cfg = model->config();

  std::printf("model: %s (%s head)\n", path.c_str(), to_string(model->head_kind()));
  std::printf("origin: %s\n", origin(st.metadata).c_str());
  print_config(model_config_to_json(cfg), "");
  for (const auto& [k, v] : st.metadata) {
    if (k == "model_config" || k == "format" || k == "head") continue;
    if (k == kHfConfigMetadata) std::printf("  metadata %s = (the original config.json, %zu bytes)\n", k.c_str(), v.size());
    else std::printf("  metadata %s = %s\n", k.c_str(), v.c_str());
  }
  std::printf("parameters: %lld\n", static_cast<long long>(parameter_count(model)));
  StreamState state = model->new_state(1);
  std::printf("stream state (batch 1): %lld bytes (memory + one segment's K/V cache; constant in context length)\n",
              static_cast<long long>(state.bytes()));
  std::printf("tensors: %zu\n", st.tensors.size());
  for (const auto& [name, t] : st.tensors)
    std::printf("  %-40s %-4s [%s]\n", name.c_str(), safetensors_dtype_name(t.scalar_type()).c_str(),
                fmt::format("{}", fmt::join(t.sizes(), ", ")).c_str());

  std::string problem;
  if (!fs::exists(fs::path(dir) / "trainer_state.json")) {
    problem = fmt::format("{}/trainer_state.json is missing", dir);
    std::printf("trainer_state.json: MISSING\n");
  } else {
    try {
      nlohmann::json s = load_trainer_state(dir);
      std::printf("trainer_state.json: ok (format_version %s, step %s, stage %s)\n", s["format_version"].dump().c_str(),
                  s.value("step", nlohmann::json()).dump().c_str(), s.value("stage", nlohmann::json()).dump().c_str());
    } catch (const Error& e) {
      problem = e.what();
      std::printf("trainer_state.json: INVALID (%s)\n", e.what());
    }
  }
  const fs::path opt = fs::path(dir) / "optimizer.safetensors";
  if (fs::exists(opt)) {
    try {
      SafeTensors o = load_safetensors(opt.string());
      std::printf("optimizer.safetensors: ok (%zu tensors)\n", o.tensors.size());
    } catch (const Error& e) {
      if (problem.empty()) problem = e.what();
      std::printf("optimizer.safetensors: INVALID (%s)\n", e.what());
    }
  } else {
    std::printf("optimizer.safetensors: absent\n");
  }
  std::fflush(stdout);
  if (!problem.empty()) throw Error(problem);
  std::printf("integrity: ok\n");
  return 0;
}

}  // namespace

void add_info_command(CLI::App& app) {
  auto ck = std::make_shared<std::string>();
  auto* cmd = app.add_subcommand("info", "show a checkpoint's config, parameters, tensors and check its files");
  cmd->add_option("checkpoint", *ck, "run or checkpoint directory")->required();
  cmd->callback([ck] { set_command([ck] { return run_info(*ck); }); });
}

}  // namespace infini
