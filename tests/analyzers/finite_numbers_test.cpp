// No method returns NaN or Inf on finite inputs: every registered method (and the parameter choices
// that change its divisions: log-odds, the α/β pairs, average pooling) on the adversarial models of
// tools/make_adversarial_models.py — a constant model, dead ReLUs, huge and tiny weights, only negative
// contributions, exact max-pool ties, a saturated softmax — each on a random, a constant and a zero
// image. No method may return a non-finite value; the one refusal expected is guided Grad-CAM on the
// huge model, whose two factors (≈ 6e24 each) have a product beyond float32's range.

#include <gtest/gtest.h>

#include <cmath>
#include <memory>

#include "sieve/analyzer.hpp"
#include "sieve/batch.hpp"
#include "sieve/error.hpp"
#include "sieve/io/npy.hpp"
#include "sieve/io/preprocess.hpp"
#include "sieve/io/stream.hpp"
#include "sieve/methods.hpp"
#include "sieve/patterns.hpp"
#include "support/test_files.hpp"

namespace sieve {
namespace {

const std::string kModels = std::string(SIEVE_TEST_DATA) + "/models/adversarial/";

// The methods' parameter choices that reach other divisions than their defaults.
const std::vector<std::string> kVariants = {
    "lrp.epsilon:logodds=1",
    "lrp.epsilon:maxpool=avg",
    "lrp.alpha_beta:alpha=1,beta=0",
    "lrp.gamma:gamma=100",
    "integrated_gradients:steps=4",
    "smoothgrad:noise_level=0.5",
    "occlusion:window=8",
    "occlusion:window=2,stride=1,fill=mean",
};

std::string mask_file() {
  // Four 4×4 quadrants, one group each.
  Tensor mask(Shape{1, 1, 8, 8});
  for (int64_t y = 0; y < 8; ++y)
    for (int64_t x = 0; x < 8; ++x) mask[y * 8 + x] = static_cast<float>((y / 4) * 2 + x / 4);
  const std::string path = temp("finite_numbers_mask.npy").string();
  write_npy(path, mask);
  return path;
}

std::vector<std::string> method_specs() {
  std::vector<std::string> specs;
  const std::string mask = mask_file();
  for (const MethodInfo& m : available_methods()) {
    bool takes_mask = false;
    for (const MethodParameter& p : m.parameters) takes_mask = takes_mask || p.name == "mask";
    specs.push_back(takes_mask ? m.name + ":mask=" + mask : m.name);
  }
  specs.insert(specs.end(), kVariants.begin(), kVariants.end());
  return specs;
}

class FiniteNumbers : public ::testing::TestWithParam<std::string> {};

TEST_P(FiniteNumbers, EveryMethodIsFiniteOrRefuses) {
  const Model model = Model::load(kModels + GetParam() + ".onnx");
  const Tensor inputs = read_npy(kModels + "inputs.npy");
  AnalyzerContext context;
  context.input_range = InputRange{{0.0f}, {1.0f}};
  context.data = std::make_shared<const Tensor>(inputs);  // prediction_difference samples from it
  try {
    InputStream data({kModels + "inputs.npy"}, Preprocessing{}, model.input_shapes().at(0));
    context.patterns =
        std::make_shared<const PatternFile>(fit_pattern_file(model, data, PatternType::relu, 3, "inputs"));
  } catch (const Error& e) {
    ADD_FAILURE() << "fitting patterns: " << e.what();
  }
  for (const std::string& spec : method_specs()) {
    SCOPED_TRACE(spec);
    std::unique_ptr<Analyzer> analyzer;
    Tensor r;
    try {
      analyzer = create_analyzer(MethodSpec::parse(spec), context);
      analyzer->prepare(model);
      const ForwardPass pass(model, inputs, analyzer->trace_values(model));
      r = analyzer->explain(pass, TargetSelection().resolve(pass.output()).at(0));
    } catch (const Error& e) {
      const bool expected = GetParam() == "huge" && spec == "guided_grad_cam" &&
                            std::string(e.what()).find("exceeds float32's range") != std::string::npos;
      EXPECT_TRUE(expected) << "refused: " << e.what();
      continue;
    }
    ASSERT_EQ(r.size(), inputs.size());
    int64_t bad = 0, first = -1;
    for (int64_t k = 0; k < r.size(); ++k) {
      if (!std::isfinite(r[k])) {
        ++bad;
        if (first < 0) first = k;
      }
    }
    EXPECT_EQ(bad, 0) << bad << " non-finite values, the first " << r[first] << " at " << first;
  }
}

INSTANTIATE_TEST_SUITE_P(Adversarial, FiniteNumbers,
                         ::testing::Values("zero", "dead_relu", "huge", "tiny", "negative", "ties",
                                           "saturated"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace sieve
