// `infini report RUN_DIR... [--out report.html]`: one self-contained HTML page of one or more runs
// (curves overlaid when several). The reading is train/report/run_records.h, the page
// train/report/report_html.h; this file is the command.
#include <cstdio>
#include <filesystem>
#include <memory>

#include <fmt/format.h>

#include "train/cli/commands.h"
#include "train/report/report_html.h"
#include "train/report/run_records.h"
#include "train/run/checkpoint_dir.h"

namespace fs = std::filesystem;

namespace infini {

void add_report_command(CLI::App& app) {
  struct Args {
    std::vector<std::string> runs;
    std::string out;
  };
  auto a = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand(
      "report", "one self-contained HTML page of one or more run directories: curves (several runs overlaid), "
                "time split, evaluations, checkpoints, config");
  cmd->add_option("runs", a->runs, "run directories (RUN_DIR/metrics.jsonl, config.yaml, checkpoints/, eval_*.json)")
      ->required();
  cmd->add_option("--out", a->out, "the HTML file (default: RUN_DIR/report.html for one run, report.html for several)");
  cmd->callback([a] {
    set_command([a] {
      std::vector<RunRecords> runs;
      for (const auto& dir : a->runs) runs.push_back(read_run_records(dir));
      const std::string out =
          !a->out.empty() ? a->out : runs.size() == 1 ? (fs::path(a->runs[0]) / "report.html").string() : "report.html";
      const std::string html = render_report(runs);
      write_file_atomic(out, html);
      std::printf("report: %s (%.1f KiB, %zu run%s)\n", out.c_str(), static_cast<double>(html.size()) / 1024.0,
                  runs.size(), runs.size() == 1 ? "" : "s");
      return 0;
    });
  });
}

}  // namespace infini
