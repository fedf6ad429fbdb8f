#include "plot.hpp"

#include <algorithm>
#include <fstream>
#include <iomanip>
#include <sstream>

#include "sieve/error.hpp"

namespace sieve::cli {

std::string xml_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
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

std::string line_plot_svg(const LinePlot& plot) {
  static const char* colors[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                 "#8c564b", "#e377c2", "#bcbd22", "#17becf"};
  double low = plot.y_range ? plot.y_range->first : 0.0, high = plot.y_range ? plot.y_range->second : 0.0;
  bool first = !plot.y_range;
  size_t points = plot.x_labels.size();
  for (const PlotSeries& line : plot.series) {
    points = std::max(points, line.values.size());
    for (double v : line.values) {
      low = first ? v : std::min(low, v);
      high = first ? v : std::max(high, v);
      first = false;
    }
  }
  if (high <= low) high = low + 1.0;
  const bool all_labels = points <= 12;
  const double left = 70, top = 30, plot_w = 520, plot_h = 320, legend_w = 240;
  const double bottom = all_labels ? 90 : 50, width = left + plot_w + 20 + legend_w,
               height = top + plot_h + bottom;
  auto px = [&](size_t i) {
    return left + (points > 1 ? static_cast<double>(i) / static_cast<double>(points - 1) : 0.5) * plot_w;
  };
  auto py = [&](double v) { return top + (high - v) / (high - low) * plot_h; };
  std::ostringstream s;
  s << std::fixed << std::setprecision(1);
  s << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width << "\" height=\"" << height
    << "\" viewBox=\"0 0 " << width << " " << height << "\" font-family=\"sans-serif\" font-size=\"11\">\n"
    << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  for (int t = 0; t <= 5; ++t) {
    const double v = low + (high - low) * t / 5.0, y = py(v);
    s << "<line x1=\"" << left << "\" y1=\"" << y << "\" x2=\"" << left + plot_w << "\" y2=\"" << y
      << "\" stroke=\"#dddddd\"/>\n<text x=\"" << left - 6 << "\" y=\"" << y + 4 << "\" text-anchor=\"end\">"
      << std::setprecision(3) << v << std::setprecision(1) << "</text>\n";
  }
  std::vector<size_t> ticks;
  for (size_t i = 0; i < plot.x_labels.size(); ++i) {
    if (all_labels) ticks.push_back(i);
  }
  for (size_t k = 0; !all_labels && k <= 5; ++k) ticks.push_back(k * (plot.x_labels.size() - 1) / 5);
  for (size_t i : ticks) {
    const double x = px(i), y = top + plot_h + 16;
    s << "<text x=\"" << x << "\" y=\"" << y << "\" text-anchor=\"" << (all_labels ? "end" : "middle")
      << "\"";
    if (all_labels) s << " transform=\"rotate(-30 " << x << " " << y << ")\"";
    s << ">" << xml_escape(plot.x_labels[i]) << "</text>\n";
  }
  s << "<rect x=\"" << left << "\" y=\"" << top << "\" width=\"" << plot_w << "\" height=\"" << plot_h
    << "\" fill=\"none\" stroke=\"black\"/>\n"
    << "<text x=\"" << left + plot_w / 2 << "\" y=\"" << height - 8
    << "\" text-anchor=\"middle\" font-size=\"12\">" << xml_escape(plot.x_title) << "</text>\n"
    << "<text x=\"18\" y=\"" << top + plot_h / 2
    << "\" text-anchor=\"middle\" font-size=\"12\" transform=\"rotate(-90 18 " << top + plot_h / 2 << ")\">"
    << xml_escape(plot.y_title) << "</text>\n";
  for (size_t k = 0; k < plot.series.size(); ++k) {
    const PlotSeries& line = plot.series[k];
    const char* color = line.dashed ? "#7f7f7f" : colors[k % 9];
    const char* dash = line.dashed ? " stroke-dasharray=\"6 4\"" : "";
    s << "<polyline data-series=\"" << xml_escape(line.name) << "\" fill=\"none\" stroke=\"" << color
      << "\" stroke-width=\"2\"" << dash << " points=\"";
    for (size_t i = 0; i < line.values.size(); ++i)
      s << (i == 0 ? "" : " ") << px(i) << "," << py(line.values[i]);
    s << "\"/>\n";
    if (all_labels) {
      for (size_t i = 0; i < line.values.size(); ++i) s << marker(k, px(i), py(line.values[i]), color);
    }
    const double ly = top + 10 + 18 * static_cast<double>(k), lx = left + plot_w + 20;
    s << "<line x1=\"" << lx << "\" y1=\"" << ly << "\" x2=\"" << lx + 22 << "\" y2=\"" << ly
      << "\" stroke=\"" << color << "\" stroke-width=\"2\"" << dash << "/>\n"
      << marker(k, lx + 11, ly, color) << "<text x=\"" << lx + 28 << "\" y=\"" << ly + 4 << "\">"
      << xml_escape(line.name) << "</text>\n";
  }
  s << "</svg>\n";
  return s.str();
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  if (!out) throw Error(path + ": cannot write file");
}

}  // namespace sieve::cli
