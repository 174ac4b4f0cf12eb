// Inline SVG line charts (see svg_chart.h).
#include "train/report/svg_chart.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include <fmt/format.h>

#include "train/report/html.h"

namespace infini {
namespace {

struct ChartRange {
  double lo = std::numeric_limits<double>::infinity(), hi = -std::numeric_limits<double>::infinity();
  void add(double v) {
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
};

// Ticks at 1, 2 or 5 x 10^k covering [lo, hi] with about `target` intervals; the range is widened
// to whole ticks.
std::vector<double> nice_ticks(double& lo, double& hi, int target) {
  if (!(hi > lo)) {
    const double pad = lo == 0 ? 1.0 : std::fabs(lo) * 0.1;
    lo -= pad;
    hi += pad;
  }
  const double raw = (hi - lo) / target;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (m * mag >= raw) {
      step = m * mag;
      break;
    }
  lo = std::floor(lo / step + 1e-9) * step;
  hi = std::ceil(hi / step - 1e-9) * step;
  std::vector<double> ticks;
  for (double t = lo; t <= hi + step * 1e-6; t += step) ticks.push_back(std::fabs(t) < step * 1e-9 ? 0.0 : t);
  return ticks;
}

std::string svg_text(double x, double y, const std::string& text, const char* anchor, const std::string& extra = "") {
  return fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"{}\"{}>{}</text>\n", x, y, anchor, extra,
                     html_escape(text));
}

// Ticks at each power of ten in [lo, hi] (the range widened to whole decades), with 2 and 5 times
// them when the range spans fewer than three decades.
std::vector<double> log_ticks(double& lo, double& hi) {
  lo = std::pow(10.0, std::floor(std::log10(lo) + 1e-9));
  hi = std::pow(10.0, std::ceil(std::log10(hi) - 1e-9));
  const bool fine = std::log10(hi / lo) < 3;
  std::vector<double> ticks;
  for (double d = lo; d <= hi * 1.0001; d *= 10)
    for (double m : {1.0, 2.0, 5.0})
      if ((m == 1.0 || fine) && d * m <= hi * 1.0001) ticks.push_back(d * m);
  return ticks;
}

struct ChartFrame {
  double left = 64, top = 30, width = 0, height = 0, xmin = 0, xmax = 1, ymin = 0, ymax = 1;
  bool log_y = false;
  double px(double x) const { return left + (x - xmin) / (xmax - xmin) * width; }
  double py(double y) const {
    const double frac = log_y ? std::log10(y / ymin) / std::log10(ymax / ymin) : (y - ymin) / (ymax - ymin);
    return top + height - frac * height;
  }
};

// Grid lines, tick labels and axis labels.
std::string chart_axes(const ChartSpec& spec, const ChartFrame& f, const std::vector<double>& xt,
                       const std::vector<double>& yt) {
  std::string s = fmt::format("<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" class=\"plot\"/>\n",
                              f.left, f.top, f.width, f.height);
  for (double t : yt) {
    const double y = f.py(t);
    s += fmt::format("<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" class=\"grid\"/>\n", f.left, y,
                     f.left + f.width, y);
    s += svg_text(f.left - 6, y + 4, short_number(t), "end");
  }
  for (double t : xt) {
    const double x = f.px(t);
    s += fmt::format("<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" class=\"grid\"/>\n", x, f.top, x,
                     f.top + f.height);
    s += svg_text(x, f.top + f.height + 16, short_number(t), "middle");
  }
  s += svg_text(f.left + f.width / 2, f.top + f.height + 34, spec.x_label, "middle", " class=\"axis\"");
  const double yl = f.top + f.height / 2;
  s += svg_text(14, yl, spec.y_label, "middle", fmt::format(" class=\"axis\" transform=\"rotate(-90 14 {:.1f})\"", yl));
  return s;
}

std::string chart_legend(const ChartFrame& f, const std::vector<ChartSeries>& series) {
  std::string s;
  double x = f.left + 4;
  for (size_t i = 0; i < series.size(); ++i) {
    std::string label = series[i].label.size() > 40 ? "..." + series[i].label.substr(series[i].label.size() - 37)
                                                    : series[i].label;
    s += fmt::format("<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"10\" height=\"10\" fill=\"{}\"/>\n", x, f.top - 20,
                     series_colour(i));
    s += svg_text(x + 14, f.top - 11, label, "start", " class=\"legend\"");
    x += 24 + 6.5 * static_cast<double>(label.size());
  }
  return s;
}

}  // namespace

const char* series_colour(size_t i) {
  static const char* colours[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"};
  return colours[i % (sizeof colours / sizeof colours[0])];
}

std::string short_number(double v) {
  if (!std::isfinite(v)) return fmt::format("{}", v);
  const double a = std::fabs(v);
  if (a >= 1e9) return fmt::format("{:.3g}G", v / 1e9);
  if (a >= 1e6) return fmt::format("{:.3g}M", v / 1e6);
  if (a >= 1e4) return fmt::format("{:.3g}k", v / 1e3);
  return fmt::format("{:.4g}", v);
}

std::string svg_line_chart(const ChartSpec& spec, const std::vector<ChartSeries>& series) {
  ChartRange xr, yr;
  for (const auto& s : series)
    for (const auto& [x, y] : s.points)
      if (std::isfinite(x) && std::isfinite(y)) {
        xr.add(x);
        yr.add(y);
      }
  if (!std::isfinite(xr.lo)) xr = {0, 1}, yr = {0, 1};
  ChartFrame f;
  if (series.size() > 1) f.top = 48;  // room for the legend under the title
  f.width = spec.width - f.left - 16;
  f.height = spec.height - f.top - 44;
  f.xmin = xr.lo, f.xmax = xr.hi, f.ymin = yr.lo, f.ymax = yr.hi;
  // A positive series over two or more orders of magnitude (a perplexity from its start) on a log axis.
  f.log_y = spec.log_allowed && yr.lo > 0 && yr.hi / yr.lo >= 100;
  const auto xt = nice_ticks(f.xmin, f.xmax, 6), yt = f.log_y ? log_ticks(f.ymin, f.ymax) : nice_ticks(f.ymin, f.ymax, 5);
  ChartSpec labelled = spec;
  if (f.log_y) labelled.y_label += " (log scale)";
  std::string s = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" viewBox=\"0 0 {} {}\" class=\"chart\" "
      "data-left=\"{}\" data-top=\"{}\" data-width=\"{}\" data-height=\"{}\" data-xmin=\"{:.17g}\" "
      "data-xmax=\"{:.17g}\" data-ymin=\"{:.17g}\" data-ymax=\"{:.17g}\" data-yscale=\"{}\">\n",
      spec.width, spec.height, spec.width, spec.height, f.left, f.top, f.width, f.height, f.xmin, f.xmax, f.ymin,
      f.ymax, f.log_y ? "log" : "linear");
  s += svg_text(spec.width / 2.0, 18, spec.title, "middle", " class=\"title\"");
  s += chart_axes(labelled, f, xt, yt);
  for (size_t i = 0; i < series.size(); ++i) {
    std::string pts;
    size_t n = 0;
    for (const auto& [x, y] : series[i].points)
      if (std::isfinite(x) && std::isfinite(y)) {
        pts += fmt::format("{}{:.2f},{:.2f}", n++ ? " " : "", f.px(x), f.py(y));
      }
    if (n == 0) continue;
    s += fmt::format("<polyline class=\"series\" data-series=\"{}\" fill=\"none\" stroke=\"{}\" points=\"{}\"/>\n",
                     html_escape(series[i].label), series_colour(i), pts);
    if (n <= 40)  // few points (evaluations): mark each
      for (const auto& [x, y] : series[i].points)
        if (std::isfinite(x) && std::isfinite(y))
          s += fmt::format("<circle cx=\"{:.2f}\" cy=\"{:.2f}\" r=\"2.5\" fill=\"{}\"/>\n", f.px(x), f.py(y),
                           series_colour(i));
  }
  if (series.size() > 1) s += chart_legend(f, series);
  return s + "</svg>\n";
}

std::string svg_stacked_bars(const std::string& title, const std::vector<BarRow>& rows, int width) {
  const double left = 180, bar_w = width - left - 16, row_h = 26, top = 30;
  std::vector<std::string> names;  // legend order: first seen
  for (const auto& r : rows)
    for (const auto& p : r.parts)
      if (std::find(names.begin(), names.end(), p.first) == names.end()) names.push_back(p.first);
  const double height = top + row_h * static_cast<double>(rows.size()) + 34;
  std::string s = fmt::format("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{:.0f}\" "
                              "viewBox=\"0 0 {} {:.0f}\" class=\"chart\">\n",
                              width, height, width, height);
  s += svg_text(width / 2.0, 18, title, "middle", " class=\"title\"");
  for (size_t i = 0; i < rows.size(); ++i) {
    const double y = top + row_h * static_cast<double>(i);
    const std::string& label = rows[i].label;
    s += svg_text(left - 8, y + 15, label.size() > 28 ? "..." + label.substr(label.size() - 25) : label, "end");
    double total = 0;
    for (const auto& p : rows[i].parts) total += std::max(0.0, p.second);
    double x = left;
    for (const auto& [name, v] : rows[i].parts) {
      if (total <= 0 || v <= 0) continue;
      const double w = bar_w * v / total;
      const size_t c = static_cast<size_t>(std::find(names.begin(), names.end(), name) - names.begin());
      s += fmt::format("<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"20\" fill=\"{}\"/>\n", x, y, w,
                       series_colour(c));
      if (w > 40) s += svg_text(x + w / 2, y + 14, fmt::format("{:.0f}%", 100 * v / total), "middle", " fill=\"#fff\"");
      x += w;
    }
  }
  double lx = left;
  const double ly = top + row_h * static_cast<double>(rows.size()) + 10;
  for (size_t c = 0; c < names.size(); ++c) {
    s += fmt::format("<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"10\" height=\"10\" fill=\"{}\"/>\n", lx, ly,
                     series_colour(c));
    s += svg_text(lx + 14, ly + 9, names[c], "start", " class=\"legend\"");
    lx += 28 + 6.5 * static_cast<double>(names[c].size());
  }
  return s + "</svg>\n";
}

}  // namespace infini
