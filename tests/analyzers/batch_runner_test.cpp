// The batch runner: a model with a fixed batch of 4 explains and predicts 6 inputs (the last batch
// padded) exactly as the same model with a dynamic batch.

#include <gtest/gtest.h>

#include <cmath>

#include "sieve/analyzer.hpp"
#include "sieve/batch.hpp"
#include "sieve/error.hpp"
#include "sieve/io/npy.hpp"
#include "sieve/methods.hpp"
#include "sieve/predict.hpp"

namespace sieve {
namespace {

const std::string kModels = std::string(SIEVE_TEST_DATA) + "/models/";

// The 4 stored mlp inputs and 2 more made from them, [1, ...] each.
std::vector<Tensor> six_samples() {
  const Tensor all = read_npy(kModels + "mlp_input.npy");
  std::vector<Tensor> samples;
  for (int64_t i = 0; i < 6; ++i) {
    Tensor s = batch_row(all, i % 4).clone();
    if (i >= 4) {
      for (float& v : s.values()) v = 0.5f * v - 0.25f;
    }
    samples.push_back(s);
  }
  return samples;
}

void expect_close(const Tensor& a, const Tensor& b, const std::string& what) {
  ASSERT_EQ(a.shape(), b.shape()) << what;
  double scale = 0.0;
  for (float v : b.values()) scale = std::max(scale, static_cast<double>(std::abs(v)));
  for (int64_t i = 0; i < a.size(); ++i) ASSERT_NEAR(a[i], b[i], 1e-5 * scale + 1e-7) << what << " at " << i;
}

TEST(BatchRunner, FixedBatchOfFourExplainsSixInputsLikeADynamicBatch) {
  const Model fixed = Model::load(kModels + "mlp_batch4.onnx");
  const Model dynamic = Model::load(kModels + "mlp.onnx");
  ASSERT_EQ(fixed.rows_per_pass(32), 4);
  const std::vector<Tensor> samples = six_samples();
  std::vector<std::unique_ptr<Analyzer>> owned;
  std::vector<const Analyzer*> analyzers;
  for (const std::string method :
       {"gradient", "integrated_gradients:steps=5", "smoothgrad:n=3", "lrp.epsilon", "deep_taylor"}) {
    owned.push_back(create_analyzer(MethodSpec::parse(method)));
    analyzers.push_back(owned.back().get());
  }
  const std::vector<Explanation> got = explain_samples(fixed, samples, analyzers, TargetSelection());
  // Batches of 4 for the dynamic model too, so both run the same kernels on the same rows.
  const std::vector<Explanation> want = explain_samples(dynamic, samples, analyzers, TargetSelection(), 4);
  ASSERT_EQ(got.size(), samples.size() * analyzers.size());
  ASSERT_EQ(got.size(), want.size());
  for (size_t k = 0; k < got.size(); ++k) {
    EXPECT_EQ(got[k].sample, want[k].sample);
    EXPECT_EQ(got[k].method, want[k].method);
    EXPECT_EQ(got[k].target, want[k].target);
    expect_close(got[k].values, want[k].values,
                 "sample " + std::to_string(got[k].sample) + " method " + std::to_string(got[k].method));
  }
}

// SmoothGrad draws its noise from the seed and the sample's index in the run, not its row in a batch:
// one sample at a time and all six at once give the same explanations. The forward values of the two
// layouts differ only by float32 rounding (kernels chosen by batch size), far below the 1e-5 · max of
// expect_close unless a noisy pre-activation falls within that rounding of a ReLU's kink.
TEST(BatchRunner, SmoothGradDoesNotDependOnTheBatchLayout) {
  const Model model = Model::load(kModels + "mlp.onnx");
  const std::vector<Tensor> samples = six_samples();
  const std::unique_ptr<Analyzer> smoothgrad = create_analyzer(MethodSpec::parse("smoothgrad:n=4,seed=3"));
  const std::vector<Explanation> one =
      explain_samples(model, samples, {smoothgrad.get()}, TargetSelection(), 1);
  const std::vector<Explanation> all =
      explain_samples(model, samples, {smoothgrad.get()}, TargetSelection(), 6);
  ASSERT_EQ(one.size(), all.size());
  for (size_t k = 0; k < one.size(); ++k)
    expect_close(one[k].values, all[k].values, "sample " + std::to_string(k));
  // A different seed gives different draws, so the comparison above can fail.
  const std::unique_ptr<Analyzer> other = create_analyzer(MethodSpec::parse("smoothgrad:n=4,seed=4"));
  const std::vector<Explanation> reseeded =
      explain_samples(model, samples, {other.get()}, TargetSelection(), 6);
  double difference = 0.0;
  for (int64_t i = 0; i < all[0].values.size(); ++i)
    difference =
        std::max(difference, static_cast<double>(std::abs(all[0].values[i] - reseeded[0].values[i])));
  EXPECT_GT(difference, 1e-3);
}

TEST(BatchRunner, FixedBatchOfFourPredictsSixInputs) {
  const Model fixed = Model::load(kModels + "mlp_batch4.onnx");
  const Model dynamic = Model::load(kModels + "mlp.onnx");
  const std::vector<Tensor> samples = six_samples();
  const std::vector<Tensor> got = run_per_sample(fixed, samples), want = run_per_sample(dynamic, samples, 6);
  ASSERT_EQ(got.size(), 6u);
  for (size_t i = 0; i < got.size(); ++i) expect_close(got[i], want[i], "sample " + std::to_string(i));
}

TEST(BatchRunner, BatchesHoldRowsInOrderAndPadTheLastFixedBatch) {
  const Model fixed = Model::load(kModels + "mlp_batch4.onnx");
  const Model dynamic = Model::load(kModels + "mlp.onnx");
  const Shape row{1, 1, 12, 12};
  const RowSource numbered = [](int64_t i, float* d) { std::fill(d, d + 144, static_cast<float>(i)); };
  std::vector<std::pair<int64_t, int64_t>> seen;
  run_in_batches(fixed, 6, row, 32, numbered, [&](const Tensor& batch, int64_t begin, int64_t count) {
    seen.emplace_back(begin, count);
    ASSERT_EQ(batch.dim(0), 4);
    for (int64_t r = 0; r < 4; ++r)
      EXPECT_EQ(batch[r * 144], static_cast<float>(begin + std::min(r, count - 1)));
  });
  EXPECT_EQ(seen, (std::vector<std::pair<int64_t, int64_t>>{{0, 4}, {4, 2}}));
  seen.clear();
  run_in_batches(dynamic, 6, row, 4, numbered, [&](const Tensor& batch, int64_t begin, int64_t count) {
    seen.emplace_back(begin, count);
    EXPECT_EQ(batch.dim(0), count);
  });
  EXPECT_EQ(seen, (std::vector<std::pair<int64_t, int64_t>>{{0, 4}, {4, 2}}));
  const std::vector<Tensor> mixed{Tensor(Shape{1, 1, 12, 12}), Tensor(Shape{1, 1, 12, 11})};
  EXPECT_THROW(run_in_batches(dynamic, mixed, 4, [](const Tensor&, int64_t, int64_t) {}), Error);
}

}  // namespace
}  // namespace sieve
