// Reading a run directory for `infini report` (see run_records.h).
#include "train/report/run_records.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include "core/error.h"
#include "train/run/metrics_log.h"

namespace fs = std::filesystem;

namespace infini {
namespace {

std::string slurp_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) throw Error(fmt::format("{}: cannot read", p.string()));
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::optional<nlohmann::json> read_eval_json(const fs::path& p, const char* command) {
  if (!fs::exists(p)) return std::nullopt;
  nlohmann::json j = nlohmann::json::parse(slurp_file(p), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object())
    throw Error(fmt::format("{}: expected a JSON object (the --out of infini {}), found something else", p.string(),
                            command));
  return j;
}

std::vector<CheckpointInfo> list_checkpoints(const fs::path& dir) {
  std::vector<CheckpointInfo> out;
  const fs::path ck = dir / "checkpoints";
  if (!fs::is_directory(ck)) return out;
  std::string latest;
  if (fs::exists(ck / "latest")) {
    std::istringstream in(slurp_file(ck / "latest"));
    in >> latest;
  }
  for (const auto& e : fs::directory_iterator(ck)) {
    const std::string name = e.path().filename().string();
    if (!e.is_directory() || name.rfind("step_", 0) != 0) continue;
    CheckpointInfo c;
    try {
      c.step = std::stoll(name.substr(5));
    } catch (const std::exception&) {
      continue;
    }
    c.path = e.path().string();
    c.latest = name == latest;
    for (const auto& f : fs::recursive_directory_iterator(e.path()))
      if (f.is_regular_file()) c.bytes += f.file_size();
    out.push_back(c);
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.step < b.step; });
  return out;
}

}  // namespace

RunRecords read_run_records(const std::string& dir) {
  RunRecords r;
  r.dir = dir;
  r.label = dir;
  while (r.label.size() > 1 && r.label.back() == '/') r.label.pop_back();
  const fs::path d(dir);
  if (!fs::is_directory(d))
    throw Error(fmt::format("{}: not a directory (expected a run directory: metrics.jsonl, config.yaml, checkpoints/)",
                            dir));
  const fs::path metrics = d / "metrics.jsonl";
  if (!fs::exists(metrics))
    throw Error(fmt::format("{}: not found (expected the run directory of an `infini train` run)", metrics.string()));
  r.metrics = read_metrics(metrics.string());
  if (fs::exists(d / "config.yaml")) {
    r.config_yaml = slurp_file(d / "config.yaml");
    try {
      const YAML::Node n = YAML::Load(r.config_yaml);
      if (n["stage"]) r.stage = n["stage"].as<std::string>();
    } catch (const YAML::Exception&) {
      // shown as text all the same; the stage stays unknown
    }
  }
  r.checkpoints = list_checkpoints(d);
  r.passkey = read_eval_json(d / "eval_passkey.json", "eval passkey");
  r.ppl = read_eval_json(d / "eval_ppl.json", "eval ppl");
  r.reward = read_eval_json(d / "eval_reward.json", "eval reward");
  return r;
}

}  // namespace infini
