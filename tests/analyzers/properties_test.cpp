// Properties every gradient-family explanation must have: shape, linearity of the reverse pass in the
// seed, and completeness of Integrated Gradients.

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <map>

#include "sieve/analyzer.hpp"
#include "sieve/error.hpp"
#include "sieve/io/npy.hpp"
#include "sieve/methods.hpp"
#include "sieve/patterns.hpp"
#include "support/rounding.hpp"

namespace sieve {
namespace {

const std::string kModels = std::string(SIEVE_TEST_DATA) + "/shared/models/";

Tensor first_inputs(int64_t n) {
  const Tensor all = read_npy(kModels + "cnn_inputs.npy");
  const int64_t per = all.size() / all.dim(0);
  Shape s = all.shape();
  s[0] = n;
  return Tensor(s, std::span<const float>(all.data(), static_cast<size_t>(n * per)));
}

TEST(AnalyzerProperties, ExplanationsHaveTheInputShape) {
  const Model model = Model::load(kModels + "cnn_dynbatch.onnx");
  const Tensor x = first_inputs(3);
  AnalyzerContext context;
  context.input_range = InputRange{{-0.81f}, {2.02f}};
  // Patterns fitted on the inputs themselves: enough for shapes.
  PatternFile patterns;
  patterns.fingerprint = model_fingerprint(model);
  patterns.statistics = PatternStatistics(model);
  patterns.statistics.accumulate(model, x);
  patterns.patterns = estimate_patterns(model, patterns.statistics, PatternType::relu);
  context.patterns_file = ::testing::TempDir() + "/shape_test_" + std::to_string(getpid()) + ".safetensors";
  write_pattern_file(context.patterns_file, patterns);
  context.data = std::make_shared<const Tensor>(x);  // prediction_difference's statistics
  // The feature groups of ablation and LIME: the image's left and right halves.
  Tensor halves(Shape{1, 1, 28, 28}, 0.0f);
  for (int64_t j = 0; j < halves.size(); ++j) halves[j] = static_cast<float>(j % 28 >= 14);
  const std::string mask = ::testing::TempDir() + "/halves_" + std::to_string(getpid()) + ".npy";
  write_npy(mask, halves);
  const std::map<std::string, std::string> cheaper{{"integrated_gradients", ":steps=4"},
                                                   {"smoothgrad", ":n=3"},
                                                   {"rise", ":n=16"},
                                                   {"ablation", ":mask=" + mask},
                                                   {"lime", ":n=8,mask=" + mask},
                                                   {"prediction_difference", ":n=1,window=8,padding=1"}};
  for (const MethodInfo& m : available_methods()) {
    if (m.name == "cam") continue;  // needs a global average pooling, which this model lacks (cam_test)
    const auto it = cheaper.find(m.name);
    const auto a =
        create_analyzer(MethodSpec::parse(m.name + (it == cheaper.end() ? "" : it->second)), context);
    const ForwardPass pass(model, x, a->trace_values(model));
    EXPECT_EQ(a->explain(pass, {0, 1, 2}).shape(), x.shape()) << m.name;
  }
}

// R(a·s + b·t) = a·R(s) + b·R(t) for the reverse pass of every method that is one reverse pass.
TEST(AnalyzerProperties, ReversePassIsLinearInTheSeed) {
  for (const char* name : {"mlp", "cnn"}) {
    const Model model = Model::load(kModels + std::string(name) + "_dynbatch.onnx");
    const ForwardPass pass(model, first_inputs(2));
    const Tensor s = target_seed(pass.output().shape(), {1, 4}, {1.0f, 1.0f});
    const Tensor t = target_seed(pass.output().shape(), {7, 2}, {1.0f, 1.0f});
    Tensor mixed = Tensor::uninitialized(s.shape());
    for (int64_t i = 0; i < s.size(); ++i) mixed[i] = 2.0f * s[i] - 0.5f * t[i];
    const Tensor rs = pass.reverse(s), rt = pass.reverse(t), rm = pass.reverse(mixed);
    // Three float32 reverse passes through the same gates. Their dot products run over the fan-outs,
    // which add up to less than the fan-ins for these models, so each is within τ of its magnitude
    // (support/rounding.hpp), taken as the largest value: rm − (2rs − 0.5rt) is within
    // (2.5 + 2 + 0.5)·τ = 5τ of the largest |rs|, |rt|.
    double scale = 0.0;
    for (const Tensor* r : {&rs, &rt}) {
      for (float v : r->values()) scale = std::max(scale, static_cast<double>(std::abs(v)));
    }
    const double tol = 5.0 * forward_rounding_bound(model) * scale;
    for (int64_t i = 0; i < rm.size(); ++i) EXPECT_NEAR(rm[i], 2.0f * rs[i] - 0.5f * rt[i], tol) << name;
  }
}

// Σ IG = f(x) − f(baseline), up to the midpoint rule's quadrature error, which shrinks with the steps.
TEST(AnalyzerProperties, IntegratedGradientsIsComplete) {
  const Model model = Model::load(kModels + "cnn_dynbatch.onnx");
  const Tensor x = first_inputs(4);
  const ForwardPass pass(model, x);
  const ForwardPass zero(model, Tensor(x.shape()));
  const std::vector<int64_t> targets = TargetSelection().resolve(pass.output()).at(0);
  const int64_t classes = pass.output().dim(1), per = x.size() / x.dim(0);
  double error_32 = 0.0, error_256 = 0.0;
  for (int64_t steps : {32, 256}) {
    const Tensor ig =
        create_analyzer(MethodSpec::parse("integrated_gradients:steps=" + std::to_string(steps)))
            ->explain(pass, targets);
    for (int64_t i = 0; i < x.dim(0); ++i) {
      double sum = 0.0;
      for (int64_t j = 0; j < per; ++j) sum += ig[i * per + j];
      const int64_t t = targets[static_cast<size_t>(i)];
      const double delta = pass.output()[i * classes + t] - zero.output()[i * classes + t];
      const double rel = std::abs(sum - delta) / std::abs(delta);
      (steps == 32 ? error_32 : error_256) = std::max(steps == 32 ? error_32 : error_256, rel);
    }
  }
  // The midpoint rule's error on these inputs, a property of the model and the path, not of rounding;
  // float32 rounding adds at most about τ (1.2e-4) to each relative error, and 2τ to their difference.
  EXPECT_LT(error_32, 0.02);
  EXPECT_LT(error_256, 0.005);
  EXPECT_LE(error_256, error_32 + 2.0 * forward_rounding_bound(model));
}

TEST(AnalyzerProperties, BadMethodsAndTargetsAreRefused) {
  EXPECT_THROW(create_analyzer(MethodSpec::parse("no_such_method")), Error);
  EXPECT_THROW(create_analyzer(MethodSpec::parse("integrated_gradients:steps=0")), Error);
  EXPECT_THROW(create_analyzer(MethodSpec::parse("integrated_gradients:stepz=4")), Error);
  EXPECT_THROW(create_analyzer(MethodSpec::parse("gradient:postprocess=cube")), Error);
  EXPECT_THROW(MethodSpec::parse("gradient:abs"), Error);
  EXPECT_THROW(TargetSelection::parse("-1"), Error);
  EXPECT_THROW(TargetSelection::parse("two"), Error);
  const Model model = Model::load(kModels + "mlp_dynbatch.onnx");
  const ForwardPass pass(model, first_inputs(1));
  EXPECT_THROW(TargetSelection::parse("10").resolve(pass.output()), Error);
  EXPECT_EQ(TargetSelection::parse("all").resolve(pass.output()).size(), 10u);
}

}  // namespace
}  // namespace sieve
