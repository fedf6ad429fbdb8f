// Class activation maps: CAM against the explicit Σ_k w_tk A_k of a model with a global average pooling
// head, the bilinear upsampling of Grad-CAM against its interpolation weights, Guided Grad-CAM as the
// product of its two parts, and the errors for layers CAM or Grad-CAM cannot map.

#include <gtest/gtest.h>

#include <cmath>

#include "sieve/analyzer.hpp"
#include "sieve/error.hpp"
#include "sieve/io/npy.hpp"
#include "sieve/methods.hpp"
#include "support/errors.hpp"
#include "support/rounding.hpp"

namespace sieve {
namespace {

const std::string kData = std::string(SIEVE_TEST_DATA);

const Node& node_named(const Graph& graph, const std::string& name) {
  for (const Node& node : graph.nodes()) {
    if (node.name == name) return node;
  }
  throw Error("no node " + name);
}

// mobilenet_small ends Add → GlobalAveragePool → Flatten → Gemm: CAM of class t is relu(Σ_k W[t, k] A_k)
// with A the Add's output and W the Gemm's weight [classes, channels].
TEST(Cam, WeighsTheLayerByTheHeadsWeights) {
  const Model model = Model::load(kData + "/models/mobilenet_small.onnx");
  const Tensor x = read_npy(kData + "/models/mobilenet_small_input.npy");
  const auto cam = create_analyzer(MethodSpec::parse("cam:upsample=0"));
  const ForwardPass pass(model, x, cam->trace_values(model));
  const std::vector<int64_t> targets{0, 3, 7, 9};
  const Tensor map = cam->explain(pass, targets);
  const Graph& graph = model.graph();
  const Tensor& a = pass.value(node_named(graph, "/blocks/blocks.2/Add").outputs.at(0));
  const Tensor& w = graph.value(node_named(graph, "/fc/Gemm").inputs.at(1)).constant;
  const int64_t n = a.dim(0), channels = a.dim(1), plane = a.size() / (n * channels);
  ASSERT_EQ(map.shape(), (Shape{n, 1, a.dim(2), a.dim(3)}));
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t p = 0; p < plane; ++p) {
      double want = 0.0, magnitude = 0.0;
      for (int64_t k = 0; k < channels; ++k) {
        const double term = static_cast<double>(w[targets[static_cast<size_t>(i)] * channels + k]) *
                            a[(i * channels + k) * plane + p];
        want += term;
        magnitude += std::abs(term);
      }
      // The weight comes back as `plane` float32 shares W/plane summed again: within plane·u of W.
      EXPECT_NEAR(map[i * plane + p], std::max(0.0, want), 2.0 * plane * kFloat32UnitRoundoff * magnitude)
          << "sample " << i << " position " << p;
    }
  }
}

// Half-pixel bilinear upsampling by 2 (PyTorch's align_corners=False): output 2y samples the map at
// y − ¼ and output 2y + 1 at y + ¼, so inside the map each output mixes two rows (and two columns) with
// weights ¾ and ¼.
TEST(GradCam, UpsamplesBilinearlyWithHalfPixelCentres) {
  const Model model = Model::load(kData + "/shared/models/cnn_dynbatch.onnx");
  const Tensor all = read_npy(kData + "/shared/models/cnn_inputs.npy");
  const Tensor x(Shape{2, 1, 28, 28}, std::span<const float>(all.data(), 2 * 784));
  const std::vector<int64_t> targets{0, 9};
  const auto raw = create_analyzer(MethodSpec::parse("grad_cam:upsample=0"));
  const auto upsampled = create_analyzer(MethodSpec::parse("grad_cam"));
  const ForwardPass pass(model, x, raw->trace_values(model));
  const Tensor m = raw->explain(pass, targets), u = upsampled->explain(pass, targets);
  ASSERT_EQ(m.shape(), (Shape{2, 1, 14, 14}));
  ASSERT_EQ(u.shape(), x.shape());
  const auto row = [](int64_t out, int64_t& lo, int64_t& hi) {
    lo = out / 2 - (out % 2 == 0 ? 1 : 0);
    hi = lo + 1;
    return out % 2 == 0 ? 0.75 : 0.25;  // the weight of `hi`
  };
  double scale = 0.0;
  for (float v : m.values()) scale = std::max(scale, static_cast<double>(v));
  for (int64_t i = 0; i < 2; ++i) {
    for (int64_t y = 1; y < 27; ++y) {
      for (int64_t c = 1; c < 27; ++c) {
        int64_t y0 = 0, y1 = 0, c0 = 0, c1 = 0;
        const double wy = row(y, y0, y1), wc = row(c, c0, c1);  // weight of y1 / c1
        const auto at = [&](int64_t r, int64_t s) { return static_cast<double>(m[(i * 14 + r) * 14 + s]); };
        const double want = (1 - wy) * ((1 - wc) * at(y0, c0) + wc * at(y0, c1)) +
                            wy * ((1 - wc) * at(y1, c0) + wc * at(y1, c1));
        // Three float32 interpolations of values at most `scale`.
        EXPECT_NEAR(u[(i * 28 + y) * 28 + c], want, 8.0 * kFloat32UnitRoundoff * scale) << y << "," << c;
      }
    }
  }
  const auto guided = create_analyzer(MethodSpec::parse("guided_grad_cam"));
  const auto guided_backprop = create_analyzer(MethodSpec::parse("guided_backprop"));
  const Tensor g = guided->explain(pass, targets), gb = guided_backprop->explain(pass, targets);
  for (int64_t j = 0; j < x.size(); ++j) EXPECT_EQ(g[j], gb[j] * u[j]) << j;
}

TEST(ActivationMapErrors, OneClearMessageEach) {
  const Model cnn = Model::load(kData + "/shared/models/cnn_dynbatch.onnx");
  const Tensor x(Shape{1, 1, 28, 28}, 0.5f);
  const auto run = [&](const std::string& method) {
    const auto a = create_analyzer(MethodSpec::parse(method));
    const ForwardPass pass(cnn, x, a->trace_values(cnn));
    a->explain(pass, {0});
  };
  EXPECT_EQ(error_of([&] { run("grad_cam:layer=/3/relu"); }),
            "grad_cam: unknown layer '/3/relu': no node or value of the model has that name (did you mean "
            "'/3/Relu'?)");
  EXPECT_EQ(error_of([&] { run("grad_cam:layer=/10/Relu"); }),
            "grad_cam: layer '/10/Relu_output_0' of shape [1,128] has no spatial axes to map");
  EXPECT_EQ(error_of([&] { run("cam"); }),
            "cam: the model has no global average pooling (CAM needs one before its last layers)");
  EXPECT_EQ(error_of([&] { run("cam:layer=/6/Relu"); }),
            "cam: layer '/6/Relu_output_0' is read by node '/7/MaxPool' (MaxPool); CAM needs it read by one "
            "global average pooling only (grad_cam works at any layer)");
}

}  // namespace
}  // namespace sieve
