#include "sieve/io/line_chart.hpp"

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <sstream>

namespace sieve {

std::string xml_escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

namespace {

const char* const kColors[] = {"#7f7f7f", "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728",
                               "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22"};
constexpr size_t kColorCount = sizeof kColors / sizeof kColors[0];
constexpr double kLegendRow = 18;  // pixels between the legend's rows

// One marker shape per series, centred at (x, y).
std::string marker(size_t series, double x, double y, const char* color) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(1);
  switch (series % 4) {
    case 0:
      s << "<circle cx=\"" << x << "\" cy=\"" << y << "\" r=\"3.5\"";
      break;
    case 1:
      s << "<rect x=\"" << x - 3.2 << "\" y=\"" << y - 3.2 << "\" width=\"6.4\" height=\"6.4\"";
      break;
    case 2:
      s << "<polygon points=\"" << x << "," << y - 4.2 << " " << x + 4 << "," << y + 3 << " " << x - 4 << ","
        << y + 3 << "\"";
      break;
    default:
      s << "<polygon points=\"" << x << "," << y - 4.5 << " " << x + 4 << "," << y << " " << x << ","
        << y + 4.5 << " " << x - 4 << "," << y << "\"";
  }
  s << " fill=\"" << color << "\"/>\n";
  return s.str();
}

const char* dash(const ChartSeries& series) {
  return series.dashed ? " stroke-dasharray=\"6 4\"" : "";
}

struct Frame {
  double x0, y0, width, height, y_min, y_max;
  size_t points;
  double x(size_t i) const {
    return x0 + (static_cast<double>(i) + 0.5) * width / static_cast<double>(std::max<size_t>(points, 1));
  }
  double y(double v) const {
    const double t = (std::clamp(v, y_min, y_max) - y_min) / (y_max - y_min);
    return y0 + (1.0 - t) * height;
  }
};

// The legend's entries in rows that fit `right` (the picture's width less a margin); the number of rows
// is returned through `rows`.
std::string legend(const std::vector<ChartSeries>& series, double left, double right, size_t& rows) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(1);
  double x = left, y = 14;
  rows = series.empty() ? 0 : 1;
  for (size_t e = 0; e < series.size(); ++e) {
    const double entry = 40 + 6.2 * static_cast<double>(series[e].name.size());
    if (x > left && x + entry - 12 > right) {
      x = left;
      y += kLegendRow;
      ++rows;
    }
    const char* color = kColors[e % kColorCount];
    s << "<line x1=\"" << x << "\" y1=\"" << y << "\" x2=\"" << x + 22 << "\" y2=\"" << y << "\" stroke=\""
      << color << "\" stroke-width=\"2\"" << dash(series[e]) << "/>\n"
      << marker(e, x + 11, y, color) << "<text x=\"" << x + 28 << "\" y=\"" << y + 4 << "\">"
      << xml_escape(series[e].name) << "</text>\n";
    x += entry;
  }
  return s.str();
}

std::string axes(const LineChart& chart, const ChartPanel& panel, const Frame& f, double bottom_text_y) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(1);
  for (int t = 0; t <= 5; ++t) {
    const double v = chart.y_min + (chart.y_max - chart.y_min) * t / 5.0, y = f.y(v);
    s << "<line x1=\"" << f.x0 << "\" y1=\"" << y << "\" x2=\"" << f.x0 + f.width << "\" y2=\"" << y
      << "\" stroke=\"#dddddd\"/>\n"
      << "<text x=\"" << f.x0 - 6 << "\" y=\"" << y + 4 << "\" text-anchor=\"end\">" << std::setprecision(2)
      << v << std::setprecision(1) << "</text>\n";
  }
  s << "<rect x=\"" << f.x0 << "\" y=\"" << f.y0 << "\" width=\"" << f.width << "\" height=\"" << f.height
    << "\" fill=\"none\" stroke=\"black\"/>\n";
  // Every label when they are few; otherwise about ten, evenly spaced.
  const size_t step = panel.x_labels.empty() ? std::max<size_t>(1, f.points / 10) : 1;
  for (size_t i = 0; i < f.points; i += step) {
    const double x = f.x(i), y = f.y0 + f.height;
    s << "<line x1=\"" << x << "\" y1=\"" << y << "\" x2=\"" << x << "\" y2=\"" << y + 4
      << "\" stroke=\"black\"/>\n";
    if (panel.x_labels.empty()) {
      s << "<text x=\"" << x << "\" y=\"" << y + 16 << "\" text-anchor=\"middle\">" << i << "</text>\n";
      continue;
    }
    std::string label = panel.x_labels[i];
    if (label.size() > 48) label = "…" + label.substr(label.size() - 47);
    s << "<text x=\"" << x << "\" y=\"" << y + 14 << "\" text-anchor=\"end\" transform=\"rotate(-40 " << x
      << " " << y + 14 << ")\">" << xml_escape(label) << "</text>\n";
  }
  const double mid_x = f.x0 + f.width / 2, mid_y = f.y0 + f.height / 2;
  s << "<text x=\"" << mid_x << "\" y=\"" << bottom_text_y << "\" text-anchor=\"middle\" font-size=\"12\">"
    << xml_escape(chart.x_title) << "</text>\n"
    << "<text x=\"" << f.x0 - 44 << "\" y=\"" << mid_y << "\" text-anchor=\"middle\" font-size=\"12\" "
    << "transform=\"rotate(-90 " << f.x0 - 44 << " " << mid_y << ")\">" << xml_escape(chart.y_title)
    << "</text>\n";
  return s.str();
}

