#include "sieve/io/preprocess.hpp"

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>

#include "sieve/error.hpp"
#include "sieve/parse.hpp"

namespace sieve {
namespace {

float per_channel(const std::vector<float>& v, int64_t c, float fallback, const char* what,
                  int64_t channels) {
  if (v.empty()) return fallback;
  if (v.size() == 1) return v[0];
  if (static_cast<int64_t>(v.size()) != channels) {
    throw Error(std::string("preprocessing: ") + what + " has " + std::to_string(v.size()) + " values for " +
                std::to_string(channels) + " channels");
  }
  return v[static_cast<size_t>(c)];
}

float normalized(float raw, const Preprocessing& p, int64_t c, int64_t channels) {
  const float s = per_channel(p.std, c, 1.0f, "std", channels);
  if (s == 0.0f) throw Error("preprocessing: std must not be 0");
  return (raw * p.scale - per_channel(p.mean, c, 0.0f, "mean", channels)) / s;
}

}  // namespace

Tensor image_to_tensor(const Image& image, const Preprocessing& p, int64_t channels, int64_t height,
                       int64_t width, std::vector<std::string>* warnings) {
  const bool gray = p.color == ColorOrder::grayscale;
  if ((gray && channels != 1) || (!gray && channels != 3)) {
    throw Error("the model expects " + std::to_string(channels) + " channels but the color order is " +
                (gray ? "grayscale" : "RGB/BGR") + " (set --color or the profile)");
  }
  auto warn = [&](const std::string& message) {
    if (warnings != nullptr) warnings->push_back(message);
  };
  auto resized = [&](const Image& from, int w, int h) {
    return p.interpolation == Interpolation::nearest ? resize_nearest(from, w, h)
                                                     : resize_bilinear(from, w, h);
  };
  auto size = [](int w, int h) { return std::to_string(w) + "x" + std::to_string(h); };
  Image sized = image;
  if (p.resize_shorter > 0) {
    const double f = static_cast<double>(p.resize_shorter) / std::min(image.width, image.height);
    sized = resized(image, std::max(1, static_cast<int>(std::lround(image.width * f))),
                    std::max(1, static_cast<int>(std::lround(image.height * f))));
  } else if (p.resize_width > 0) {
    sized = resized(image, p.resize_width, p.resize_height);
  }
  if (p.crop_width > 0) sized = center_crop(sized, p.crop_width, p.crop_height);
  const int h = static_cast<int>(height > 0 ? height : sized.height),
            w = static_cast<int>(width > 0 ? width : sized.width);
  if (sized.width != w || sized.height != h) {
    const bool same_aspect = static_cast<int64_t>(sized.width) * h == static_cast<int64_t>(sized.height) * w;
    warn("resized from " + size(sized.width, sized.height) + " to the model's " + size(w, h) +
         (same_aspect ? "" : ", which changes its aspect ratio") + " (--resize and --crop choose how)");
    sized = resized(sized, w, h);
  }
  if (gray && sized.channels == 3) warn("RGB image converted to grayscale for the 1-channel model");
  if (!gray && sized.channels == 1) warn("grayscale image replicated to the 3 channels of the model");
  Tensor t = Tensor::uninitialized({1, channels, h, w});
  const int64_t hw = static_cast<int64_t>(h) * w;
  for (int64_t i = 0; i < hw; ++i) {
    const uint8_t* px = &sized.pixels[static_cast<size_t>(i * sized.channels)];
    if (gray) {
      const float v = sized.channels == 1 ? px[0] : 0.299f * px[0] + 0.587f * px[1] + 0.114f * px[2];
      t[i] = normalized(v, p, 0, 1);
      continue;
    }
    for (int64_t c = 0; c < 3; ++c) {
      const int64_t source = p.color == ColorOrder::bgr ? 2 - c : c;
      const float v = sized.channels == 1 ? px[0] : px[source];
      t[c * hw + i] = normalized(v, p, c, 3);
    }
  }
  return t;
}

void normalize_raw(Tensor& values, const Preprocessing& p, int64_t channels) {
  const int64_t per = values.size() / std::max<int64_t>(channels, 1);
  for (int64_t c = 0; c < channels; ++c) {
    for (int64_t i = 0; i < per; ++i) values[c * per + i] = normalized(values[c * per + i], p, c, channels);
  }
}

InputRange input_range(const Preprocessing& p, int64_t channels) {
  InputRange r;
  for (int64_t c = 0; c < channels; ++c) {
    const float a = normalized(p.raw_low, p, c, channels), b = normalized(p.raw_high, p, c, channels);
    r.low.push_back(std::min(a, b));
    r.high.push_back(std::max(a, b));
  }
  return r;
}

float parse_number(const std::string& text, const std::string& what) {
  auto decimal = [&](const std::string& part) {
    const std::optional<double> v = parse_double(part);
    if (!v) throw Error(what + " '" + text + "': expected a number like 0.5, 1e-3 or 1/255");
    return *v;
  };
  const size_t slash = text.find('/');
  if (slash == std::string::npos) return static_cast<float>(decimal(text));
  const double numerator = decimal(text.substr(0, slash)), denominator = decimal(text.substr(slash + 1));
  if (denominator == 0.0) throw Error(what + " '" + text + "': division by zero");
  return static_cast<float>(numerator / denominator);
}

namespace {

// "WxH" or, when `single` may be used, "N"; both positive. {0, 0} for anything else.
std::pair<int, int> parse_size(const std::string& text, bool* single) {
  // Images are bounded far below a million pixels a side; larger values are refused like malformed ones.
  auto positive = [](const std::string& part) {
    const std::optional<int64_t> v = parse_integer(part);
    return v && *v > 0 && *v < 1000000 ? static_cast<int>(*v) : 0;
  };
  const size_t x = text.find('x');
  *single = x == std::string::npos;
  if (*single) {
    const int n = positive(text);
    return {n, n};
  }
  return {positive(text.substr(0, x)), positive(text.substr(x + 1))};
}

}  // namespace

void parse_resize(const std::string& text, Preprocessing& p, const std::string& what) {
  bool single = false;
  const auto [w, h] = parse_size(text, &single);
  if (w <= 0 || h <= 0)
    throw Error(what + " '" + text + "': expected N (the shorter side, keeping the aspect ratio) or WxH");
  p.resize_shorter = single ? w : 0;
  p.resize_width = single ? 0 : w;
  p.resize_height = single ? 0 : h;
}

void parse_crop(const std::string& text, Preprocessing& p, const std::string& what) {
  bool single = false;
  const auto [w, h] = parse_size(text, &single);
  if (w <= 0 || h <= 0) throw Error(what + " '" + text + "': expected WxH or N (a centre crop)");
  p.crop_width = w;
  p.crop_height = h;
}

Interpolation parse_interpolation(const std::string& text, const std::string& what) {
  if (text == "bilinear") return Interpolation::bilinear;
  if (text == "nearest") return Interpolation::nearest;
  throw Error(what + " '" + text + "': expected bilinear or nearest");
}

}  // namespace sieve
