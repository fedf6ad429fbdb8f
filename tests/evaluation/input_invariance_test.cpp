// The twin model of the input-invariance test (book ch. 14): on x + shift it gives what the model gives
// on x, with the shift folded into the first layer's bias (dense) or added after a zero-padded
// convolution; and the test's verdicts for the gradient (invariant) and gradient × input (not).

#include <gtest/gtest.h>

#include <cmath>

#include "sieve/error.hpp"
#include "sieve/evaluation.hpp"
#include "sieve/io/npy.hpp"
#include "sieve/methods.hpp"
#include "support/rounding.hpp"

namespace sieve {
namespace {

const std::string kModels = std::string(SIEVE_TEST_DATA) + "/shared/models/";

std::vector<Tensor> samples_of(const std::string& file, int64_t count) {
  const Tensor all = read_npy(file);
  std::vector<Tensor> out;
  for (int64_t i = 0; i < std::min(count, all.dim(0)); ++i) out.push_back(batch_row(all, i));
  return out;
}

std::vector<Tensor> samples(int64_t count) {
  return samples_of(kModels + "cnn_inputs.npy", count);
}

void expect_twin_matches(const std::string& path, const std::vector<Tensor>& inputs,
                         const std::vector<float>& shift, size_t extra_nodes) {
  const Model model = Model::load(path);
  Model twin = Model::load(path);
  shift_input(twin, shift);
  EXPECT_EQ(twin.graph().nodes().size(), model.graph().nodes().size() + extra_nodes) << path;
  const double tau = forward_rounding_bound(model);
  for (const Tensor& x : inputs) {
    const Tensor a = model.run({x})[0], b = twin.run({shifted(x, shift)})[0];
    double scale = 0.0;
    for (float v : a.values()) scale = std::max(scale, static_cast<double>(std::abs(v)));
    // Each run is within τ of the exact logits relative to their magnitude; the twin's first layer adds
    // the rounding of x + shift and of W·shift, two more roundings of first-layer terms (inside τ's
    // fan-in sum once more): 4τ of the logits' scale, as for the other forward comparisons of the suite.
    for (int64_t k = 0; k < a.size(); ++k)
      EXPECT_NEAR(b[k], a[k], 4.0 * tau * scale) << path << " logit " << k;
  }
}

TEST(InputInvariance, TwinOfADenseFirstLayerFoldsTheShiftIntoItsBias) {
  expect_twin_matches(kModels + "mlp_dynbatch.onnx", samples(16), {-1.0f}, 0);
}

TEST(InputInvariance, TwinOfAZeroPaddedConvolutionAddsThePerPositionCompensation) {
  expect_twin_matches(kModels + "cnn_dynbatch.onnx", samples(16), {-1.0f}, 1);
}

TEST(InputInvariance, TwinTakesOneShiftPerChannel) {
  // A 3-channel model whose first convolution is zero-padded: each channel's shift is compensated with
  // its own weights (a wrong channel would leave an O(1) difference in the logits).
  const std::string vgg = std::string(SIEVE_TEST_DATA) + "/models/vgg_small.onnx";
  expect_twin_matches(vgg, samples_of(std::string(SIEVE_TEST_DATA) + "/models/vgg_small_input.npy", 4),
                      {-1.0f, 0.5f, 2.0f}, 1);
}

TEST(InputInvariance, GradientIsInvariantAndGradientTimesInputIsNot) {
  const Model model = Model::load(kModels + "mlp_dynbatch.onnx");
  Model twin = Model::load(kModels + "mlp_dynbatch.onnx");
  shift_input(twin, {-1.0f});
  const std::vector<Tensor> x = samples(4);
  const std::vector<int64_t> targets = predicted_classes(model, x);
  auto verdict = [&](const std::string& method) {
    const std::unique_ptr<Analyzer> a = create_analyzer(MethodSpec::parse(method)),
                                    b = create_analyzer(MethodSpec::parse(method));
    a->prepare(model);
    b->prepare(twin);
    return input_invariance(model, *a, twin, *b, x, {-1.0f}, targets, 1e-3);
  };
  // The gradient's reverse pass is the same in both models; its ReLU gates agree unless a pre-activation
  // lies within rounding of 0, which moves a gradient entry by a whole path — none does in these inputs.
  const InputInvariance gradient = verdict("gradient");
  EXPECT_TRUE(gradient.passed) << gradient.max_relative_difference;
  EXPECT_LT(gradient.max_relative_difference, 4.0 * forward_rounding_bound(model));
  const InputInvariance gi = verdict("input_x_gradient");
  EXPECT_FALSE(gi.passed);
  EXPECT_GT(gi.max_relative_difference, 0.1);
}

TEST(InputInvariance, BadShiftsAreRefused) {
  Model twin = Model::load(kModels + "mlp_dynbatch.onnx");
  EXPECT_THROW(shift_input(twin, {1.0f, 2.0f}), Error);
  Model rgb = Model::load(std::string(SIEVE_TEST_DATA) + "/models/vgg_small.onnx");
  EXPECT_THROW(shift_input(rgb, {1.0f, 2.0f}), Error);  // 2 values for 3 channels
}

}  // namespace
}  // namespace sieve
