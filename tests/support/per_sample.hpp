#pragma once

// Comparisons of a batch of explanations with a reference, one sample at a time: each sample's
// tolerance is relative to the largest magnitude of its own reference.

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "sieve/tensor.hpp"

namespace sieve {

// Per sample i: max |got − want| ≤ bound · max |want_i| (a tensor [N, ...] against one of the same shape).
inline void expect_per_sample_near(const Tensor& got, const Tensor& want, double bound,
                                   const std::string& what) {
  ASSERT_EQ(got.shape(), want.shape()) << what;
  const int64_t n = want.dim(0), per = want.size() / n;
  for (int64_t i = 0; i < n; ++i) {
    double scale = 0.0;
    for (int64_t j = 0; j < per; ++j)
      scale = std::max(scale, static_cast<double>(std::abs(want[i * per + j])));
    for (int64_t j = 0; j < per; ++j)
      ASSERT_NEAR(got[i * per + j], want[i * per + j], bound * scale)
          << what << " sample " << i << " at " << j;
  }
}

}  // namespace sieve
