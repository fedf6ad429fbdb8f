#include "sieve/blur.hpp"

#include <algorithm>
#include <cmath>

namespace sieve {
namespace {

// The blur, or with `adjoint` its transpose: each output element's weighted sum of its neighbours
// becomes a scatter of the element into them with the same weights.
void blur_along_axes(std::vector<double>& values, const Shape& shape, const std::vector<bool>& axes,
                     double sigma, BlurEdges edges, bool adjoint) {
  const int64_t radius = static_cast<int64_t>(std::ceil(3.0 * sigma));
  std::vector<double> kernel(static_cast<size_t>(2 * radius + 1));
  for (int64_t t = -radius; t <= radius; ++t)
    kernel[static_cast<size_t>(t + radius)] = std::exp(-0.5 * static_cast<double>(t * t) / (sigma * sigma));
  double total = 0.0;
  for (double k : kernel) total += k;
  std::vector<double> next(values.size());
  int64_t stride = 1;
  for (size_t a = shape.size(); a-- > 0;) {
    const int64_t extent = shape[a];
    if (axes[a]) {
      if (adjoint) std::fill(next.begin(), next.end(), 0.0);
      for (size_t e = 0; e < values.size(); ++e) {
        const int64_t c = (static_cast<int64_t>(e) / stride) % extent;
        double weight = 0.0;
        if (edges == BlurEdges::repeat) {
          weight = total;
        } else {
          for (int64_t t = std::max(-radius, -c); t <= std::min(radius, extent - 1 - c); ++t)
            weight += kernel[static_cast<size_t>(t + radius)];
        }
        double sum = 0.0;
        for (int64_t t = -radius; t <= radius; ++t) {
          int64_t moved = c + t;
          if (edges == BlurEdges::repeat) {
            moved = std::clamp<int64_t>(moved, 0, extent - 1);
          } else if (moved < 0 || moved >= extent) {
            continue;
          }
          const double k = kernel[static_cast<size_t>(t + radius)];
          const size_t neighbour = static_cast<size_t>(static_cast<int64_t>(e) + (moved - c) * stride);
          if (adjoint) {
            next[neighbour] += k * values[e] / weight;
          } else {
            sum += k * values[neighbour];
          }
        }
        if (!adjoint) next[e] = sum / weight;
      }
      values.swap(next);
    }
    stride *= extent;
  }
}

}  // namespace

void gaussian_blur(std::vector<double>& values, const Shape& shape, const std::vector<bool>& axes,
                   double sigma, BlurEdges edges) {
  blur_along_axes(values, shape, axes, sigma, edges, false);
}

void gaussian_blur_adjoint(std::vector<double>& values, const Shape& shape, const std::vector<bool>& axes,
                           double sigma, BlurEdges edges) {
  blur_along_axes(values, shape, axes, sigma, edges, true);
}

}  // namespace sieve
