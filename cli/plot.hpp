#pragma once

// Pieces of the SVG line plots the commands write (signal-quality, evaluate), and writing text files.

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace sieve::cli {

// `s` with &, <, > and " escaped for XML text and attributes.
std::string xml_escape(const std::string& s);
// A marker of shape `series` % 4 (circle, square, triangle, diamond) centred at (x, y).
std::string marker(size_t series, double x, double y, const char* color);
// One line of a plot: a value per x position; dashed for a baseline.
struct PlotSeries {
  std::string name;
  std::vector<double> values;
  bool dashed = false;
};
// Lines over the x positions 0..n-1 with a legend on the right. `x_labels`: one per position; all are
// written (slanted) when there are at most 12 positions, else six evenly spaced ones.
struct LinePlot {
  std::string x_title, y_title;
  std::vector<std::string> x_labels;
  std::vector<PlotSeries> series;
  std::optional<std::pair<double, double>> y_range;  // widened to hold every value
};
std::string line_plot_svg(const LinePlot& plot);
// Writes `text` to `path`; throws sieve::Error naming the file when it cannot.
void write_text(const std::string& path, const std::string& text);

}  // namespace sieve::cli
