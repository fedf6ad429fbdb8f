// Pattern and ρ(S) statistics of a model with a fixed batch of 4, fed batches of fewer rows (padded
// inside, the padding left out), equal those of the same model with a dynamic batch.

#include <gtest/gtest.h>

#include <cmath>

#include "sieve/batch.hpp"
#include "sieve/io/npy.hpp"
#include "sieve/patterns.hpp"
#include "sieve/signal_quality.hpp"
#include "support/regime_flips.hpp"
#include "support/rounding.hpp"
#include "support/test_files.hpp"

namespace sieve {
namespace {

const std::string kModels = std::string(SIEVE_TEST_DATA) + "/models/";

// The fixed model runs every batch as 4 rows, the dynamic one as 4, then 2 (or 3): other kernels, so
// their forward values agree up to float32 rounding, up to τ of their magnitude in each
// (support/rounding.hpp). Each sum lies within 4τ of the largest in its array (a term is at most a
// product of two forward values), plus what samples within rounding of the regime boundary can move
// (`flipped`, support/regime_flips.hpp). A padding row counted would be off by a whole sample.
void expect_same_sums(const std::vector<double>& a, const std::vector<double>& b, double tau,
                      const std::vector<double>* flipped, const std::string& what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  double scale = 0.0;
  for (double v : b) scale = std::max(scale, std::abs(v));
  for (size_t i = 0; i < a.size(); ++i)
    ASSERT_NEAR(a[i], b[i], 4.0 * tau * scale + (flipped != nullptr ? (*flipped)[i] : 0.0))
        << what << " " << i;
}

void expect_same_statistics(const PatternStatistics& a, const PatternStatistics& b, double tau,
                            const std::vector<RegimeFlips>& flips) {
  EXPECT_EQ(a.images, b.images);
  ASSERT_EQ(a.layers().size(), b.layers().size());
  for (size_t l = 0; l < a.layers().size(); ++l) {
    const LayerStatistics &x = a.layers()[l], &y = b.layers()[l];
    EXPECT_EQ(x.count, y.count) << l;
    expect_same_sums(x.count_pos, y.count_pos, tau, &flips[l].count, "count_pos");
    expect_same_sums(x.sum_y, y.sum_y, tau, nullptr, "sum_y");
    expect_same_sums(x.sum_y_pos, y.sum_y_pos, tau, &flips[l].sum_abs_y, "sum_y_pos");
    expect_same_sums(x.sum_x, y.sum_x, tau, nullptr, "sum_x");
    expect_same_sums(x.sum_xy, y.sum_xy, tau, nullptr, "sum_xy");
    expect_same_sums(x.sum_xy_pos, y.sum_xy_pos, tau, &flips[l].sum_abs_xy, "sum_xy_pos");
  }
}

// The 4 stored mlp inputs and 2 more made from them: [6, 1, 12, 12].
Tensor six_rows() {
  const Tensor four = read_npy(kModels + "mlp_input.npy");
  Tensor six(Shape{6, 1, 12, 12});
  for (int64_t i = 0; i < six.size(); ++i) {
    const float v = four[i % four.size()];
    six[i] = i < four.size() ? v : 0.5f * v - 0.25f;
  }
  return six;
}

TEST(PaddedBatches, PatternStatisticsOfAFixedBatchModelLeaveThePaddingOut) {
  const Model fixed = Model::load(kModels + "mlp_batch4.onnx");
  const Model dynamic = Model::load(kModels + "mlp.onnx");
  const Tensor rows = six_rows();
  PatternStatistics a(fixed), b(dynamic);
  a.accumulate(fixed, leading_rows(rows, 4));
  b.accumulate(dynamic, leading_rows(rows, 4));
  const Tensor two = Tensor(Shape{2, 1, 12, 12}, std::span<const float>(rows.data() + 4 * 144, 2 * 144));
  a.accumulate(fixed, two);
  b.accumulate(dynamic, two);
  const double tau = forward_rounding_bound(dynamic);
  const std::vector<RegimeFlips> flips = possible_regime_flips(dynamic, rows, tau);
  expect_same_statistics(a, b, tau, flips);

  // The streaming fit reads 4 rows, then 2, from a file of 6.
  const std::string path = temp("six_rows.npy").string();
  write_npy(path, rows);
  InputStream fixed_data({path}, Preprocessing(), fixed.input_shapes()[0]);
  InputStream dynamic_data({path}, Preprocessing(), dynamic.input_shapes()[0]);
  expect_same_statistics(fit_pattern_statistics(fixed, fixed_data, 32),
                         fit_pattern_statistics(dynamic, dynamic_data, 4), tau, flips);
}

TEST(PaddedBatches, SignalQualityStatisticsOfAFixedBatchModelLeaveThePaddingOut) {
  const Model fixed = Model::load(kModels + "mlp_batch4.onnx");
  const Model dynamic = Model::load(kModels + "mlp.onnx");
  const Tensor rows = six_rows();
  QualityStatistics a(fixed), b(dynamic);
  const Tensor three = leading_rows(rows, 3);
  a.accumulate(fixed, three);
  b.accumulate(dynamic, three);
  EXPECT_EQ(a.images, 3);
  EXPECT_EQ(a.images, b.images);
  const double tau = forward_rounding_bound(dynamic);
  const std::vector<RegimeFlips> flips = possible_regime_flips(dynamic, three, tau);
  ASSERT_EQ(a.layers().size(), b.layers().size());
  for (size_t l = 0; l < a.layers().size(); ++l) {
    EXPECT_EQ(a.layers()[l].count, b.layers()[l].count) << l;
    // t = relu(z) is continuous at the regime boundary; y_p = y·1[z > 0] jumps there by |y|.
    expect_same_sums(a.layers()[l].sum_yp, b.layers()[l].sum_yp, tau, &flips[l].sum_abs_y, "sum_yp");
    expect_same_sums(a.layers()[l].sum_t, b.layers()[l].sum_t, tau, nullptr, "sum_t");
    expect_same_sums(a.layers()[l].sum_x_t, b.layers()[l].sum_x_t, tau, nullptr, "sum_x_t");
  }
}

}  // namespace
}  // namespace sieve
