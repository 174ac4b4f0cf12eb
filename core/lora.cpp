// LoRA on a Decoder (see lora.h). The fingerprint is FNV-1a over the bytes in 8-byte words (the
// tail byte by byte), with the file size mixed in: one multiply per 8 bytes, so a load reads the
// base once more at about its read speed.
#include "core/lora.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <vector>

#include <fmt/format.h>

#include "core/error.h"

namespace fs = std::filesystem;

namespace infini {
namespace {

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// The seven projections of a block, by their registered names.
std::vector<std::pair<std::string, Linear>> projections(DecoderBlock& b) {
  return {{"wq", b->attention->wq}, {"wk", b->attention->wk}, {"wv", b->attention->wv}, {"wo", b->attention->wo},
          {"w1", b->feed_forward->w1}, {"w2", b->feed_forward->w2}, {"w3", b->feed_forward->w3}};
}

// "layers.<i>.attention.wq.weight" and the like.
bool is_projection_weight(const std::string& name) {
  if (name.rfind("layers.", 0) != 0) return false;
  for (const char* p : {".attention.wq.weight", ".attention.wk.weight", ".attention.wv.weight",
                        ".attention.wo.weight", ".feed_forward.w1.weight", ".feed_forward.w2.weight",
                        ".feed_forward.w3.weight"})
    if (ends_with(name, p)) return true;
  return false;
}

constexpr uint64_t kFnvOffset = 1469598103934665603ULL, kFnvPrime = 1099511628211ULL;

uint64_t hash_file(const std::string& path, uint64_t h) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(fmt::format("{}: cannot open for reading", path));
  std::vector<char> buf(1 << 20);
  uint64_t size = 0;
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    const size_t n = static_cast<size_t>(in.gcount());
    size += n;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
      uint64_t w;
      std::memcpy(&w, buf.data() + i, 8);
      h = (h ^ w) * kFnvPrime;
    }
    for (; i < n; ++i) h = (h ^ static_cast<unsigned char>(buf[i])) * kFnvPrime;
  }
  return (h ^ size) * kFnvPrime;
}

}  // namespace

void add_lora_adapters(Decoder& model, const LoraConfig& cfg) {
  if (std::string err = cfg.validate(); !err.empty()) throw ConfigError(err);
  if (model->lora.enabled()) throw Error("add_lora_adapters: the model already has adapters");
  torch::NoGradGuard ng;
  for (auto& b : model->blocks)
    for (auto& [name, lin] : projections(b)) {
      if (std::find(cfg.targets.begin(), cfg.targets.end(), name) != cfg.targets.end())
        lin->add_adapter(cfg.rank, cfg.scale(), cfg.dropout);
      if (cfg.base_bf16) lin->weight.set_data(lin->weight.to(torch::kBFloat16));
    }
  model->lora = cfg;
}

bool is_adapter_tensor(const std::string& name) { return ends_with(name, ".lora_a") || ends_with(name, ".lora_b"); }

bool is_lora_tensor(const std::string& name) {
  return is_adapter_tensor(name) || ends_with(name, ".gate") || ends_with(name, ".write_gate") ||
         ends_with(name, ".write_gate_bias") || name == "score.weight";
}

std::map<std::string, torch::Tensor> merge_lora(std::map<std::string, torch::Tensor> tensors, const LoraConfig& cfg) {
  torch::NoGradGuard ng;
  if (cfg.base_bf16)
    for (auto& [name, t] : tensors)
      if (is_projection_weight(name)) t = t.to(torch::kBFloat16).to(torch::kFloat);
  std::vector<std::string> adapters;
  for (const auto& [name, t] : tensors)
    if (ends_with(name, ".lora_a")) adapters.push_back(name.substr(0, name.size() - 7));
  for (const std::string& prefix : adapters) {
    auto w = tensors.find(prefix + ".weight"), b = tensors.find(prefix + ".lora_b");
    if (w == tensors.end() || b == tensors.end())
      throw Error(fmt::format("merge_lora: adapter {}.lora_a has no {}", prefix,
                              w == tensors.end() ? prefix + ".weight" : prefix + ".lora_b"));
    const torch::Tensor a = tensors.at(prefix + ".lora_a").to(torch::kFloat);
    w->second = w->second.to(torch::kFloat) + torch::matmul(b->second.to(torch::kFloat), a) * cfg.scale();
    tensors.erase(prefix + ".lora_a");
    tensors.erase(b);
  }
  for (const auto& [name, t] : tensors)
    if (ends_with(name, ".lora_b")) throw Error(fmt::format("merge_lora: adapter {} has no lora_a", name));
  return tensors;
}

std::string model_fingerprint(const std::string& path) {
  uint64_t h = kFnvOffset;
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    std::vector<std::string> files;
    for (const auto& e : fs::directory_iterator(path, ec)) {
      const std::string name = e.path().filename().string();
      if (e.is_regular_file() && (name == "config.json" || ends_with(name, ".safetensors"))) files.push_back(name);
    }
    std::sort(files.begin(), files.end());
    if (files.empty()) throw Error(fmt::format("{}: no config.json or .safetensors files to fingerprint", path));
    for (const std::string& f : files) {
      for (unsigned char c : f) h = (h ^ c) * kFnvPrime;
      h = hash_file((fs::path(path) / f).string(), h);
    }
  } else {
    h = hash_file(path, h);
  }
  return fmt::format("{:016x}", h);
}

std::string LoraConfig::validate() const {
  if (rank < 0) return fmt::format("lora.rank: expected >= 0 (0 = off), found {}", rank);
  if (rank == 0) return "";
  if (!(alpha > 0)) return fmt::format("lora.alpha: expected > 0, found {}", alpha);
  if (!(dropout >= 0 && dropout < 1)) return fmt::format("lora.dropout: expected in [0, 1), found {}", dropout);
  if (targets.empty()) return "lora.targets: expected at least one of wq, wk, wv, wo, w1, w2, w3, found none";
  const auto& names = lora_target_names();
  for (size_t i = 0; i < targets.size(); ++i) {
    if (std::find(names.begin(), names.end(), targets[i]) == names.end())
      return fmt::format("lora.targets: expected names among wq, wk, wv, wo, w1, w2, w3, found '{}'", targets[i]);
    if (std::find(targets.begin(), targets.begin() + static_cast<std::ptrdiff_t>(i), targets[i]) !=
        targets.begin() + static_cast<std::ptrdiff_t>(i))
      return fmt::format("lora.targets: '{}' is listed twice", targets[i]);
  }
  return "";
}

}  // namespace infini
