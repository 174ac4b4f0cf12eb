// `infini report` on a tiny run: the page is well-formed HTML (parsed here: every element closed
// in order, attributes quoted, entities only), self-contained (no script, no external resource),
// its SVG curves hold the logged points (each polyline vertex mapped back through the chart's
// axes equals a metrics.jsonl value), the evaluation tables and escaped file contents are there,
// several runs overlay, and bad run directories give one error line naming the file.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "support/run_util.h"
#include "support/tiny_data.h"
#include "train/report/html.h"
#include "train/report/svg_chart.h"
#include "train/run/metrics_log.h"

namespace test_report {

namespace fs = std::filesystem;
using namespace infini;
using namespace infini::test;

struct Element {
  std::string name;
  std::map<std::string, std::string> attrs;
  std::string text;  // the text directly inside (for <text>, <td>, <h3>)
};

// A strict reader of the HTML the report writes: fails the test on an unclosed or misnested
// element, an unquoted attribute, a raw '<' or a bare '&' in text. Returns the elements in order.
std::vector<Element> parse_html(const std::string& html) {
  static const std::set<std::string> kVoid = {"meta", "br", "hr", "img", "input", "link"};
  std::vector<Element> out;
  std::vector<std::pair<std::string, size_t>> open;  // name, index in out
  const std::regex entity("^&(amp|lt|gt|quot|#39|#160);");
  size_t i = 0;
  auto check_text = [&](const std::string& t, size_t at) {
    for (size_t k = 0; k < t.size(); ++k)
      if (t[k] == '&') {
        std::smatch m;
        const std::string rest = t.substr(k, 8);
        EXPECT_TRUE(std::regex_search(rest, m, entity)) << "bare & at byte " << at + k << ": " << rest;
      }
  };
  while (i < html.size()) {
    const size_t lt = html.find('<', i);
    const std::string text = html.substr(i, lt == std::string::npos ? std::string::npos : lt - i);
    check_text(text, i);
    if (!open.empty()) out[open.back().second].text += text;
    if (lt == std::string::npos) break;
    if (html.compare(lt, 4, "<!--") == 0) {
      i = html.find("-->", lt) + 3;
      continue;
    }
    if (html.compare(lt, 2, "<!") == 0) {
      EXPECT_EQ(lt, 0u) << "a declaration other than the leading <!DOCTYPE html>";
      i = html.find('>', lt) + 1;
      continue;
    }
    const size_t gt = html.find('>', lt);
    if (gt == std::string::npos) {
      ADD_FAILURE() << "unterminated tag at byte " << lt;
      break;
    }
    std::string tag = html.substr(lt + 1, gt - lt - 1);
    i = gt + 1;
    if (tag[0] == '/') {
      const std::string name = tag.substr(1);
      if (open.empty() || open.back().first != name) {
        ADD_FAILURE() << "</" << name << "> at byte " << lt << " closes " << (open.empty() ? "nothing" : open.back().first);
        return out;
      }
      open.pop_back();
      continue;
    }
    const bool self_closing = tag.back() == '/';
    if (self_closing) tag.pop_back();
    Element e;
    std::istringstream ss(tag);
    ss >> e.name;
    const std::regex attr("\\s+([a-zA-Z_:][-a-zA-Z0-9_:.]*)=\"([^\"<]*)\"");
    std::string rest = tag.substr(e.name.size());
    std::smatch m;
    while (std::regex_search(rest, m, attr) && m.position(0) == 0) {
      check_text(m[2].str(), lt);
      e.attrs[m[1].str()] = m[2].str();
      rest = m.suffix();
    }
    EXPECT_TRUE(std::all_of(rest.begin(), rest.end(), ::isspace)) << "unparsed attributes in <" << tag << ">";
    out.push_back(e);
    if (e.name == "style") {  // raw text up to </style>
      const size_t end = html.find("</style>", i);
      EXPECT_EQ(html.substr(i, end - i).find('<'), std::string::npos);
      i = end;
      open.emplace_back("style", out.size() - 1);
      continue;
    }
    if (!self_closing && !kVoid.count(e.name)) open.emplace_back(e.name, out.size() - 1);
  }
  EXPECT_TRUE(open.empty()) << "unclosed <" << (open.empty() ? "" : open.back().first) << ">";
  return out;
}

// The (x, y) data points of chart `title`'s polylines (by series label), mapped back through its axes.
std::map<std::string, std::vector<std::pair<double, double>>> chart_points(const std::vector<Element>& els,
                                                                           const std::string& title) {
  std::map<std::string, std::vector<std::pair<double, double>>> out;
  for (size_t k = 0; k < els.size(); ++k) {
    if (els[k].name != "svg" || k + 1 >= els.size() || els[k + 1].text != title) continue;
    const auto& a = els[k].attrs;
    auto d = [&](const char* key) { return std::stod(a.at(key)); };
    for (size_t j = k + 1; j < els.size() && els[j].name != "svg"; ++j) {
      if (els[j].name != "polyline") continue;
      std::istringstream pts(els[j].attrs.at("points"));
      for (std::string p; pts >> p;) {
        const double px = std::stod(p.substr(0, p.find(','))), py = std::stod(p.substr(p.find(',') + 1));
        const double x = d("data-xmin") + (px - d("data-left")) / d("data-width") * (d("data-xmax") - d("data-xmin"));
        const double frac = (d("data-top") + d("data-height") - py) / d("data-height");
        const double y = a.at("data-yscale") == "log" ? d("data-ymin") * std::pow(d("data-ymax") / d("data-ymin"), frac)
                                                      : d("data-ymin") + frac * (d("data-ymax") - d("data-ymin"));
        out[els[j].attrs.at("data-series")].emplace_back(x, y);
      }
    }
    return out;
  }
  ADD_FAILURE() << "no chart titled " << title;
  return out;
}

std::map<int64_t, double> logged(const std::string& run, const std::string& kind, const std::string& key) {
  std::map<int64_t, double> out;
  for (const auto& r : read_metrics(run + "/metrics.jsonl"))
    if (r.value("kind", "") == kind && r.contains(key)) out[r["step"].get<int64_t>()] = r[key].get<double>();
  return out;
}

void expect_curve(const std::vector<std::pair<double, double>>& got, const std::map<int64_t, double>& want) {
  ASSERT_EQ(got.size(), want.size());
  double lo = 1e300, hi = -1e300;
  for (const auto& [s, v] : want) lo = std::min(lo, v), hi = std::max(hi, v);
  const double tol = std::max(hi - lo, 1e-6) * 2e-3;  // vertices are written to 0.01 px
  size_t i = 0;
  for (const auto& [step, v] : want) {
    EXPECT_NEAR(got[i].first, static_cast<double>(step), 0.05) << "point " << i;
    EXPECT_NEAR(got[i].second, v, tol) << "step " << step;
    ++i;
  }
}

// A tiny pretrain run of 6 steps with evaluations, and eval results beside it as scripts/run.sh writes them.
std::string tiny_run(const std::string& name, const std::string& extra = "") {
  TinyData d = tiny_data("trainer_data");
  const std::string run = scratch_dir(name);
  auto r = run_infini("train " + source_path("configs/tiny/pretrain.yaml") + " run.dir=" + run + " tokenizer.model=" +
                      d.tokenizer + " data.train=[" + d.shards + "] train.max_steps=6 train.log_every=1 " +
                      "train.eval_every=2 train.eval_batches=1 checkpoint.every=3 checkpoint.keep_last=0 " + extra);
  EXPECT_EQ(r.code, 0) << r.output;
  return run;
}


TEST(Report, HtmlEscapeAndNumbers) {
  EXPECT_EQ(html_escape("<a href=\"x\">'&'</a>"), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
  EXPECT_EQ(short_number(0.000123), "0.000123");
  EXPECT_EQ(short_number(2500000), "2.5M");
  EXPECT_EQ(short_number(12345), "12.3k");
}

// Positive values over orders of magnitude get a log axis; the vertices still map back to the points.
TEST(Report, WideRangesGetALogAxis) {
  const std::vector<std::pair<double, double>> pts = {{0, 1600}, {50, 90}, {100, 8.5}, {400, 2.2}};
  const std::string svg = svg_line_chart({"train/ppl", "step", "ppl"}, {{"run", pts}});
  const auto els = parse_html(svg);
  ASSERT_EQ(els.at(0).attrs.at("data-yscale"), "log");
  EXPECT_NE(svg.find("ppl (log scale)"), std::string::npos);
  const auto got = chart_points(els, "train/ppl").at("run");
  ASSERT_EQ(got.size(), pts.size());
  for (size_t i = 0; i < pts.size(); ++i) {
    EXPECT_NEAR(got[i].first, pts[i].first, 0.1);
    EXPECT_NEAR(got[i].second / pts[i].second, 1.0, 2e-3) << i;
  }
  // A narrow range stays linear.
  EXPECT_NE(svg_line_chart({"t", "step", "loss"}, {{"run", {{1, 5.0}, {2, 4.0}}}}).find("data-yscale=\"linear\""),
            std::string::npos);
}

TEST(Report, ATinyRunsPageHoldsItsCurvesTablesAndConfig) {
  const std::string run = tiny_run("report_run");
  TinyData d = tiny_data("trainer_data");
  auto r = run_infini("eval passkey --checkpoint " + run + " --lengths 256,512 --depths 0,1 --out " + run +
                      "/eval_passkey.json");
  ASSERT_EQ(r.code, 0) << r.output;
  r = run_infini("eval ppl --checkpoint " + run + " --text " + d.dir + "/corpus.txt --max-tokens 400 --compare --out " +
                 run + "/eval_ppl.json");
  ASSERT_EQ(r.code, 0) << r.output;
  std::ofstream(run + "/eval_reward.json")
      << R"({"accuracy": 0.75, "pairs": 8, "loss": 0.5, "mean_margin": 0.25, "data": "<script>x&y</script>.jsonl"})";
  r = run_infini("report " + run);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("report: " + run + "/report.html"), std::string::npos) << r.output;
  const std::string html = read_text(run + "/report.html");
  std::printf("report of a 6-step tiny run: %zu bytes\n", html.size());
  const auto els = parse_html(html);
  ASSERT_FALSE(testing::Test::HasFailure());
  // Self-contained: nothing to run, nothing to fetch.
  for (const auto& e : els) {
    EXPECT_NE(e.name, "script");
    EXPECT_NE(e.name, "link");
    EXPECT_EQ(e.attrs.count("src"), 0u) << e.name;
    EXPECT_EQ(e.attrs.count("href"), 0u) << e.name;
  }
  // The curves hold the logged points.
  expect_curve(chart_points(els, "train/loss").at(run), logged(run, "train", "loss"));
  expect_curve(chart_points(els, "train/lr").at(run), logged(run, "train", "lr"));
  expect_curve(chart_points(els, "eval/val_loss").at(run), logged(run, "eval", "val_loss"));
  // Axes labelled: each chart has an x label "step" and its key as the y label.
  size_t step_labels = 0;
  for (const auto& e : els)
    if (e.name == "text" && e.attrs.count("class") && e.attrs.at("class") == "axis" && e.text == "step") ++step_labels;
  EXPECT_GT(step_labels, 5u);
  // Evaluations, checkpoints, time split, config; file contents escaped.
  for (const char* s : {"Passkey retrieval", "depth 1.00", "Perplexity by position", "ppl with memory",
                        "ppl no memory", "Reward model accuracy", "&lt;script&gt;x&amp;y&lt;/script&gt;.jsonl",
                        "step_00000003", "step_00000006", "Time split", "optimizer", "stage: pretrain",
                        "max_steps: 6"})
    EXPECT_NE(html.find(s), std::string::npos) << s;
  EXPECT_EQ(html.find("<script>"), std::string::npos);
}

TEST(Report, SeveralRunsOverlayTheirCurves) {
  const std::string a = tiny_run("report_a"), b = tiny_run("report_b", "optim.lr=0.001");
  const std::string out = scratch_dir("report_ab") + "/ab.html";
  auto r = run_infini("report " + a + " " + b + " --out " + out);
  ASSERT_EQ(r.code, 0) << r.output;
  const auto els = parse_html(read_text(out));
  const auto curves = chart_points(els, "train/loss");
  ASSERT_EQ(curves.size(), 2u);
  expect_curve(curves.at(a), logged(a, "train", "loss"));
  expect_curve(curves.at(b), logged(b, "train", "loss"));
  size_t legend = 0;
  for (const auto& e : els)
    if (e.name == "text" && e.attrs.count("class") && e.attrs.at("class") == "legend") ++legend;
  EXPECT_GT(legend, 2u);
}

TEST(Report, BadRunDirectoriesAreOneErrorLine) {
  const std::string dir = scratch_dir("report_bad");
  auto one_error = [](const infini::test::RunResult& r, const std::string& what) {
    EXPECT_EQ(r.code, 1) << r.output;
    EXPECT_EQ(r.output.rfind("error: ", 0), 0u) << r.output;
    EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
    EXPECT_NE(r.output.find(what), std::string::npos) << r.output;
  };
  one_error(run_infini("report " + dir + "/nothing"), dir + "/nothing: not a directory");
  one_error(run_infini("report " + dir), dir + "/metrics.jsonl: not found");
  std::ofstream(dir + "/metrics.jsonl") << "{\"kind\": \"train\", \"step\": 1, \"loss\": 2}\n";
  std::ofstream(dir + "/eval_ppl.json") << "{ not json";
  one_error(run_infini("report " + dir), dir + "/eval_ppl.json: expected a JSON object");
  EXPECT_EQ(run_infini("report").code, 2);
}

}  // namespace test_report
