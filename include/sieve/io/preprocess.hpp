#pragma once

#include <string>
#include <vector>

#include "sieve/io/image.hpp"
#include "sieve/tensor.hpp"

namespace sieve {

enum class ColorOrder { rgb, bgr, grayscale };

// How raw pixel values become model inputs: x = (raw · scale − mean[c]) / std[c]. mean/std may be empty
// (0 and 1), hold one value for every channel, or one per channel. raw_low/raw_high is the range of raw
// values, which fixes the input range in the preprocessed space (used by the z^B rule).
struct Preprocessing {
  ColorOrder color = ColorOrder::rgb;
  float scale = 1.0f / 255.0f;
  std::vector<float> mean, std;
  float raw_low = 0.0f, raw_high = 255.0f;
};

// Per-channel value range in the preprocessed space.
struct InputRange {
  std::vector<float> low, high;
};

// An image as a model input [1, C, H, W]: resized to H×W, converted to the color order, normalized.
Tensor image_to_tensor(const Image& image, const Preprocessing& p, int64_t channels, int64_t height,
                       int64_t width);
// Normalizes raw values (e.g. IDX bytes) laid out [C, ...] in place.
void normalize_raw(Tensor& values, const Preprocessing& p, int64_t channels);
InputRange input_range(const Preprocessing& p, int64_t channels);
// A finite number written as a decimal ("0.5", "1e-3") or a fraction ("1/255"); throws sieve::Error
// naming `what` and the text otherwise.
float parse_number(const std::string& text, const std::string& what);

}  // namespace sieve
