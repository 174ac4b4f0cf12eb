// The page of `infini report`: one self-contained HTML file (inline CSS and SVG; no scripts, no
// network) for one or more runs: a summary, the metric curves (one chart per TensorBoard tag,
// several runs overlaid), the time split, the evaluation tables, the checkpoints and the resolved
// config. Not the reading of run directories (train/report/run_records.h).
#pragma once
#include <string>
#include <vector>

#include "train/report/run_records.h"

namespace infini {

std::string render_report(const std::vector<RunRecords>& runs);

}  // namespace infini
