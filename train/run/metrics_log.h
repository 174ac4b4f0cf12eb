// metrics.jsonl: one JSON object per logged step or evaluation, appended and flushed per line.
// On resume the lines written after the resumed checkpoint are dropped, so the file stays one history.
#pragma once
#include <cstdint>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

namespace infini {

class MetricsLog {
 public:
  // Opens RUN_DIR/metrics.jsonl for appending; keep_upto_step >= 0 first removes lines whose
  // "step" is greater (the steps a resumed run will redo).
  MetricsLog(const std::string& path, int64_t keep_upto_step);
  void write(const nlohmann::json& record);
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::ofstream out_;
};

// Reads every record of a metrics.jsonl (for tests, plots and summaries).
std::vector<nlohmann::json> read_metrics(const std::string& path);

}  // namespace infini