std::string series_lines(const ChartPanel& panel, const Frame& f) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(1);
  for (size_t e = 0; e < panel.series.size(); ++e) {
    const ChartSeries& series = panel.series[e];
    const char* color = kColors[e % kColorCount];
    s << "<polyline data-series=\"" << xml_escape(series.name) << "\" fill=\"none\" stroke=\"" << color
      << "\" stroke-width=\"2\"" << dash(series) << " points=\"";
    bool first = true;
    for (size_t i = 0; i < series.y.size(); ++i) {
      if (std::isnan(series.y[i])) continue;
      s << (first ? "" : " ") << f.x(i) << "," << f.y(series.y[i]);
      first = false;
    }
    s << "\"/>\n";
    // Markers only while they stay apart; long curves are lines alone.
    if (series.y.size() > 60) continue;
    for (size_t i = 0; i < series.y.size(); ++i) {
      if (!std::isnan(series.y[i])) s << marker(e, f.x(i), f.y(series.y[i]), color);
    }
  }
  return s.str();
}

}  // namespace

std::string line_chart_svg(const LineChart& chart) {
  size_t longest = 2;  // characters of the longest x label
  for (const ChartPanel& p : chart.panels) {
    for (const std::string& l : p.x_labels) longest = std::max(longest, std::min<size_t>(l.size(), 48));
  }
  const double panel_w = 460, left = 62, right = 18, plot_h = 260;
  const double width = panel_w * static_cast<double>(chart.panels.size());
  size_t legend_rows = 0;
  const std::string legend_svg =
      chart.panels.empty() ? "" : legend(chart.panels.front().series, left, width - right, legend_rows);
  // Below the legend's last row: the panel titles and the plots.
  const double top = 58 + kLegendRow * static_cast<double>(std::max<size_t>(legend_rows, 1) - 1);
  // Rotated labels (40°) take about 6.2 px per character, sin 40° ≈ 0.65 of it downwards.
  const bool rotated = std::any_of(chart.panels.begin(), chart.panels.end(),
                                   [](const ChartPanel& p) { return !p.x_labels.empty(); });
  const double bottom = rotated ? 44 + 0.65 * 6.2 * static_cast<double>(longest) : 44;
  const double plot_w = panel_w - left - right, height = top + plot_h + bottom;
  std::ostringstream s;
  s << std::fixed << std::setprecision(1);
  s << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width << "\" height=\"" << height
    << "\" viewBox=\"0 0 " << width << " " << height << "\" font-family=\"sans-serif\" font-size=\"11\">\n"
    << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  s << legend_svg;
  for (size_t p = 0; p < chart.panels.size(); ++p) {
    const ChartPanel& panel = chart.panels[p];
    size_t points = panel.x_labels.size();
    for (const ChartSeries& series : panel.series) points = std::max(points, series.y.size());
    const Frame f{
        panel_w * static_cast<double>(p) + left, top, plot_w, plot_h, chart.y_min, chart.y_max, points};
    s << "<g";
    if (!panel.data_attribute.empty()) s << " data-panel=\"" << xml_escape(panel.data_attribute) << "\"";
    s << ">\n<text x=\"" << f.x0 + plot_w / 2 << "\" y=\"" << top - 12
      << "\" text-anchor=\"middle\" font-size=\"13\">" << xml_escape(panel.title) << "</text>\n"
      << axes(chart, panel, f, height - 8) << series_lines(panel, f) << "</g>\n";
  }
  s << "</svg>\n";
  return s.str();
}

}  // namespace sieve
