// Golden tests of the LRP and Deep Taylor analyzers against the Zennit references in tests/data/shared
// (float64 computations stored as float32, see tests/data/shared/README.md and refs/<model>/meta.json).
// Criterion per input: max|sieve − ref| ≤ 1e-4 · max|ref|. The relevance pass's float32 dot products run
// over the fan-outs, 394 terms in all for the mlp and 714 for the cnn: ≤ 714·u = 4.3e-5 of the
// magnitudes, plus u for the reference's float32 storage. The ratios a·w / z amplify the forward
// rounding only where z is small, and there the stabilizer bounds them; the references' own float32
// runs (meta.json "f32_vs_f64") land within 8.2e-7 of them.

#include <gtest/gtest.h>

#include <cmath>
#include <ostream>

#include "sieve/analyzer.hpp"
#include "sieve/error.hpp"
#include "sieve/io/npy.hpp"
#include "sieve/lrp.hpp"
#include "sieve/methods.hpp"

namespace sieve {
namespace {

const std::string kShared = std::string(SIEVE_TEST_DATA) + "/shared";
// The z^B bounds of the references: the normalised values of pixel 0 and pixel 255.
const std::string kLow = "-0.8101983002832861", kHigh = "2.0226628895184136";
const InputRange kRange{{-0.8101983002832861f}, {2.0226628895184136f}};

struct Case {
  std::string model, method, reference;
  bool range_from_context = false;  // z^B bounds through AnalyzerContext::input_range instead of parameters
};

// Names the case in test listings (GoogleTest would print its bytes).
void PrintTo(const Case& c, std::ostream* os) {
  *os << c.model << " " << c.method;
}

std::vector<int64_t> reference_targets(const std::string& model) {
  const Tensor t = read_npy(kShared + "/refs/" + model + "/targets.npy");
  std::vector<int64_t> targets;
  for (float v : t.values()) targets.push_back(static_cast<int64_t>(v));
  return targets;
}

// Per input: max|e − ref| / max|ref|.
std::vector<double> relative_errors(const Tensor& e, const Tensor& reference) {
  EXPECT_EQ(e.shape(), reference.shape());
  const int64_t n = reference.dim(0), per = reference.size() / n;
  std::vector<double> errors;
  for (int64_t i = 0; i < n; ++i) {
    double max_ref = 0.0, max_diff = 0.0;
    for (int64_t j = 0; j < per; ++j) {
      max_ref = std::max(max_ref, std::abs(static_cast<double>(reference[i * per + j])));
      max_diff = std::max(max_diff, std::abs(static_cast<double>(e[i * per + j]) - reference[i * per + j]));
    }
    errors.push_back(max_ref > 0.0 ? max_diff / max_ref : max_diff);
  }
  return errors;
}

class GoldenLrp : public ::testing::TestWithParam<Case> {};

TEST_P(GoldenLrp, MatchesReference) {
  const Case& c = GetParam();
  const Model model = Model::load(kShared + "/models/" + c.model + "_dynbatch.onnx");
  const Tensor inputs = read_npy(kShared + "/models/" + c.model + "_inputs.npy");
  const Tensor reference = read_npy(kShared + "/refs/" + c.model + "/" + c.reference + ".npy");
  AnalyzerContext context;
  if (c.range_from_context) context.input_range = kRange;
  const auto analyzer = create_analyzer(MethodSpec::parse(c.method), context);
  ASSERT_NE(dynamic_cast<const RelevanceAnalyzer*>(analyzer.get()), nullptr);
  const ForwardPass pass(model, inputs, analyzer->trace_values(model));
  const Tensor e = analyzer->explain(pass, reference_targets(c.model));
  ASSERT_EQ(e.shape(), inputs.shape());
  const std::vector<double> errors = relative_errors(e, reference);
  for (size_t i = 0; i < errors.size(); ++i)
    EXPECT_LE(errors[i], 1e-4) << c.model << " " << c.method << " input " << i;
}

std::vector<Case> cases() {
  const std::string bounds = ":low=" + kLow + ",high=" + kHigh;
  std::vector<Case> v;
  for (const char* m : {"mlp", "cnn"}) {
    v.push_back({m, "lrp.epsilon:epsilon=1e-6", "lrp_epsilon_1e-6"});
    v.push_back({m, "lrp.epsilon:epsilon=0.25", "lrp_epsilon_0.25"});
    v.push_back({m, "lrp.epsilon", "lrp_epsilon_0.25"});  // the default ε
    v.push_back({m, "lrp.z_plus", "lrp_zplus"});
    v.push_back({m, "lrp.alpha_2_beta_1", "lrp_alpha2beta1"});
    v.push_back({m, "lrp.alpha_beta:alpha=2,beta=1", "lrp_alpha2beta1"});
    v.push_back({m, "lrp.gamma", "lrp_gamma_0.25"});
    v.push_back({m, "lrp.epsilon_plus", "lrp_composite_epsilon_plus"});
    v.push_back({m, "lrp.epsilon_alpha_2_beta_1", "lrp_composite_epsilon_alpha2beta1"});
    v.push_back({m, "lrp.epsilon_plus_flat", "lrp_composite_epsilon_plus_flat"});
    v.push_back({m, "lrp.epsilon_gamma_box" + bounds, "lrp_composite_epsilon_gamma_box"});
    v.push_back({m, "lrp.epsilon_gamma_box", "lrp_composite_epsilon_gamma_box", true});
    v.push_back({m, "deep_taylor.bounded" + bounds, "lrp_deep_taylor_bounded"});
    v.push_back({m, "deep_taylor.bounded", "lrp_deep_taylor_bounded", true});
    v.push_back({m, "deep_taylor", "lrp_deep_taylor_wsquare"});
  }
  return v;
}

INSTANTIATE_TEST_SUITE_P(Shared, GoldenLrp, ::testing::ValuesIn(cases()), [](const auto& info) {
  std::string name =
      info.param.model + "_" + info.param.method + (info.param.range_from_context ? "_context" : "");
  const size_t colon = name.find(":low=");
  if (colon != std::string::npos) name = name.substr(0, colon) + "_params";
  for (char& ch : name) {
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  }
  return name;
});

// The bounds given as parameters and as the model's input range give the same explanation, and the
// parameters win over the context's range.
TEST(GoldenLrpBounds, ParametersAndInputRangeAgree) {
  const Model model = Model::load(kShared + "/models/cnn_dynbatch.onnx");
  const Tensor all = read_npy(kShared + "/models/cnn_inputs.npy");
  const int64_t per = all.size() / all.dim(0);
  Shape shape = all.shape();
  shape[0] = 4;
  const Tensor x(shape, std::span<const float>(all.data(), static_cast<size_t>(4 * per)));
  std::vector<int64_t> targets = reference_targets("cnn");
  targets.resize(4);
  for (const std::string method : {"lrp.epsilon_gamma_box", "deep_taylor.bounded"}) {
    AnalyzerContext with_range, wrong_range;
    with_range.input_range = kRange;
    wrong_range.input_range = InputRange{{-5.0f}, {5.0f}};
    const auto by_params =
        create_analyzer(MethodSpec::parse(method + ":low=" + kLow + ",high=" + kHigh), AnalyzerContext{});
    const auto by_context = create_analyzer(MethodSpec::parse(method), with_range);
    const auto params_win =
        create_analyzer(MethodSpec::parse(method + ":low=" + kLow + ",high=" + kHigh), wrong_range);
    const auto other = create_analyzer(MethodSpec::parse(method), wrong_range);
    const ForwardPass pass(model, x, by_params->trace_values(model));
    const Tensor a = by_params->explain(pass, targets), b = by_context->explain(pass, targets);
    const Tensor c = params_win->explain(pass, targets), d = other->explain(pass, targets);
    double diff_ab = 0.0, diff_ac = 0.0, diff_ad = 0.0;
    for (int64_t i = 0; i < a.size(); ++i) {
      diff_ab = std::max(diff_ab, static_cast<double>(std::abs(a[i] - b[i])));
      diff_ac = std::max(diff_ac, static_cast<double>(std::abs(a[i] - c[i])));
      diff_ad = std::max(diff_ad, static_cast<double>(std::abs(a[i] - d[i])));
    }
    EXPECT_EQ(diff_ab, 0.0) << method;
    EXPECT_EQ(diff_ac, 0.0) << method;
    EXPECT_GT(diff_ad, 1e-3) << method << ": the bounds have no effect";
    // Without bounds from either source the z^B rule cannot run.
    EXPECT_THROW(create_analyzer(MethodSpec::parse(method)), Error) << method;
  }
}

// explain_samples (batches split, targets chosen as the predicted class) gives the same as one pass.
TEST(GoldenLrpBounds, ExplainSamplesMatchesReference) {
  const Model model = Model::load(kShared + "/models/cnn_dynbatch.onnx");
  const Tensor all = read_npy(kShared + "/models/cnn_inputs.npy");
  const Tensor reference = read_npy(kShared + "/refs/cnn/lrp_composite_epsilon_plus.npy");
  const std::vector<int64_t> targets = reference_targets("cnn");
  const int64_t n = all.dim(0), per = all.size() / n;
  Shape one_shape = all.shape();
  one_shape[0] = 1;
  std::vector<Tensor> samples;
  for (int64_t i = 0; i < n; ++i)
    samples.emplace_back(one_shape, std::span<const float>(all.data() + i * per, static_cast<size_t>(per)));
  const auto analyzer = create_analyzer(MethodSpec::parse("lrp.epsilon_plus"));
  const std::vector<Explanation> e = explain_samples(model, samples, {analyzer.get()}, TargetSelection(), 5);
  ASSERT_EQ(e.size(), static_cast<size_t>(n));
  Tensor stacked = Tensor::uninitialized(all.shape());
  for (const Explanation& x : e) {
    EXPECT_EQ(x.target, targets[x.sample]);
    std::copy(x.values.data(), x.values.data() + per, stacked.data() + static_cast<int64_t>(x.sample) * per);
  }
  const std::vector<double> errors = relative_errors(stacked, reference);
  for (size_t i = 0; i < errors.size(); ++i) EXPECT_LE(errors[i], 1e-4) << "input " << i;
}

}  // namespace
}  // namespace sieve
