// The linear-op abstraction: for every linear op and attribute combination, with random x, ȳ and
// substitute weights W,  ⟨apply(x, W, 0), ȳ⟩ = ⟨x, apply_transpose(ȳ, W)⟩ = ⟨W, weight_gradient(x, ȳ)⟩,
// and apply with the op's own parameters reproduces forward.

#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "sieve/op.hpp"
#include "sieve/op_spec.hpp"
#include "support/op_specs.hpp"
#include "support/regime_flips.hpp"
#include "support/rounding.hpp"

namespace sieve {
namespace {

struct LinearCase {
  std::string label;
  OpSpec spec;
  std::vector<Tensor> inputs;  // the op's own inputs (x first)
  Shape weight_shape;          // shape of the substitute weights to draw
};

Tensor random_tensor(const Shape& shape, std::mt19937& rng) {
  Tensor t = Tensor::uninitialized(shape);
  std::normal_distribution<float> normal;
  for (float& v : t.values()) v = normal(rng);
  return t;
}

double dot(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(a.shape(), b.shape());
  double s = 0.0;
  for (int64_t i = 0; i < a.size(); ++i) s += static_cast<double>(a[i]) * b[i];
  return s;
}

std::vector<LinearCase> cases() {
  std::mt19937 rng(11);
  auto r = [&](const Shape& s) { return random_tensor(s, rng); };
  std::vector<LinearCase> v;
  // Conv: 1-D, 2-D and 3-D; strides, asymmetric pads, dilations, groups, depthwise, auto_pad.
  struct ConvConfig {
    std::string label;
    Shape x, w;
    std::vector<int64_t> strides, pads, dilations;
    int64_t group;
    std::string auto_pad;
  };
  const std::vector<ConvConfig> convs{
      {"conv1d", {2, 3, 17}, {4, 3, 5}, {2}, {1, 3}, {1}, 1, ""},
      {"conv1d_dilated_same_upper", {1, 2, 12}, {3, 2, 3}, {1}, {}, {2}, 1, "SAME_UPPER"},
      {"conv2d_plain", {2, 3, 8, 9}, {5, 3, 3, 3}, {}, {}, {}, 1, ""},
      {"conv2d_stride_pad", {2, 3, 9, 8}, {4, 3, 3, 2}, {2, 3}, {1, 0, 2, 1}, {}, 1, ""},
      {"conv2d_dilation", {1, 2, 11, 10}, {3, 2, 3, 3}, {1, 2}, {2, 2, 2, 2}, {2, 3}, 1, ""},
      {"conv2d_groups", {2, 4, 7, 7}, {6, 2, 3, 3}, {1, 1}, {1, 1, 1, 1}, {}, 2, ""},
      {"conv2d_depthwise", {2, 5, 8, 8}, {5, 1, 3, 3}, {2, 2}, {1, 1, 1, 1}, {}, 5, ""},
      {"conv2d_depthwise_multiplier", {1, 3, 6, 6}, {6, 1, 3, 3}, {1, 1}, {0, 0, 0, 0}, {}, 3, ""},
      {"conv2d_same_lower", {1, 2, 7, 6}, {3, 2, 4, 3}, {2, 2}, {}, {}, 1, "SAME_LOWER"},
      {"conv2d_valid", {1, 2, 7, 6}, {3, 2, 3, 3}, {2, 1}, {}, {}, 1, "VALID"},
      {"conv3d", {1, 2, 5, 6, 4}, {3, 2, 2, 3, 2}, {1, 2, 1}, {0, 1, 1, 1, 0, 0}, {}, 1, ""},
  };
  for (const ConvConfig& c : convs) {
    OpSpec s = op_spec("Conv", 3);
    if (!c.strides.empty()) s.attributes.set("strides", c.strides);
    if (!c.pads.empty()) s.attributes.set("pads", c.pads);
    if (!c.dilations.empty()) s.attributes.set("dilations", c.dilations);
    if (!c.auto_pad.empty()) s.attributes.set("auto_pad", c.auto_pad);
    s.attributes.set("group", c.group);
    v.push_back({c.label, s, {r(c.x), r(c.w), r({c.w[0]})}, c.w});
  }
  struct TransposeConfig {
    std::string label;
    Shape x, w;
    std::vector<int64_t> strides, pads, output_padding, dilations, output_shape;
    int64_t group;
  };
  const std::vector<TransposeConfig> transposes{
      {"conv_transpose_plain", {2, 3, 5, 4}, {3, 4, 3, 3}, {}, {}, {}, {}, {}, 1},
      {"conv_transpose_stride_pad", {1, 4, 4, 5}, {4, 2, 3, 3}, {2, 2}, {1, 0, 1, 1}, {}, {}, {}, 1},
      {"conv_transpose_output_padding", {2, 2, 3, 3}, {2, 3, 3, 3}, {2, 3}, {}, {1, 2}, {}, {}, 1},
      {"conv_transpose_groups_dilation", {1, 4, 4, 4}, {4, 3, 2, 3}, {1, 2}, {0, 1, 0, 1}, {}, {2, 1}, {}, 2},
      {"conv_transpose_output_shape", {1, 1, 3, 3}, {1, 2, 3, 3}, {3, 2}, {}, {}, {}, {10, 8}, 1},
  };
  for (const TransposeConfig& c : transposes) {
    OpSpec s = op_spec("ConvTranspose", 3);
    if (!c.strides.empty()) s.attributes.set("strides", c.strides);
    if (!c.pads.empty()) s.attributes.set("pads", c.pads);
    if (!c.output_padding.empty()) s.attributes.set("output_padding", c.output_padding);
    if (!c.dilations.empty()) s.attributes.set("dilations", c.dilations);
    if (!c.output_shape.empty()) s.attributes.set("output_shape", c.output_shape);
    s.attributes.set("group", c.group);
    v.push_back({c.label, s, {r(c.x), r(c.w), r({c.w[1] * c.group})}, c.w});
  }
  for (int ta = 0; ta < 2; ++ta) {
    for (int tb = 0; tb < 2; ++tb) {
      OpSpec s = op_spec("Gemm", 3);
      s.attributes.set("transA", int64_t{ta});
      s.attributes.set("transB", int64_t{tb});
      s.attributes.set("alpha", 1.5f);
      s.attributes.set("beta", 0.5f);
      const Shape a = ta ? Shape{6, 4} : Shape{4, 6}, b = tb ? Shape{5, 6} : Shape{6, 5};
      v.push_back({"gemm_" + std::to_string(ta) + std::to_string(tb), s, {r(a), r(b), r({5})}, b});
    }
  }
  v.push_back({"matmul_2d", op_spec("MatMul", 2), {r({4, 6}), r({6, 3})}, {6, 3}});
  v.push_back({"matmul_batched_input", op_spec("MatMul", 2), {r({2, 3, 6}), r({6, 3})}, {6, 3}});
  for (int ceil = 0; ceil < 2; ++ceil) {
    for (int include = 0; include < 2; ++include) {
      OpSpec s = op_spec("AveragePool", 1);
      s.attributes.set("kernel_shape", std::vector<int64_t>{3, 3});
      s.attributes.set("strides", std::vector<int64_t>{2, 2});
      s.attributes.set("pads", std::vector<int64_t>{1, 0, 1, 1});
      s.attributes.set("ceil_mode", int64_t{ceil});
      s.attributes.set("count_include_pad", int64_t{include});
      const std::string label =
          "average_pool_ceil" + std::to_string(ceil) + "_include" + std::to_string(include);
      v.push_back({label + "_shared_kernel", s, {r({2, 3, 8, 7})}, {1, 1, 3, 3}});
      v.push_back({label + "_per_channel_kernel", s, {r({2, 3, 8, 7})}, {3, 1, 3, 3}});
    }
  }
  v.push_back({"global_average_pool", op_spec("GlobalAveragePool", 1), {r({2, 3, 4, 5})}, {1}});
  Tensor var = r({3});
  for (float& x : var.values()) x = std::abs(x) + 0.1f;
  v.push_back(
      {"batchnorm", op_spec("BatchNormalization", 5), {r({2, 3, 4, 4}), r({3}), r({3}), r({3}), var}, {3}});
  return v;
}

TEST(LinearOps, TransposeAndWeightGradientAreExact) {
  std::mt19937 rng(5);
  for (const LinearCase& c : cases()) {
    SCOPED_TRACE(c.label);
    const auto op = create_op(c.spec);
    const LinearOp* linear = op->as_linear();
    ASSERT_NE(linear, nullptr);
    const Tensor& x = c.inputs[0];
    // The op's own parameters reproduce its forward pass.
    const Tensor own = linear->apply(x, linear->weight(c.inputs), linear->bias(c.inputs));
    const Tensor forward = op->forward(c.inputs)[0];
    ASSERT_EQ(own.shape(), forward.shape());
    // Every linear op's forward is apply with its own weight() and bias(): the same float32 computation
    // on the same values, equal bit for bit; 1e-5 of 1 + |y| would still hold for an op that rounded its
    // parameters once more (a few u ≈ 6e-8 of O(1) terms, at most 27 of them here).
    for (int64_t i = 0; i < own.size(); ++i)
      EXPECT_NEAR(own[i], forward[i], 1e-5 * (1 + std::abs(forward[i])));
    // Substitute weights: ⟨A_W x, ȳ⟩ = ⟨x, A_Wᵀ ȳ⟩ = ⟨W, ∂/∂W⟩.
    const Tensor w = random_tensor(c.weight_shape, rng);
    const Tensor y = linear->apply(x, w, Tensor());
    const Tensor gy = random_tensor(y.shape(), rng);
    const double forward_dot = dot(y, gy);
    const double transpose_dot = dot(x, linear->apply_transpose(gy, w, x.shape()));
    const double weight_dot = dot(w, linear->weight_gradient(x, gy, w.shape()));
    // The three are double inner products of float32 results whose dot products have at most
    // n = max(|x|, |y|) terms (fan-in, fan-out, or batch × positions for the weight gradient), each off by
    // γ_n ≈ n·u of its magnitude: each of the three is off by up to (n + 1)·u·⟨|x|, |W|ᵀ|ȳ|⟩, two of them
    // differ by up to twice that.
    const double n = static_cast<double>(std::max(x.size(), y.size()));
    const double magnitude = dot(absolute(x), linear->apply_transpose(absolute(gy), absolute(w), x.shape()));
    const double scale = 2.0 * (n + 1.0) * kFloat32UnitRoundoff * magnitude;
    EXPECT_NEAR(transpose_dot, forward_dot, scale);
    EXPECT_NEAR(weight_dot, forward_dot, scale);
  }
}

}  // namespace
}  // namespace sieve
