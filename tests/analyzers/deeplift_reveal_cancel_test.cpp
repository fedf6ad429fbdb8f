// DeepLIFT's RevealCancel rule: on one ReLU neuron against the rule's formulas written out, summation to
// delta on a dense ReLU network, equality with Rescale where every difference has one sign, and the
// refusal of ops the rule is not defined on.

#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include <cmath>

#include "sieve/analyzer.hpp"
#include "sieve/io/npy.hpp"
#include "sieve/methods.hpp"
#include "support/errors.hpp"
#include "support/rounding.hpp"

namespace sieve {
namespace {

const std::string kShared = std::string(SIEVE_TEST_DATA) + "/shared/models/";

struct Dense {
  std::vector<float> weights;  // [outputs, inputs], row-major
  std::vector<float> bias;
};

// Gemm layers on inputs [N, width] with a ReLU after each: a dynamic batch, logits of the last layer.
Model dense_relu_net(int64_t width, const std::vector<Dense>& layers) {
  onnx::ModelProto m;
  m.set_ir_version(8);
  m.add_opset_import()->set_version(13);
  auto* g = m.mutable_graph();
  g->set_name("dense");
  auto declare = [](onnx::ValueInfoProto* v, const std::string& name, int64_t dim) {
    v->set_name(name);
    auto* t = v->mutable_type()->mutable_tensor_type();
    t->set_elem_type(onnx::TensorProto::FLOAT);
    t->mutable_shape()->add_dim()->set_dim_param("N");
    t->mutable_shape()->add_dim()->set_dim_value(dim);
  };
  declare(g->add_input(), "x", width);
  std::string in = "x";
  for (size_t l = 0; l < layers.size(); ++l) {
    const std::string id = std::to_string(l);
    const int64_t outputs = static_cast<int64_t>(layers[l].bias.size());
    auto initializer = [&](const std::string& name, std::vector<int64_t> dims, const std::vector<float>& v) {
      auto* t = g->add_initializer();
      t->set_name(name);
      t->set_data_type(onnx::TensorProto::FLOAT);
      for (int64_t d : dims) t->add_dims(d);
      for (float f : v) t->add_float_data(f);
    };
    initializer("W" + id, {outputs, width}, layers[l].weights);
    initializer("b" + id, {outputs}, layers[l].bias);
    auto* gemm = g->add_node();
    gemm->set_op_type("Gemm");
    gemm->add_input(in);
    gemm->add_input("W" + id);
    gemm->add_input("b" + id);
    gemm->add_output("z" + id);
    auto* trans = gemm->add_attribute();
    trans->set_name("transB");
    trans->set_type(onnx::AttributeProto::INT);
    trans->set_i(1);
    auto* relu = g->add_node();
    relu->set_op_type("Relu");
    relu->add_input("z" + id);
    relu->add_output("a" + id);
    in = "a" + id;
    width = outputs;
  }
  declare(g->add_output(), in, width);
  std::string bytes;
  m.SerializeToString(&bytes);
  return Model::from_bytes(bytes, "dense.onnx");
}

Tensor explain(const Model& model, const std::string& method, const Tensor& x,
               const std::vector<int64_t>& targets) {
  const auto analyzer = create_analyzer(MethodSpec::parse(method));
  const ForwardPass pass(model, x, analyzer->trace_values(model));
  return analyzer->explain(pass, targets);
}

double relu(double v) {
  return std::max(v, 0.0);
}

TEST(DeepLiftRevealCancel, OneReluNeuronFollowsTheRulesFormulas) {
  const std::vector<float> w{2.0f, -1.0f, 0.5f};
  const float b = -0.3f;
  const Model model = dense_relu_net(3, {{w, {b}}});
  const float baseline = 0.1f;
  // One sample where the positive part alone would fire the neuron and the whole change does not (Rescale
  // gives 0 everywhere), and one where both parts matter.
  const Tensor x(Shape{2, 3}, std::vector<float>{0.5f, 0.9f, -0.4f, 0.7f, 0.3f, 0.6f});
  const Tensor r = explain(model, "deeplift:rule=reveal_cancel,baseline=0.1", x, {0, 0});
  for (int64_t i = 0; i < 2; ++i) {
    double z_ref = b, up = 0.0, down = 0.0, magnitude = std::abs(b);
    std::vector<double> term(3);
    for (int64_t j = 0; j < 3; ++j) {
      z_ref += static_cast<double>(w[j]) * baseline;
      term[j] = static_cast<double>(w[j]) * (x[i * 3 + j] - static_cast<double>(baseline));
      (term[j] > 0 ? up : down) += term[j];
      magnitude += std::abs(static_cast<double>(w[j]) * x[i * 3 + j]) + std::abs(w[j] * baseline);
    }
    const double y_up =
        0.5 * (relu(z_ref + up) - relu(z_ref)) + 0.5 * (relu(z_ref + down + up) - relu(z_ref + down));
    const double y_down =
        0.5 * (relu(z_ref + down) - relu(z_ref)) + 0.5 * (relu(z_ref + up + down) - relu(z_ref + up));
    for (int64_t j = 0; j < 3; ++j) {
      const double expected = term[j] > 0 ? term[j] * y_up / up : term[j] * y_down / down;
      // The pre-activations are dot products of length 3 (and the reference's), each off by 3u of their
      // magnitude; the differences and the ratio of two such values add a few u more.
      const double tol = 16.0 * 3.0 * kFloat32UnitRoundoff * magnitude;
      EXPECT_NEAR(r[i * 3 + j], expected, tol) << "sample " << i << " input " << j;
    }
  }
  // The first sample is the case RevealCancel exists for: z stays below 0 (Rescale: nothing), but the
  // positive and the negative terms each have an effect, and they cancel.
  EXPECT_GT(r[0], 0.1f);
  EXPECT_LT(r[1], -0.1f);
}

TEST(DeepLiftRevealCancel, SumsToTheChangeOfTheTarget) {
  const Model model = Model::load(kShared + "mlp_dynbatch.onnx");
  const Tensor all = read_npy(kShared + "mlp_inputs.npy");
  Shape s = all.shape();
  s[0] = 4;
  const Tensor x(s, std::span<const float>(all.data(), static_cast<size_t>(4 * (all.size() / all.dim(0)))));
  const std::vector<int64_t> targets{0, 3, 5, 9};
  for (const float baseline : {0.0f, -0.5f}) {
    const Tensor r =
        explain(model, "deeplift:rule=reveal_cancel,baseline=" + std::to_string(baseline), x, targets);
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
      // As for Rescale: two logits off by τ of their magnitudes (at least their values), and a forward
      // and a reverse pass of the parts whose sums are off by τ of theirs, at least the attributions'
      // absolute sum; four evaluations of each activation instead of two double the first term.
      const double tol =
          forward_rounding_bound(model) * (2.0 * (std::abs(fx[t]) + std::abs(fb[t])) + 2.0 * magnitude) * 2.0;
      EXPECT_NEAR(sum, change, tol) << "baseline " << baseline << " input " << i;
      EXPECT_GT(magnitude, 0.0);
    }
  }
}

TEST(DeepLiftRevealCancel, EqualsRescaleWhereEveryDifferenceHasOneSign) {
  // Positive weights and inputs above the baseline: every difference on the way is ≥ 0, so Δz⁻ = 0 and
  // Δy⁺ = f(z̄ + Δz⁺) − f(z̄) = Δy, the Rescale multiplier.
  const Model model = dense_relu_net(
      4, {{{0.5f, 0.2f, 0.1f, 0.7f, 0.3f, 0.9f, 0.4f, 0.2f, 0.6f, 0.1f, 0.8f, 0.3f}, {-0.4f, 0.1f, -1.2f}},
          {{0.7f, 0.2f, 0.5f, 0.1f, 0.9f, 0.3f}, {0.05f, -0.3f}}});
  const Tensor x(Shape{2, 4}, std::vector<float>{0.3f, 1.2f, 0.8f, 0.1f, 2.0f, 0.4f, 0.9f, 1.5f});
  const std::vector<int64_t> targets{0, 1};
  const Tensor reveal = explain(model, "deeplift:rule=reveal_cancel", x, targets);
  const Tensor rescale = explain(model, "deeplift", x, targets);
  double scale = 0.0;
  for (float v : rescale.values()) scale = std::max(scale, static_cast<double>(std::abs(v)));
  // The same quotients of the same differences, computed along two routes whose dot products (length at
  // most 4 per layer) differ by their rounding, τ of the magnitudes, and a few u for the quotients.
  const double tol = (forward_rounding_bound(model) + 8.0 * kFloat32UnitRoundoff) * 4.0 * scale;
  ASSERT_GT(scale, 0.0);
  for (int64_t j = 0; j < x.size(); ++j) EXPECT_NEAR(reveal[j], rescale[j], tol) << "at " << j;
}

TEST(DeepLiftRevealCancel, RefusesMaxPoolingWithTheNode) {
  const Model model = Model::load(kShared + "cnn_dynbatch.onnx");
  const Tensor all = read_npy(kShared + "cnn_inputs.npy");
  Shape s = all.shape();
  s[0] = 1;
  const Tensor x(s, std::span<const float>(all.data(), static_cast<size_t>(all.size() / all.dim(0))));
  const std::string message = error_of([&] { explain(model, "deeplift:rule=reveal_cancel", x, {0}); });
  EXPECT_NE(message.find("rule=reveal_cancel: node '"), std::string::npos) << message;
  EXPECT_NE(message.find("MaxPool"), std::string::npos) << message;
}

}  // namespace
}  // namespace sieve
