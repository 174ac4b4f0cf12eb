// metrics.jsonl writer and reader.
// Writes are line-buffered so a killed run loses at most the line being written.
#include "train/run/metrics_log.h"

#include <filesystem>
#include <sstream>

#include <fmt/format.h>

#include "core/error.h"
#include "train/run/checkpoint_dir.h"

namespace infini {

MetricsLog::MetricsLog(const std::string& path, int64_t first_new_step, std::unique_ptr<TensorBoardLog> tensorboard)
    : path_(path), tensorboard_(std::move(tensorboard)) {
  if (path.empty()) return;  // a rank other than 0 of a data-parallel job: records go nowhere
  if (first_new_step >= 0 && std::filesystem::exists(path)) {
    std::ifstream in(path);
    std::ostringstream kept;
    for (std::string line; std::getline(in, line);) {
      auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
      if (j.is_discarded()) continue;  // a line cut by a kill
      if (j.contains("step") && j["step"].get<int64_t>() >= first_new_step) continue;
      kept << line << "\n";
    }
    write_file_atomic(path, kept.str());
  }
  out_.open(path, std::ios::app);
  if (!out_) throw Error(fmt::format("cannot open {} for writing", path));
}

void MetricsLog::write(const nlohmann::json& record) {
  if (path_.empty()) return;
  out_ << record.dump() << "\n";
  out_.flush();
  if (tensorboard_) tensorboard_->write(record);
}

std::vector<nlohmann::json> read_metrics(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error(fmt::format("{}: cannot read metrics", path));
  std::vector<nlohmann::json> out;
  for (std::string line; std::getline(in, line);) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_discarded()) out.push_back(std::move(j));
  }
  return out;
}

}  // namespace infini
