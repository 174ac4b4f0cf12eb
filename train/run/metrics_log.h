// metrics.jsonl: one JSON object per logged step or evaluation, appended and flushed per line, and
// the same records as TensorBoard scalars when a TensorBoardLog is given (the one metrics writer).
// On resume the lines written after the resumed checkpoint are dropped, so the file stays one history.
#pragma once
#include <cstdint>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "train/run/tensorboard_log.h"

namespace infini {

class MetricsLog {
 public:
  // Opens RUN_DIR/metrics.jsonl for appending; first_new_step >= 0 first removes lines whose
  // "step" is that or later (the steps this run will write: those after the resumed checkpoint, or
  // all of them on a fresh start). `tensorboard` (optional) receives every record too. An empty
  // path writes nothing (the ranks after rank 0 of a data-parallel job).
  MetricsLog(const std::string& path, int64_t first_new_step, std::unique_ptr<TensorBoardLog> tensorboard = nullptr);
  void write(const nlohmann::json& record);
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::ofstream out_;
  std::unique_ptr<TensorBoardLog> tensorboard_;
};

// Reads every record of a metrics.jsonl (for tests, plots and summaries).
std::vector<nlohmann::json> read_metrics(const std::string& path);

}  // namespace infini
