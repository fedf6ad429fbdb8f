#include "sieve/io/image.hpp"

#include <png.h>
#include <turbojpeg.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <memory>

#include "sieve/error.hpp"
#include "sieve/io/formats.hpp"

namespace sieve {
namespace {

// Images larger than this are refused before decoding (about 16k × 16k).
constexpr int64_t kMaxPixels = int64_t{1} << 28;
constexpr std::streamoff kMaxFileBytes = std::streamoff{1} << 30;

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) throw Error(path + ": cannot open file");
  const std::streamoff size = in.tellg();
  if (size < 0 || size > kMaxFileBytes)
    throw Error(path + ": cannot read file (missing or larger than 1 GiB)");
  std::string bytes(static_cast<size_t>(size), '\0');
  in.seekg(0);
  in.read(bytes.data(), size);
  return bytes;
}

void check_size(const std::string& path, int64_t width, int64_t height) {
  if (width <= 0 || height <= 0 || width * height > kMaxPixels) {
    throw Error(path + ": image size " + std::to_string(width) + "x" + std::to_string(height) +
                " is empty or too large");
  }
}

Image decode_png(const std::string& path, const std::string& bytes) {
  png_image png;
  std::memset(&png, 0, sizeof png);
  png.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_memory(&png, bytes.data(), bytes.size())) {
    throw Error(path + ": corrupt PNG: " + png.message);
  }
  const bool color = (png.format & PNG_FORMAT_FLAG_COLOR) != 0;
  png.format = color ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY;
  try {
    check_size(path, png.width, png.height);
  } catch (...) {
    png_image_free(&png);
    throw;
  }
  Image img{static_cast<int>(png.width), static_cast<int>(png.height), color ? 3 : 1, {}};
  img.pixels.resize(PNG_IMAGE_SIZE(png));
  if (!png_image_finish_read(&png, nullptr, img.pixels.data(), 0, nullptr)) {
    const std::string message = png.message;
    png_image_free(&png);
    throw Error(path + ": corrupt PNG: " + message);
  }
  return img;
}

Image decode_jpeg(const std::string& path, const std::string& bytes) {
  std::unique_ptr<void, int (*)(tjhandle)> tj(tjInitDecompress(), tjDestroy);
  if (!tj) throw Error("cannot initialize the JPEG decoder");
  auto* data = reinterpret_cast<const unsigned char*>(bytes.data());
  int width = 0, height = 0, subsampling = 0, colorspace = 0;
  if (tjDecompressHeader3(tj.get(), data, bytes.size(), &width, &height, &subsampling, &colorspace) != 0) {
    throw Error(path + ": corrupt JPEG: " + tjGetErrorStr2(tj.get()));
  }
  if (width <= 0 || height <= 0) throw Error(path + ": corrupt JPEG: no frame header with the image size");
  check_size(path, width, height);
  const bool gray = colorspace == TJCS_GRAY;
  Image img{width, height, gray ? 1 : 3, {}};
  img.pixels.resize(static_cast<size_t>(width) * static_cast<size_t>(height) *
                    static_cast<size_t>(img.channels));
  // A truncated or damaged stream is only a warning to libjpeg-turbo (the rest is filled with gray), so
  // every problem is treated as an error: never silently decode garbage.
  if (tjDecompress2(tj.get(), data, bytes.size(), img.pixels.data(), width, 0, height,
                    gray ? TJPF_GRAY : TJPF_RGB, TJFLAG_ACCURATEDCT | TJFLAG_STOPONWARNING) != 0) {
    throw Error(path + ": corrupt JPEG: " + tjGetErrorStr2(tj.get()));
  }
  return img;
}

}  // namespace

Image read_image(const std::string& path) {
  const std::string bytes = read_bytes(path);
  switch (format_of_bytes(bytes)) {
    case DataFormat::png:
      return decode_png(path, bytes);
    case DataFormat::jpeg:
      return decode_jpeg(path, bytes);
    default:
      break;
  }
  throw Error(path + ": not a PNG or JPEG file");
}

namespace {

// libpng's simplified-API description of a gray or RGB image; `what` names the image in messages.
png_image png_description(const Image& image, const std::string& what) {
  if (image.channels != 1 && image.channels != 3) throw Error(what + ": only gray or RGB images are written");
  png_image png;
  std::memset(&png, 0, sizeof png);
  png.version = PNG_IMAGE_VERSION;
  png.width = static_cast<png_uint_32>(image.width);
  png.height = static_cast<png_uint_32>(image.height);
  png.format = image.channels == 3 ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY;
  return png;
}

}  // namespace

