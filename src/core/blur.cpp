#include "sieve/blur.hpp"

#include <algorithm>
#include <cmath>

namespace sieve {

void gaussian_blur(std::vector<double>& values, const Shape& shape, const std::vector<bool>& axes,
                   double sigma, BlurEdges edges) {
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
      for (size_t e = 0; e < values.size(); ++e) {
        const int64_t c = (static_cast<int64_t>(e) / stride) % extent;
        double sum = 0.0, weight = 0.0;
        for (int64_t t = -radius; t <= radius; ++t) {
          int64_t moved = c + t;
          if (edges == BlurEdges::repeat) {
            moved = std::clamp<int64_t>(moved, 0, extent - 1);
          } else if (moved < 0 || moved >= extent) {
            continue;
          }
          const double k = kernel[static_cast<size_t>(t + radius)];
          sum += k * values[static_cast<size_t>(static_cast<int64_t>(e) + (moved - c) * stride)];
          weight += k;
        }
        next[e] = sum / (edges == BlurEdges::repeat ? total : weight);
      }
      values.swap(next);
    }
    stride *= extent;
  }
}

}  // namespace sieve
