// Completeness, sparseness, Spearman and SSIM against hand-computed values.

#include <gtest/gtest.h>

#include <cmath>

#include "sieve/error.hpp"
#include "sieve/evaluation.hpp"

namespace sieve {
namespace {

Tensor row(std::vector<float> v) {
  const int64_t n = static_cast<int64_t>(v.size());
  return Tensor(Shape{1, n}, v);
}

TEST(Sparseness, GiniAndEntropyOfKnownMaps) {
  const Sparseness s =
      sparseness({row({0, 0, 0, 1}), row({1, 1, 1, 1}), row({-2, 2, 0, 0}), row({0, 0, 0, 0})});
  // One element of n holds everything: Gini (n − 1)/n; all equal: 0.
  EXPECT_DOUBLE_EQ(s.gini[0], 0.75);
  EXPECT_DOUBLE_EQ(s.entropy[0], 0.0);
  EXPECT_DOUBLE_EQ(s.gini[1], 0.0);
  EXPECT_DOUBLE_EQ(s.entropy[1], std::log(4.0));
  // |R| sorted 0, 0, 2, 2: Σ (2k − n − 1) a_k / (n Σ a) = (1·2 + 3·2) / 16.
  EXPECT_DOUBLE_EQ(s.gini[2], 0.5);
  EXPECT_DOUBLE_EQ(s.entropy[2], std::log(2.0));
  EXPECT_DOUBLE_EQ(s.gini[3], 0.0);
  EXPECT_DOUBLE_EQ(s.entropy[3], std::log(4.0));
  EXPECT_DOUBLE_EQ(s.mean_gini, (0.75 + 0.0 + 0.5 + 0.0) / 4);
}

TEST(Similarity, SpearmanOfKnownPairs) {
  const std::vector<float> a{1, 2, 2, 3}, b{1, 3, 2, 4}, c{4, 3, 2, 1}, d{10, 20, 30, 40};
  // Ranks a: 1, 2.5, 2.5, 4; b: 1, 3, 2, 4 → Σ da·db = 4.5, Σ da² = 4.5, Σ db² = 5.
  EXPECT_NEAR(spearman(a, b), 4.5 / std::sqrt(4.5 * 5.0), 1e-15);
  EXPECT_DOUBLE_EQ(spearman(c, d), -1.0);
  EXPECT_DOUBLE_EQ(spearman(b, d), 0.8);  // ranks 1,3,2,4 vs 1,2,3,4: 1 − 6·2/(4·15)
}

TEST(Similarity, SsimOfKnownPairs) {
  Tensor a(Shape{1, 1, 7, 7}), b(Shape{1, 1, 7, 7});
  for (int64_t i = 0; i < 49; ++i) {
    a[i] = static_cast<float>((i * 37) % 11);
    b[i] = static_cast<float>((i * 13) % 7);
  }
  EXPECT_NEAR(ssim(a, a), 1.0, 1e-12);
  Tensor shifted(a.shape());
  for (int64_t i = 0; i < 49; ++i) shifted[i] = 2 * a[i] + 3;  // each map is scaled by its own range
  EXPECT_NEAR(ssim(a, shifted), 1.0, 1e-12);
  // One 7×7 window covers the maps: the formula with sample (co)variances of the [0, 1]-scaled maps.
  std::vector<double> x(49), y(49);
  for (int i = 0; i < 49; ++i) x[i] = a[i] / 10.0, y[i] = b[i] / 6.0;
  double mx = 0, my = 0;
  for (int i = 0; i < 49; ++i) mx += x[i] / 49, my += y[i] / 49;
  double vx = 0, vy = 0, cxy = 0;
  for (int i = 0; i < 49; ++i) {
    vx += (x[i] - mx) * (x[i] - mx) / 48;
    vy += (y[i] - my) * (y[i] - my) / 48;
    cxy += (x[i] - mx) * (y[i] - my) / 48;
  }
  const double c1 = 1e-4, c2 = 9e-4;
  const double expected = (2 * mx * my + c1) * (2 * cxy + c2) / ((mx * mx + my * my + c1) * (vx + vy + c2));
  EXPECT_NEAR(ssim(a, b), expected, 1e-12);
  EXPECT_THROW(ssim(a, Tensor(Shape{1, 1, 7, 6})), Error);
}

}  // namespace
}  // namespace sieve