void write_png(const std::string& path, const Image& image) {
  png_image png = png_description(image, path);
  if (!png_image_write_to_file(&png, path.c_str(), 0, image.pixels.data(), 0, nullptr)) {
    throw Error(path + ": cannot write PNG: " + png.message);
  }
}

std::string encode_png(const Image& image) {
  const std::string what =
      "PNG of a " + std::to_string(image.width) + "x" + std::to_string(image.height) + " image";
  png_image png = png_description(image, what);
  // The first call with no buffer asks libpng for the size, the second writes.
  png_alloc_size_t size = 0;
  if (!png_image_write_to_memory(&png, nullptr, &size, 0, image.pixels.data(), 0, nullptr))
    throw Error(what + ": " + png.message);
  std::string bytes(size, '\0');
  if (!png_image_write_to_memory(&png, bytes.data(), &size, 0, image.pixels.data(), 0, nullptr))
    throw Error(what + ": " + png.message);
  bytes.resize(size);
  return bytes;
}

namespace {

// `image` resampled to width×height with half-pixel centers: channel c of output pixel (x, y) is
// sample(fx, fy, c), where (fx, fy) is the pixel's center in the source's pixel coordinates.
template <class Sample>
Image resampled(const Image& image, int width, int height, Sample sample) {
  check_size("resize", width, height);
  Image out{width, height, image.channels, {}};
  out.pixels.resize(static_cast<size_t>(width) * static_cast<size_t>(height) *
                    static_cast<size_t>(image.channels));
  const double sx = static_cast<double>(image.width) / width, sy = static_cast<double>(image.height) / height;
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      for (int c = 0; c < image.channels; ++c)
        out.pixels[static_cast<size_t>((y * width + x) * image.channels + c)] =
            sample((x + 0.5) * sx, (y + 0.5) * sy, c);
    }
  }
  return out;
}

}  // namespace

Image resize_bilinear(const Image& image, int width, int height) {
  if (image.width == width && image.height == height) return image;
  auto at = [&](int y, int x, int c) {
    return image.pixels[static_cast<size_t>((y * image.width + x) * image.channels + c)];
  };
  return resampled(image, width, height, [&](double cx, double cy, int c) {
    const double fx = std::clamp(cx - 0.5, 0.0, image.width - 1.0),
                 fy = std::clamp(cy - 0.5, 0.0, image.height - 1.0);
    const int x0 = static_cast<int>(fx), x1 = std::min(x0 + 1, image.width - 1);
    const int y0 = static_cast<int>(fy), y1 = std::min(y0 + 1, image.height - 1);
    const double wx = fx - x0, wy = fy - y0;
    const double v = (1 - wy) * ((1 - wx) * at(y0, x0, c) + wx * at(y0, x1, c)) +
                     wy * ((1 - wx) * at(y1, x0, c) + wx * at(y1, x1, c));
    return static_cast<uint8_t>(std::lround(std::clamp(v, 0.0, 255.0)));
  });
}

Image resize_nearest(const Image& image, int width, int height) {
  if (image.width == width && image.height == height) return image;
  return resampled(image, width, height, [&](double cx, double cy, int c) {
    const int x = std::min(static_cast<int>(cx), image.width - 1),
              y = std::min(static_cast<int>(cy), image.height - 1);
    return image.pixels[static_cast<size_t>((y * image.width + x) * image.channels + c)];
  });
}

Image center_crop(const Image& image, int width, int height) {
  if (width > image.width || height > image.height) {
    throw Error("cannot crop " + std::to_string(width) + "x" + std::to_string(height) + " from an image of " +
                std::to_string(image.width) + "x" + std::to_string(image.height));
  }
  check_size("crop", width, height);
  const int x0 = (image.width - width) / 2, y0 = (image.height - height) / 2;
  Image out{width, height, image.channels, {}};
  const size_t row = static_cast<size_t>(width) * static_cast<size_t>(image.channels);
  out.pixels.resize(row * static_cast<size_t>(height));
  for (int y = 0; y < height; ++y) {
    std::memcpy(&out.pixels[static_cast<size_t>(y) * row],
                &image.pixels[(static_cast<size_t>(y0 + y) * static_cast<size_t>(image.width) +
                               static_cast<size_t>(x0)) *
                              static_cast<size_t>(image.channels)],
                row);
  }
  return out;
}

}  // namespace sieve
