#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace sieve {

// An 8-bit image, pixels interleaved row by row (HWC); 1 (gray) or 3 (RGB) channels.
struct Image {
  int width = 0, height = 0, channels = 0;
  std::vector<uint8_t> pixels;
};

// Reads a PNG or JPEG file (recognized by its content): palette and 16-bit PNGs become 8-bit, alpha is
// dropped. Throws sieve::Error naming the file for anything it cannot decode.
Image read_image(const std::string& path);
void write_png(const std::string& path, const Image& image);
// The PNG file of a gray or RGB image as bytes in memory (for embedding, e.g. in a data: URI).
std::string encode_png(const Image& image);
// Bilinear resampling with half-pixel centers.
Image resize_bilinear(const Image& image, int width, int height);
// Nearest-neighbour resampling with half-pixel centers.
Image resize_nearest(const Image& image, int width, int height);
// The centre width×height of an image at least that large (an odd margin leaves the extra pixel at the
// right or bottom); throws sieve::Error for a crop larger than the image.
Image center_crop(const Image& image, int width, int height);

}  // namespace sieve
