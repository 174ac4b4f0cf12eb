// Inline SVG line charts (see svg_chart.h).
#include "train/report/svg_chart.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include <fmt/format.h>

#include "train/report/html.h"

namespace infini {
namespace {

struct Range {
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

struct Frame {
  double left = 64, top = 30, width = 0, height = 0, xmin = 0, xmax = 1, ymin = 0, ymax = 1;
  double px(double x) const { return left + (x - xmin) / (xmax - xmin) * width; }
  double py(double y) const { return top + height - (y - ymin) / (ymax - ymin) * height; }
};

// Grid lines, tick labels and axis labels.
std::string chart_axes(const ChartSpec& spec, const Frame& f, const std::vector<double>& xt,
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

std::string chart_legend(const Frame& f, const std::vector<ChartSeries>& series) {
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
  Range xr, yr;
  for (const auto& s : series)
    for (const auto& [x, y] : s.points)
      if (std::isfinite(x) && std::isfinite(y)) {
        xr.add(x);
        yr.add(y);
      }
  if (!std::isfinite(xr.lo)) xr = {0, 1}, yr = {0, 1};
  Frame f;
  if (series.size() > 1) f.top = 48;  // room for the legend under the title
  f.width = spec.width - f.left - 16;
  f.height = spec.height - f.top - 44;
  f.xmin = xr.lo, f.xmax = xr.hi, f.ymin = yr.lo, f.ymax = yr.hi;
  const auto xt = nice_ticks(f.xmin, f.xmax, 6), yt = nice_ticks(f.ymin, f.ymax, 5);
  std::string s = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" viewBox=\"0 0 {} {}\" class=\"chart\" "
      "data-left=\"{}\" data-top=\"{}\" data-width=\"{}\" data-height=\"{}\" data-xmin=\"{:.17g}\" "
      "data-xmax=\"{:.17g}\" data-ymin=\"{:.17g}\" data-ymax=\"{:.17g}\">\n",
      spec.width, spec.height, spec.width, spec.height, f.left, f.top, f.width, f.height, f.xmin, f.xmax, f.ymin,
      f.ymax);
  s += svg_text(spec.width / 2.0, 18, spec.title, "middle", " class=\"title\"");
  s += chart_axes(spec, f, xt, yt);
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

}  // namespace infini
