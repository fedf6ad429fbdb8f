#include "sieve/visualize.hpp"

#include <algorithm>
#include <cmath>

#include "sieve/blur.hpp"
#include "sieve/error.hpp"

namespace sieve {

Visualization parse_visualization(const std::string& name) {
  if (name == "heatmap") return Visualization::heatmap;
  if (name == "graymap") return Visualization::graymap;
  if (name == "projection") return Visualization::projection;
  if (name == "scale_input") return Visualization::scale_input;
  if (name == "blend") return Visualization::blend;
  throw Error("unknown visualization '" + name + "' (heatmap, graymap, projection, scale_input, blend)");
}
namespace {

struct Planes {
  int64_t channels, height, width;
};

Planes planes_of(const Tensor& e) {
  const Shape& s = e.shape();
  if (s.size() == 4 && s[0] == 1) return {s[1], s[2], s[3]};
  if (s.size() == 3) return {s[0], s[1], s[2]};
  throw Error("visualization needs an image-shaped explanation [C, H, W], got " + to_string(s));
}

Image blank(const Planes& p, int channels) {
  Image img;
  img.width = static_cast<int>(p.width);
  img.height = static_cast<int>(p.height);
  img.channels = channels;
  img.pixels.assign(static_cast<size_t>(p.width * p.height * channels), 0);
  return img;
}

uint8_t to_byte(double v) {
  return static_cast<uint8_t>(std::lround(std::clamp(v, 0.0, 1.0) * 255.0));
}

// Σ_c e (signed) or Σ_c |e| per pixel.
std::vector<double> channel_sum(const Tensor& e, const Planes& p, bool absolute) {
  std::vector<double> t(static_cast<size_t>(p.height * p.width), 0.0);
  const int64_t hw = p.height * p.width;
  for (int64_t c = 0; c < p.channels; ++c) {
    for (int64_t i = 0; i < hw; ++i) {
      const double v = e[c * hw + i];
      t[static_cast<size_t>(i)] += absolute ? std::abs(v) : v;
    }
  }
  return t;
}

double max_abs(const std::vector<double>& t) {
  double m = 0.0;
  for (double v : t) m = std::max(m, std::abs(v));
  return m;
}

// Matplotlib's "jet" colormap, piecewise linear.
void jet(double t, double rgb[3]) {
  auto ramp = [](double x) { return std::clamp(1.5 - std::abs(4.0 * x), 0.0, 1.0); };
  rgb[0] = ramp(t - 0.75);
  rgb[1] = ramp(t - 0.5);
  rgb[2] = ramp(t - 0.25);
}

// The input as RGB doubles in [0, 1], resized by nearest neighbour if its size differs.
std::vector<double> input_rgb(const Image& input, const Planes& p) {
  std::vector<double> rgb(static_cast<size_t>(p.height * p.width * 3));
  for (int64_t y = 0; y < p.height; ++y) {
    for (int64_t x = 0; x < p.width; ++x) {
      const int64_t sy = y * input.height / p.height, sx = x * input.width / p.width;
      for (int c = 0; c < 3; ++c) {
        const int ic = input.channels == 1 ? 0 : c;
        rgb[static_cast<size_t>((y * p.width + x) * 3 + c)] =
            input.pixels[static_cast<size_t>((sy * input.width + sx) * input.channels + ic)] / 255.0;
      }
    }
  }
  return rgb;
}

Image to_rgb(const Image& img) {
  if (img.channels == 3) return img;
  Image out = img;
  out.channels = 3;
  out.pixels.resize(static_cast<size_t>(img.width * img.height * 3));
  for (size_t i = static_cast<size_t>(img.width * img.height); i-- > 0;) {
    const uint8_t v = img.pixels[i];
    out.pixels[3 * i] = out.pixels[3 * i + 1] = out.pixels[3 * i + 2] = v;
  }
  return out;
}

// Nearest-neighbour enlargement by the smallest integer factor reaching min_height.
Image enlarged(const Image& img, int min_height) {
  const int f = img.height >= min_height || img.height == 0 ? 1 : (min_height + img.height - 1) / img.height;
  if (f == 1) return img;
  Image out{img.width * f, img.height * f, img.channels, {}};
  out.pixels.resize(static_cast<size_t>(out.width * out.height * out.channels));
  for (int y = 0; y < out.height; ++y) {
    for (int x = 0; x < out.width; ++x) {
      for (int c = 0; c < img.channels; ++c) {
        out.pixels[static_cast<size_t>((y * out.width + x) * out.channels + c)] =
            img.pixels[static_cast<size_t>(((y / f) * img.width + x / f) * img.channels + c)];
      }
    }
  }
  return out;
}

}  // namespace

Image heatmap(const Tensor& explanation) {
  const Planes p = planes_of(explanation);
  const std::vector<double> t = channel_sum(explanation, p, false);
  const double m = max_abs(t);
  Image img = blank(p, 3);
  for (size_t i = 0; i < t.size(); ++i) {
    const double v = m > 0.0 ? t[i] / m : 0.0;  // in [-1, 1]
    // White at 0; towards red for positive, blue for negative.
    const double r = v >= 0 ? 1.0 : 1.0 + v, b = v <= 0 ? 1.0 : 1.0 - v, g = 1.0 - std::abs(v);
    img.pixels[3 * i] = to_byte(r);
    img.pixels[3 * i + 1] = to_byte(g);
    img.pixels[3 * i + 2] = to_byte(b);
  }
  return img;
}

Image graymap(const Tensor& explanation) {
  const Planes p = planes_of(explanation);
  const std::vector<double> t = channel_sum(explanation, p, true);
  const double m = max_abs(t);
  Image img = blank(p, 1);
  for (size_t i = 0; i < t.size(); ++i) img.pixels[i] = to_byte(m > 0.0 ? t[i] / m : 0.0);
  return img;
}

Image projection(const Tensor& explanation) {
  const Planes p = planes_of(explanation);
  if (p.channels != 1 && p.channels != 3)
    throw Error("projection needs 1 or 3 channels, got " + std::to_string(p.channels));
  double m = 0.0;
  for (float v : explanation.values()) m = std::max(m, static_cast<double>(std::abs(v)));
  Image img = blank(p, static_cast<int>(p.channels));
  const int64_t hw = p.height * p.width;
  for (int64_t c = 0; c < p.channels; ++c) {
    for (int64_t i = 0; i < hw; ++i) {
      const double v = m > 0.0 ? explanation[c * hw + i] / (2.0 * m) + 0.5 : 0.5;
      img.pixels[static_cast<size_t>(i * p.channels + c)] = to_byte(v);
    }
  }
  return img;
}

Image scale_input(const Tensor& explanation, const Image& input) {
  const Planes p = planes_of(explanation);
  const std::vector<double> t = channel_sum(explanation, p, true);
  const double m = max_abs(t);
  const std::vector<double> rgb = input_rgb(input, p);
  Image img = blank(p, 3);
  for (size_t i = 0; i < t.size(); ++i) {
    const double s = m > 0.0 ? t[i] / m : 0.0;
    for (size_t c = 0; c < 3; ++c) img.pixels[3 * i + c] = to_byte(rgb[3 * i + c] * s);
  }
  return img;
}

Image blend(const Tensor& explanation, const Image& input) {
  const Planes p = planes_of(explanation);
  std::vector<double> t = channel_sum(explanation, p, true);
  gaussian_blur(t, {p.height, p.width}, {true, true}, 3.0, BlurEdges::repeat);
  const auto [lo, hi] = std::minmax_element(t.begin(), t.end());
  const double low = *lo, range = *hi - *lo;
  const std::vector<double> rgb = input_rgb(input, p);
  Image img = blank(p, 3);
  for (size_t i = 0; i < t.size(); ++i) {
    const double v = range > 0.0 ? (t[i] - low) / range : 0.0;
    double color[3];
    jet(v, color);
    for (size_t c = 0; c < 3; ++c) img.pixels[3 * i + c] = to_byte((1.0 - v) * rgb[3 * i + c] + v * color[c]);
  }
  return img;
}

Image visualize(Visualization kind, const Tensor& explanation, const Image& input) {
  switch (kind) {
    case Visualization::heatmap:
      return heatmap(explanation);
    case Visualization::graymap:
      return graymap(explanation);
    case Visualization::projection:
      return projection(explanation);
    case Visualization::scale_input:
      return scale_input(explanation, input);
    case Visualization::blend:
      return blend(explanation, input);
  }
  throw Error("unknown visualization");
}

Image input_image(const Tensor& input) {
  const Planes p = planes_of(input);
  if (p.channels != 1 && p.channels != 3)
    throw Error("an input image needs 1 or 3 channels, got " + std::to_string(p.channels));
  const auto [lo, hi] = std::minmax_element(input.data(), input.data() + input.size());
  const double low = *lo, range = static_cast<double>(*hi) - *lo;
  Image img = blank(p, static_cast<int>(p.channels));
  const int64_t hw = p.height * p.width;
  for (int64_t c = 0; c < p.channels; ++c) {
    for (int64_t i = 0; i < hw; ++i) {
      img.pixels[static_cast<size_t>(i * p.channels + c)] =
          to_byte(range > 0 ? (input[c * hw + i] - low) / range : 0.0);
    }
  }
  return img;
}

Image grid(const std::vector<std::vector<Image>>& cells, int gap, int min_cell) {
  std::vector<std::vector<Image>> rows;
  for (const auto& row : cells) {
    rows.emplace_back();
    for (const Image& cell : row) rows.back().push_back(enlarged(to_rgb(cell), min_cell));
  }
  int width = 0, height = 0;
  std::vector<int> row_heights;
  for (const auto& row : rows) {
    int w = 0, h = 0;
    for (const Image& cell : row) {
      w += cell.width + gap;
      h = std::max(h, cell.height);
    }
    width = std::max(width, w + gap);
    row_heights.push_back(h);
    height += h + gap;
  }
  height += gap;
  Image out;
  out.width = width;
  out.height = height;
  out.channels = 3;
  out.pixels.assign(static_cast<size_t>(width * height * 3), 255);
  int y0 = gap;
  for (size_t r = 0; r < rows.size(); ++r) {
    int x0 = gap;
    for (const Image& cell : rows[r]) {
      const Image& rgb = cell;
      for (int y = 0; y < rgb.height; ++y) {
        std::copy_n(rgb.pixels.begin() + static_cast<std::ptrdiff_t>(y * rgb.width * 3), rgb.width * 3,
                    out.pixels.begin() + static_cast<std::ptrdiff_t>(((y0 + y) * width + x0) * 3));
      }
      x0 += rgb.width + gap;
    }
    y0 += row_heights[r] + gap;
  }
  return out;
}

}  // namespace sieve
