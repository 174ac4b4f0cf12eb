// The TensorBoard side of metrics.jsonl: each metrics record becomes one event of scalars tagged
// "<kind>/<key>" (train/loss, eval/val_loss, ppo/reward_mean; a nested object's numbers become
// "<kind>/<key>/<sub>"), at the record's step, with the wall time of the write. A session opens a
// new event file in the run directory and starts it with SessionLog START at the first step it
// will write, so readers drop what an earlier, interrupted session logged past the checkpoint it
// resumed from (metrics.jsonl drops the same lines); the resolved config is a text summary.
// Not the event encoding (train/run/event_file.h).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "train/run/event_file.h"

namespace infini {

// The scalars of one metrics record: every number and boolean except "step", tagged as above
// (a record without "kind" is tagged "metrics/<key>"). Strings, nulls and arrays are left out.
std::vector<std::pair<std::string, float>> record_scalars(const nlohmann::json& record);

class TensorBoardLog {
 public:
  // A new event file in `dir`: SessionLog START at first_step, then `config_yaml` as the text
  // summary "config" at first_step.
  TensorBoardLog(const std::string& dir, int64_t first_step, const std::string& config_yaml);
  // One record of metrics.jsonl (records without a numeric "step" are not written).
  void write(const nlohmann::json& record);
  const std::string& path() const { return file_.path(); }

 private:
  EventFileWriter file_;
};

}  // namespace infini
