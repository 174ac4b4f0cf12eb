// Metrics records as TensorBoard scalars (see tensorboard_log.h).
#include "train/run/tensorboard_log.h"

namespace infini {
namespace {

void add_record_scalars(const nlohmann::json& j, const std::string& prefix,
                        std::vector<std::pair<std::string, float>>* out) {
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string tag = prefix + "/" + it.key();
    if (it->is_number()) out->emplace_back(tag, it->get<float>());
    else if (it->is_boolean()) out->emplace_back(tag, it->get<bool>() ? 1.0f : 0.0f);
    else if (it->is_object()) add_record_scalars(*it, tag, out);
  }
}
}  // namespace

std::vector<std::pair<std::string, float>> record_scalars(const nlohmann::json& record) {
  std::vector<std::pair<std::string, float>> out;
  if (!record.is_object()) return out;
  const std::string kind = record.contains("kind") && record["kind"].is_string() ? record["kind"].get<std::string>()
                                                                                  : "metrics";
  nlohmann::json rest = record;
  rest.erase("kind");
  rest.erase("step");
  add_record_scalars(rest, kind, &out);
  return out;
}

TensorBoardLog::TensorBoardLog(const std::string& dir, int64_t first_step, const std::string& config_yaml)
    : file_(dir) {
  const double now = unix_wall_time();
  file_.add_session_start(first_step, now);
  // Indented four spaces: the text plugin renders Markdown, and a code block keeps the YAML as it is.
  std::string block;
  size_t start = 0;
  while (start < config_yaml.size()) {
    const size_t end = config_yaml.find('\n', start);
    block += "    " + config_yaml.substr(start, end == std::string::npos ? std::string::npos : end - start) + "\n";
    if (end == std::string::npos) break;
    start = end + 1;
  }
  file_.add_text(first_step, now, "config", block);
}

void TensorBoardLog::write(const nlohmann::json& record) {
  if (!record.is_object() || !record.contains("step") || !record["step"].is_number_integer()) return;
  const auto values = record_scalars(record);
  if (values.empty()) return;
  file_.add_scalars(record["step"].get<int64_t>(), unix_wall_time(), values);
}

}  // namespace infini
