// Superpixels with OpenCV's ximgproc on the min-max scaled 8-bit picture of an image tensor.

#include "sieve/io/superpixels.hpp"

#include <algorithm>
#include <map>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/ximgproc/lsc.hpp>
#include <opencv2/ximgproc/slic.hpp>

#include "sieve/error.hpp"

namespace sieve {
namespace {

// The image as an H × W 8-bit picture with C interleaved channels, 0 at its minimum and 255 at its
// maximum (all 0 for a constant image).
cv::Mat picture(const Tensor& image) {
  const int channels = static_cast<int>(image.dim(0)), h = static_cast<int>(image.dim(1)),
            w = static_cast<int>(image.dim(2));
  const auto [lo, hi] = std::minmax_element(image.values().begin(), image.values().end());
  const float range = *hi - *lo;
  cv::Mat out(h, w, CV_8UC(channels));
  for (int y = 0; y < h; ++y) {
    uint8_t* row = out.ptr<uint8_t>(y);
    for (int x = 0; x < w; ++x) {
      for (int c = 0; c < channels; ++c) {
        const float v = image[(static_cast<int64_t>(c) * h + y) * w + x];
        row[x * channels + c] =
            range > 0.0f ? static_cast<uint8_t>(std::lround((v - *lo) / range * 255.0f)) : uint8_t{0};
      }
    }
  }
  // SLIC and LSC measure colour distances in CIELAB for three channels, as the algorithms' authors do.
  if (channels == 3) cv::cvtColor(out, out, cv::COLOR_RGB2Lab);
  return out;
}

}  // namespace

Tensor superpixels(const Tensor& image, const SuperpixelOptions& options) {
  if (image.rank() != 3 || image.dim(0) < 1 || image.dim(0) > 4) {
    throw Error("superpixels: the image must be shaped [C, H, W] with 1 to 4 channels, not " +
                to_string(image.shape()));
  }
  if (options.region_size < 1 || options.iterations < 1 || !(options.ruler > 0.0f) ||
      !(options.ratio > 0.0f)) {
    throw Error(
        "superpixels: region_size and iterations must be positive integers and ruler and ratio "
        "positive numbers");
  }
  const cv::Mat pic = picture(image);
  cv::Mat labels;
  if (options.algorithm == "lsc") {
    const cv::Ptr<cv::ximgproc::SuperpixelLSC> lsc =
        cv::ximgproc::createSuperpixelLSC(pic, options.region_size, options.ratio);
    lsc->iterate(options.iterations);
    lsc->enforceLabelConnectivity();
    lsc->getLabels(labels);
  } else {
    const std::map<std::string, int> algorithms{
        {"slic", cv::ximgproc::SLIC}, {"slico", cv::ximgproc::SLICO}, {"mslic", cv::ximgproc::MSLIC}};
    const auto found = algorithms.find(options.algorithm);
    if (found == algorithms.end()) {
      throw Error("superpixels: unknown segmentation '" + options.algorithm +
                  "' (choose slic, slico, mslic or lsc)");
    }
    const cv::Ptr<cv::ximgproc::SuperpixelSLIC> slic =
        cv::ximgproc::createSuperpixelSLIC(pic, found->second, options.region_size, options.ruler);
    slic->iterate(options.iterations);
    slic->enforceLabelConnectivity();
    slic->getLabels(labels);
  }
  // Renumber the labels in order of first appearance, so they are consecutive from 0.
  std::map<int, int> renumbered;
  Tensor out = Tensor::uninitialized({image.dim(1), image.dim(2)});
  for (int y = 0; y < labels.rows; ++y) {
    const int* row = labels.ptr<int>(y);
    for (int x = 0; x < labels.cols; ++x) {
      const auto it = renumbered.try_emplace(row[x], static_cast<int>(renumbered.size())).first;
      out[static_cast<int64_t>(y) * labels.cols + x] = static_cast<float>(it->second);
    }
  }
  return out;
}

}  // namespace sieve
