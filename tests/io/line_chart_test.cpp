// The line chart's legend: entries wrap into rows that fit the picture, and the plot starts below them.

#include "sieve/io/line_chart.hpp"

#include <gtest/gtest.h>

#include <string>

namespace sieve {
namespace {

// The number in ` name="…"` of an SVG element (std::regex would do, but GCC 12 warns about its
// std::function internals under the sanitizers' -O1).
double attribute(const std::string& element, const std::string& name) {
  const std::string key = " " + name + "=\"";
  const size_t at = element.find(key);
  EXPECT_NE(at, std::string::npos) << name << " in " << element;
  if (at == std::string::npos) return 0.0;
  return std::stod(element.substr(at + key.size()));
}

TEST(LineChart, LegendWrapsIntoRowsInsideThePicture) {
  // Thirteen series, as a degradation plot of six methods in two orders and the random order has.
  LineChart chart{"x", "y", 0, 1, {ChartPanel{}}};
  for (int k = 0; k < 13; ++k)
    chart.panels[0].series.push_back(
        {"pattern.attribution (morf) " + std::to_string(k), {0.1, 0.5}, k == 12});
  const std::string svg = line_chart_svg(chart);
  const size_t root = svg.find("<svg");
  const double width = attribute(svg.substr(root, svg.find('>', root) - root), "width");
  double lowest_legend = 0;
  for (int k = 0; k < 13; ++k) {
    const std::string name = "pattern.attribution (morf) " + std::to_string(k);
    const size_t end = svg.find(">" + name + "</text>");
    ASSERT_NE(end, std::string::npos) << name;
    const std::string text = svg.substr(svg.rfind("<text", end), end - svg.rfind("<text", end));
    // The writer reserves 6.2 px per character of a name; each entry ends inside the picture.
    EXPECT_LE(attribute(text, "x") + 6.2 * static_cast<double>(name.size()), width) << name;
    lowest_legend = std::max(lowest_legend, attribute(text, "y"));
  }
  EXPECT_GT(lowest_legend, 18.0);  // more than one row
  // The plot frame (the rect after the legend, white fill aside) starts below the last legend row.
  const size_t frame = svg.find("<rect", svg.find("<g"));
  ASSERT_NE(frame, std::string::npos);
  EXPECT_GT(attribute(svg.substr(frame, svg.find('>', frame) - frame), "y"), lowest_legend + 12);
}

}  // namespace
}  // namespace sieve
