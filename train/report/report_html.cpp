// The report page (see report_html.h).
#include "train/report/report_html.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include <fmt/format.h>

#include "train/report/html.h"
#include "train/report/svg_chart.h"
#include "train/run/tensorboard_log.h"

namespace infini {
namespace {

const char* kReportStyle = R"(body { font-family: sans-serif; margin: 24px; color: #222; max-width: 1180px; }
h1 { font-size: 22px; } h2 { font-size: 18px; margin-top: 28px; border-bottom: 1px solid #ccc; }
h3 { font-size: 15px; }
table { border-collapse: collapse; margin: 8px 0 16px 0; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
th { background: #f2f2f2; } td:first-child, th:first-child { text-align: left; }
.charts { display: flex; flex-wrap: wrap; gap: 8px; }
svg.chart { border: 1px solid #ddd; background: #fff; font-size: 11px; }
svg .plot { fill: #fafafa; stroke: #999; } svg .grid { stroke: #e3e3e3; }
svg .title { font-size: 13px; font-weight: bold; } svg .axis { font-size: 12px; fill: #444; }
svg polyline.series { stroke-width: 1.6; }
pre { background: #f7f7f7; border: 1px solid #ddd; padding: 8px; font-size: 12px; overflow-x: auto; }
.swatch { display: inline-block; width: 10px; height: 10px; margin-right: 4px; }
)";

// Time-split keys: shown as the time split, not as curves.
const std::set<std::string> kTimeKeys = {"train/window_s", "train/data_s", "train/model_s", "train/optim_s",
                                         "ppo/generate_s", "ppo/score_s", "ppo/update_s"};

// Charts first for the curves people look for, then the rest by tag.
int tag_rank(const std::string& tag) {
  static const std::vector<std::string> first = {"train/loss", "eval/val_loss", "train/ppl", "eval/val_ppl",
                                                 "eval/val_accuracy", "train/accuracy", "ppo/reward_mean",
                                                 "eval/true_accuracy", "ppo/kl", "train/lr", "train/grad_norm"};
  const auto it = std::find(first.begin(), first.end(), tag);
  if (it != first.end()) return static_cast<int>(it - first.begin());
  if (tag.rfind("train/", 0) == 0) return 100;
  if (tag.rfind("eval/", 0) == 0) return 101;
  if (tag.rfind("ppo/", 0) == 0) return 102;
  return 103;
}

std::string report_num(double v, const char* f = "{:.4g}") { return std::isfinite(v) ? fmt::format(fmt::runtime(f), v) : "-"; }

std::string run_legend(const std::vector<RunRecords>& runs) {
  std::string s = "<p>";
  for (size_t i = 0; i < runs.size(); ++i)
    s += fmt::format("<span class=\"swatch\" style=\"background: {}\"></span>{}&#160;&#160; ", series_colour(i),
                     html_escape(runs[i].label));
  return s + "</p>\n";
}

double last_value(const RunRecords& r, const std::string& kind, const std::string& key) {
  double v = NAN;
  for (const auto& m : r.metrics)
    if (m.value("kind", "") == kind && m.contains(key) && m[key].is_number()) v = m[key].get<double>();
  return v;
}

std::string summary_section(const std::vector<RunRecords>& runs) {
  HtmlTable t({"run", "stage", "last step", "last loss", "last val loss", "elapsed", "checkpoints", "latest"});
  for (const auto& r : runs) {
    int64_t last_step = 0;
    for (const auto& m : r.metrics)
      if (m.contains("step") && m["step"].is_number_integer()) last_step = std::max(last_step, m["step"].get<int64_t>());
    std::string latest = "-";
    for (const auto& c : r.checkpoints)
      if (c.latest) latest = "step " + std::to_string(c.step);
    const double elapsed = last_value(r, "train", "elapsed_s");
    t.row({r.label, r.stage.empty() ? "?" : r.stage, std::to_string(last_step), report_num(last_value(r, "train", "loss")),
           report_num(last_value(r, "eval", "val_loss")), std::isfinite(elapsed) ? report_num(elapsed, "{:.1f} s") : "-",
           std::to_string(r.checkpoints.size()), latest});
  }
  return "<h2>Summary</h2>\n" + t.str();
}

// One chart per tag (the tags of the TensorBoard event files), each run a series.
std::string curves_section(const std::vector<RunRecords>& runs) {
  std::map<std::string, std::vector<ChartSeries>> by_tag;
  for (size_t i = 0; i < runs.size(); ++i)
    for (const auto& m : runs[i].metrics) {
      if (!m.contains("step") || !m["step"].is_number()) continue;
      for (const auto& [tag, v] : record_scalars(m)) {
        if (kTimeKeys.count(tag)) continue;
        auto& series = by_tag[tag];
        series.resize(runs.size());
        series[i].label = runs[i].label;
        series[i].points.emplace_back(m["step"].get<double>(), static_cast<double>(v));
      }
    }
  std::vector<std::string> tags;
  for (const auto& [tag, s] : by_tag) tags.push_back(tag);
  std::stable_sort(tags.begin(), tags.end(), [](const auto& a, const auto& b) { return tag_rank(a) < tag_rank(b); });
  std::string s = "<h2>Curves</h2>\n";
  if (runs.size() > 1) s += run_legend(runs);
  s += "<div class=\"charts\">\n";
  for (const auto& tag : tags) {
    std::vector<ChartSeries> series = by_tag[tag];
    for (size_t i = 0; i < series.size(); ++i) series[i].label = runs[i].label;
    const std::string key = tag.substr(tag.rfind('/') + 1);
    ChartSpec spec{tag, tag.rfind("ppo/", 0) == 0 ? "rollout" : "step", key};
    spec.log_allowed = key != "tokens_seen" && key != "elapsed_s" && key != "eta_s";  // counters read best linear
    s += svg_line_chart(spec, series);
  }
  return s + "</div>\n";
}

// Sums of the time keys over a run's records of `kind`, with the share of `total_key`.
std::string time_split_section(const std::vector<RunRecords>& runs) {
  HtmlTable t({"run", "logged window", "data", "model", "optimizer", "other (log, eval, checkpoints)", "ppo generate",
               "ppo score", "ppo update"});
  std::vector<BarRow> bars;
  for (const auto& r : runs) {
    std::map<std::string, double> sum;
    for (const auto& m : r.metrics)
      for (const char* k : {"window_s", "data_s", "model_s", "optim_s", "generate_s", "score_s", "update_s"})
        if (m.contains(k) && m[k].is_number()) sum[k] += m[k].get<double>();
    const double w = sum["window_s"];
    auto part = [&](double v) { return w > 0 ? fmt::format("{:.1f} s ({:.0f}%)", v, 100 * v / w) : "-"; };
    auto plain = [](double v) { return v > 0 ? fmt::format("{:.1f} s", v) : "-"; };
    t.row({r.label, w > 0 ? fmt::format("{:.1f} s", w) : "-", part(sum["data_s"]), part(sum["model_s"]),
           part(sum["optim_s"]), part(std::max(0.0, w - sum["data_s"] - sum["model_s"] - sum["optim_s"])),
           plain(sum["generate_s"]), plain(sum["score_s"]), plain(sum["update_s"])});
    if (w > 0)
      bars.push_back({r.label, {{"data", sum["data_s"]}, {"model", sum["model_s"]}, {"optimizer", sum["optim_s"]},
                                {"other", std::max(0.0, w - sum["data_s"] - sum["model_s"] - sum["optim_s"])}}});
    else if (sum["generate_s"] + sum["update_s"] > 0)
      bars.push_back({r.label, {{"ppo generate", sum["generate_s"]}, {"ppo score", sum["score_s"]},
                                {"ppo update", sum["update_s"]}}});
  }
  return "<h2>Time split</h2>\n<p>Sums over the logged training records: waiting for batches (data), "
         "forward and backward (model), clipping and AdamW (optimizer); PPO: sampling, scoring, updates.</p>\n" +
         (bars.empty() ? std::string() : svg_stacked_bars("where the time went", bars)) + t.str();
}

std::string passkey_table(const nlohmann::json& j) {
  std::set<double> depths;
  std::map<int64_t, std::map<double, std::pair<int, int>>> cells;  // length -> depth -> (correct, trials)
  for (const auto& c : j.value("cases", nlohmann::json::array())) {
    const int64_t len = c.value("length", int64_t{0});
    const double depth = c.value("depth", 0.0);
    depths.insert(depth);
    auto& cell = cells[len][depth];
    cell.first += c.value("correct", false) ? 1 : 0;
    cell.second += 1;
  }
  std::vector<std::string> header = {"length (tokens)"};
  for (double d : depths) header.push_back(fmt::format("depth {:.2f}", d));
  HtmlTable t(header);
  for (const auto& [len, row] : cells) {
    std::vector<std::string> cellv = {std::to_string(len)};
    for (double d : depths) {
      const auto it = row.find(d);
      cellv.push_back(it == row.end() ? "-" : fmt::format("{}/{}", it->second.first, it->second.second));
    }
    t.row(cellv);
  }
  int correct = 0, trials = 0;
  for (const auto& [len, row] : cells)
    for (const auto& [d, c] : row) correct += c.first, trials += c.second;
  return fmt::format("<h3>Passkey retrieval (correct / trials by prompt length and key depth; overall {}/{})</h3>\n",
                     correct, trials) + t.str();
}

std::string ppl_table(const nlohmann::json& j) {
  // --compare writes with_memory and no_memory; otherwise one result at the top level.
  std::vector<std::pair<std::string, nlohmann::json>> cols;
  if (j.contains("with_memory")) cols.emplace_back("with memory", j["with_memory"]);
  if (j.contains("no_memory") && j["no_memory"].is_object()) cols.emplace_back("no memory", j["no_memory"]);
  if (cols.empty()) cols.emplace_back(j.value("no_memory", false) ? "no memory" : "with memory", j);
  std::vector<std::string> header = {"position"};
  for (const auto& [name, r] : cols) header.push_back("ppl " + name);
  header.push_back("targets");
  HtmlTable t(header);
  const nlohmann::json& buckets = cols[0].second.value("buckets", nlohmann::json::array());
  for (size_t b = 0; b < buckets.size(); ++b) {
    if (buckets[b].value("targets", int64_t{0}) == 0) continue;
    std::vector<std::string> row = {buckets[b].value("range", "?")};
    for (const auto& [name, r] : cols) {
      const auto& rb = r.value("buckets", nlohmann::json::array());
      row.push_back(b < rb.size() && rb[b]["ppl"].is_number() ? report_num(rb[b]["ppl"].get<double>()) : "-");
    }
    row.push_back(std::to_string(buckets[b].value("targets", int64_t{0})));
    t.row(row);
  }
  std::vector<std::string> all = {"all"};
  for (const auto& [name, r] : cols) all.push_back(r["ppl"].is_number() ? report_num(r["ppl"].get<double>()) : "-");
  all.push_back(std::to_string(cols[0].second.value("targets", int64_t{0})));
  t.row(all);
  return "<h3>Perplexity by position (" + html_escape(j.value("text", "")) + ")</h3>\n" + t.str();
}

std::string reward_table(const nlohmann::json& j) {
  HtmlTable t({"data", "pairs", "accuracy", "loss", "mean margin"});
  auto n = [&](const char* k) { return j.contains(k) && j[k].is_number() ? report_num(j[k].get<double>()) : "-"; };
  t.row({j.value("data", ""), n("pairs"), n("accuracy"), n("loss"), n("mean_margin")});
  return "<h3>Reward model accuracy</h3>\n" + t.str();
}

std::string evaluations_section(const std::vector<RunRecords>& runs) {
  std::string s;
  for (const auto& r : runs) {
    if (!r.passkey && !r.ppl && !r.reward) continue;
    s += "<h3>" + html_escape(r.label) + "</h3>\n";
    if (r.passkey) s += passkey_table(*r.passkey);
    if (r.ppl) s += ppl_table(*r.ppl);
    if (r.reward) s += reward_table(*r.reward);
  }
  return s.empty() ? "" : "<h2>Evaluations</h2>\n" + s;
}

std::string checkpoints_section(const std::vector<RunRecords>& runs) {
  HtmlTable t({"run", "step", "directory", "size", "latest"});
  for (const auto& r : runs)
    for (const auto& c : r.checkpoints)
      t.row({r.label, std::to_string(c.step), c.path, fmt::format("{:.1f} MiB", static_cast<double>(c.bytes) / 1048576),
             c.latest ? "yes" : ""});
  return "<h2>Checkpoints</h2>\n" + (t.empty() ? std::string("<p>none</p>\n") : t.str());
}

std::string config_section(const std::vector<RunRecords>& runs) {
  std::string s = "<h2>Resolved config</h2>\n";
  for (const auto& r : runs)
    s += "<h3>" + html_escape(r.label) + "/config.yaml</h3>\n<pre>" +
         (r.config_yaml.empty() ? std::string("(no config.yaml)") : html_escape(r.config_yaml)) + "</pre>\n";
  return s;
}

}  // namespace

std::string render_report(const std::vector<RunRecords>& runs) {
  std::string title = "infini report:";
  for (const auto& r : runs) title += " " + r.label;
  std::string s = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n<title>" +
                  html_escape(title) + "</title>\n<style>\n" + kReportStyle + "</style>\n</head>\n<body>\n<h1>" +
                  html_escape(title) + "</h1>\n";
  s += summary_section(runs);
  s += curves_section(runs);
  s += time_split_section(runs);
  s += evaluations_section(runs);
  s += checkpoints_section(runs);
  s += config_section(runs);
  return s + "</body>\n</html>\n";
}

}  // namespace infini
