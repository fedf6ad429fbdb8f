#pragma once

// Line charts as SVG, for the measurements sieve reports (ρ(S) per layer, degradation curves): one or
// more panels side by side, each with several series, a shared legend above them.

#include <string>
#include <vector>

namespace sieve {

struct ChartSeries {
  std::string name;
  std::vector<double> y;  // one value per x position; NaN leaves a gap in the markers, the line goes on
  bool dashed = false;    // a baseline to compare with, such as a random order
};

struct ChartPanel {
  std::string title;
  std::string data_attribute;         // written as data-panel="…" on the panel's group; empty: none
  std::vector<std::string> x_labels;  // one per x position, drawn rotated below the axis; empty: numbers
  std::vector<ChartSeries> series;
};

struct LineChart {
  std::string x_title, y_title;
  double y_min = 0, y_max = 1;  // values outside are clamped to the frame
  std::vector<ChartPanel> panels;
};

// Series are told apart by color and marker shape, in the order of the first panel's series.
std::string line_chart_svg(const LineChart& chart);

// `text` with the characters XML gives meaning (& < > ") escaped.
std::string xml_escape(const std::string& text);

}  // namespace sieve
