#pragma once

// Superpixels of an image (OpenCV's ximgproc): the segments LIME switches on and off when no feature
// mask is given.

#include <string>

#include "sieve/tensor.hpp"

namespace sieve {

struct SuperpixelOptions {
  // slic, slico (SLIC with an adaptive compactness), mslic (manifold SLIC) or lsc (linear spectral
  // clustering).
  std::string algorithm = "slic";
  int region_size = 10;  // average superpixel size in pixels (the side of a square of that area)
  float ruler = 10.0f;   // SLIC's compactness: larger gives more regular, less colour-bound segments
  float ratio = 0.075f;  // LSC's compactness
  int iterations = 10;
};

// The segment of every pixel of `image` [C, H, W] (1 to 4 channels, any value range: scaled by its
// minimum and maximum to 8 bits, so the segments follow what the picture shows whatever the
// normalisation) as consecutive integers from 0, shaped [H, W]. Segments smaller than a quarter of
// region_size² are merged into a neighbour. Throws sieve::Error for another shape or a bad option.
Tensor superpixels(const Tensor& image, const SuperpixelOptions& options);

}  // namespace sieve
