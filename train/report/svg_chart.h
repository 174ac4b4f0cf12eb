// Line charts as inline SVG for `infini report`: one or more series of (x, y) points, axes with
// "nice" ticks and labels, a title and, for several series, a legend. The plot area and the data
// range are written as attributes of the <svg> (data-left, data-top, data-width, data-height,
// data-xmin, data-xmax, data-ymin, data-ymax, data-yscale), so a reader can map every polyline
// vertex back to its data point. The y axis is logarithmic (data-yscale="log") for positive values
// spanning two or more orders of magnitude, else linear. Not a plotting library: no interaction.
#pragma once
#include <string>
#include <utility>
#include <vector>

namespace infini {

struct ChartSeries {
  std::string label;
  std::vector<std::pair<double, double>> points;  // (x, y); non-finite points are left out
};

struct ChartSpec {
  std::string title, x_label, y_label;
  int width = 560, height = 300;
  bool log_allowed = true;  // false: always a linear y axis (counters such as tokens seen)
};

std::string svg_line_chart(const ChartSpec& spec, const std::vector<ChartSeries>& series);

// Horizontal bars, each split into its parts (shares of the row's total, labelled with their
// percentage where they are wide enough), with a legend of the part names: the time split.
struct BarRow {
  std::string label;
  std::vector<std::pair<std::string, double>> parts;  // (name, amount)
};
std::string svg_stacked_bars(const std::string& title, const std::vector<BarRow>& rows, int width = 760);

// The colour of series i (the same in every chart, so a run keeps its colour on the page).
const char* series_colour(size_t i);

// "1.25", "3e-05", "1.2M": a short label for an axis tick or a table cell.
std::string short_number(double v);

}  // namespace infini
