#pragma once

#include <string>
#include <vector>

#include "sieve/io/image.hpp"
#include "sieve/tensor.hpp"

namespace sieve {

enum class ColorOrder { rgb, bgr, grayscale };
enum class Interpolation { bilinear, nearest };

// How raw pixel values become model inputs: x = (raw · scale − mean[c]) / std[c]. mean/std may be empty
// (0 and 1), hold one value for every channel, or one per channel. raw_low/raw_high is the range of raw
// values, which fixes the input range in the preprocessed space (used by the z^B rule).
//
// Images are first resized (the shorter side to `resize_shorter` keeping the aspect ratio, or exactly
// to resize_width × resize_height), then centre-cropped to crop_width × crop_height (0: not asked); an
// image that still differs from the model's H×W is resized to it (a warning says so).
struct Preprocessing {
  ColorOrder color = ColorOrder::rgb;
  float scale = 1.0f / 255.0f;
  std::vector<float> mean, std;
  float raw_low = 0.0f, raw_high = 255.0f;
  int resize_shorter = 0, resize_width = 0, resize_height = 0;
  int crop_width = 0, crop_height = 0;
  Interpolation interpolation = Interpolation::bilinear;
};

// Sets the resize of `p` from "N" (shorter side to N) or "WxH" (exactly); throws sieve::Error naming
// `what` and the text for anything else.
void parse_resize(const std::string& text, Preprocessing& p, const std::string& what);
// Sets the centre crop of `p` from "WxH" or "N" (N×N).
void parse_crop(const std::string& text, Preprocessing& p, const std::string& what);
// "bilinear" or "nearest".
Interpolation parse_interpolation(const std::string& text, const std::string& what);

// Per-channel value range in the preprocessed space.
struct InputRange {
  std::vector<float> low, high;
};

// An image as a model input [1, C, H, W]: resized and cropped as asked, resized to H×W if it still
// differs, converted to the color order, normalized. Changes nobody asked for (a resize to the model's
// size, RGB to gray for a 1-channel model, gray replicated for a 3-channel model) are described in
// `warnings` when given. Throws sieve::Error when the channels cannot match.
Tensor image_to_tensor(const Image& image, const Preprocessing& p, int64_t channels, int64_t height,
                       int64_t width, std::vector<std::string>* warnings = nullptr);
// Normalizes raw values (e.g. IDX bytes) laid out [C, ...] in place.
void normalize_raw(Tensor& values, const Preprocessing& p, int64_t channels);
InputRange input_range(const Preprocessing& p, int64_t channels);
// A finite number written as a decimal ("0.5", "1e-3") or a fraction ("1/255"); throws sieve::Error
// naming `what` and the text otherwise.
float parse_number(const std::string& text, const std::string& what);

}  // namespace sieve
