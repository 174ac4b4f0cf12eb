// What `infini report` reads from a run directory: metrics.jsonl, config.yaml, the checkpoints and
// the evaluation results scripts/run.sh writes beside them (eval_passkey.json, eval_ppl.json,
// eval_reward.json). Reading only; nothing here renders (train/report/report_html.h).
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace infini {

struct CheckpointInfo {
  int64_t step = 0;
  std::string path;
  uint64_t bytes = 0;  // all files of the step directory
  bool latest = false;
};

struct RunRecords {
  std::string dir, label;              // label: the directory as given, without trailing '/'
  std::vector<nlohmann::json> metrics;  // metrics.jsonl (a line cut by a kill is skipped)
  std::string config_yaml, stage;      // config.yaml and its stage ("" when absent)
  std::vector<CheckpointInfo> checkpoints;  // by step
  std::optional<nlohmann::json> passkey, ppl, reward;
};

// Reads run directory `dir`. Throws Error naming the file: not a directory, no metrics.jsonl, an
// eval_*.json that is not a JSON object.
RunRecords read_run_records(const std::string& dir);

}  // namespace infini
