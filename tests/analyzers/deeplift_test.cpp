// DeepLIFT's properties: on a bias-free ReLU network with a zero baseline it equals gradient × input
// (the book's Prop. 3: there every reference activation is 0, so each multiplier relu(z)/z is the
// gradient's gate), and without max pooling its attributions sum to f(x) − f(x̄) (summation to delta;
// max pooling routes to the arg-max, as the Captum reference does, which gives that up).

#include <gtest/gtest.h>

#include <cmath>

#include "sieve/analyzer.hpp"
#include "sieve/io/npy.hpp"
#include "sieve/methods.hpp"
#include "sieve/op.hpp"
#include "support/rounding.hpp"

namespace sieve {
namespace {

const std::string kShared = std::string(SIEVE_TEST_DATA) + "/shared/models/";

Tensor first_inputs(const std::string& model, int64_t n) {
  const Tensor all = read_npy(kShared + model + "_inputs.npy");
  Shape s = all.shape();
  s[0] = n;
  return Tensor(s, std::span<const float>(all.data(), static_cast<size_t>(n * (all.size() / all.dim(0)))));
}

Tensor explain(const Model& model, const std::string& method, const Tensor& x,
               const std::vector<int64_t>& targets) {
  const auto analyzer = create_analyzer(MethodSpec::parse(method));
  const ForwardPass pass(model, x, analyzer->trace_values(model));
  return analyzer->explain(pass, targets);
}

// Every bias of a linear layer set to zero.
void zero_biases(Model& model) {
  Graph& g = model.graph();
  for (const Node& node : g.nodes()) {
    if (node.op->as_linear() == nullptr || node.inputs.size() < 3 || node.inputs[2] < 0) continue;
    Value& bias = g.value(node.inputs[2]);
    bias.constant = Tensor(bias.constant.shape());
  }
}

TEST(DeepLift, EqualsGradientTimesInputOnBiasFreeReluNetworks) {
  for (const std::string name : {"mlp", "cnn"}) {
    Model model = Model::load(kShared + name + "_dynbatch.onnx");
    zero_biases(model);
    const Tensor x = first_inputs(name, 4);
    const std::vector<int64_t> targets{0, 3, 5, 9};
    const Tensor deeplift = explain(model, "deeplift", x, targets);
    const Tensor reference = explain(model, "input_x_gradient", x, targets);
    // Both are the same reverse pass through the same layers; the multipliers differ from the gates only
    // by the rounding of (g·z)/z, 2u relative, at each of the at most 5 activations and poolings on a
    // path, which the layers carry into sums of at most the magnitudes τ bounds (support/rounding.hpp).
    double scale = 0.0;
    for (float v : reference.values()) scale = std::max(scale, static_cast<double>(std::abs(v)));
    const double tol = forward_rounding_bound(model) * scale;
    ASSERT_EQ(deeplift.shape(), reference.shape());
    for (int64_t j = 0; j < x.size(); ++j) ASSERT_NEAR(deeplift[j], reference[j], tol) << name << " at " << j;
  }
}

TEST(DeepLift, SumsToTheChangeOfTheTarget) {
  for (const std::string name : {"mlp"}) {
    const Model model = Model::load(kShared + name + "_dynbatch.onnx");
    const Tensor x = first_inputs(name, 4);
    const std::vector<int64_t> targets{0, 3, 5, 9};
    for (const float baseline : {0.0f, -0.5f}) {
      const Tensor r = explain(model, "deeplift:baseline=" + std::to_string(baseline), x, targets);
      const Tensor fx = model.run({x}).at(0);
      const Tensor fb = model.run({Tensor(x.shape(), baseline)}).at(0);
      const int64_t per = x.size() / x.dim(0), classes = fx.dim(1);
      for (int64_t i = 0; i < x.dim(0); ++i) {
        double sum = 0.0, magnitude = 0.0;
        for (int64_t j = 0; j < per; ++j) {
          sum += r[i * per + j];
          magnitude += std::abs(r[i * per + j]);
        }
        const int64_t t = i * classes + targets[static_cast<size_t>(i)];
        const double change = static_cast<double>(fx[t]) - fb[t];
        // Two logits off by τ of their magnitudes (at least their values), and a reverse pass whose sums
        // are off by τ of theirs, at least the attributions' absolute sum.
        const double tol =
            forward_rounding_bound(model) * (std::abs(fx[t]) + std::abs(fb[t]) + magnitude) * 2.0;
        EXPECT_NEAR(sum, change, tol) << name << " baseline " << baseline << " input " << i;
      }
    }
  }
}

}  // namespace
}  // namespace sieve
