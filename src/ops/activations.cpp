// Element-wise functions beyond the rectifier family: the activations of recent architectures
// (HardSigmoid, HardSwish, Gelu, SiLU, Softplus, Selu, PRelu) and the functions exporters spell LayerNorm,
// GELU and friends with (Erf, Exp, Log, Neg, Abs, Sqrt, Reciprocal, Sin, Cos, Pow).

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <numbers>

#include "ops/common.hpp"
#include "ops/elementwise_kernels.hpp"
#include "ops/factories.hpp"

namespace sieve::ops {
namespace {

enum class Function {
  hard_sigmoid,
  hard_swish,
  erf,
  gelu,
  gelu_tanh,
  softplus,
  selu,
  exp,
  log,
  neg,
  abs,
  sqrt,
  reciprocal,
  sin,
  cos,
  silu
};

// √(2/π) and the cubic coefficient of GELU's tanh approximation (Hendrycks & Gimpel 2016).
constexpr float kGeluTanhScale = 0.7978845608028654f;
constexpr float kGeluTanhCubic = 0.044715f;

class ActivationOp : public Op {
 public:
  explicit ActivationOp(const OpSpec& spec) : where_(spec.where()), type_(spec.op_type) {
    static const std::map<std::string, Function> functions{{"HardSigmoid", Function::hard_sigmoid},
                                                           {"HardSwish", Function::hard_swish},
                                                           {"Erf", Function::erf},
                                                           {"Gelu", Function::gelu},
                                                           {"Softplus", Function::softplus},
                                                           {"Selu", Function::selu},
                                                           {"Exp", Function::exp},
                                                           {"Log", Function::log},
                                                           {"Neg", Function::neg},
                                                           {"Abs", Function::abs},
                                                           {"Sqrt", Function::sqrt},
                                                           {"Reciprocal", Function::reciprocal},
                                                           {"Sin", Function::sin},
                                                           {"SiLU", Function::silu},
                                                           {"Cos", Function::cos}};
    function_ = functions.at(type_);
    if (function_ == Function::hard_sigmoid) {
      alpha_ = spec.attributes.get_float("alpha", 0.2f);
      beta_ = spec.attributes.get_float("beta", 0.5f);
    }
    if (function_ == Function::selu) {
      alpha_ = spec.attributes.get_float("alpha", 1.67326319217681884765625f);
      gamma_ = spec.attributes.get_float("gamma", 1.05070102214813232421875f);
    }
    if (function_ == Function::gelu) {
      const std::string approximate = spec.attributes.get_string("approximate", "none");
      if (approximate == "tanh")
        function_ = Function::gelu_tanh;
      else if (approximate != "none")
        spec.fail("unknown approximate '" + approximate + "' (none or tanh)");
    }
  }
  std::string_view type() const override { return type_; }
  bool is_gate() const override { return function_ == Function::hard_sigmoid; }
  OpRole role(std::span<const bool>) const override {
    switch (function_) {
      case Function::hard_sigmoid:
      case Function::erf:
      case Function::softplus:
      case Function::selu:
      case Function::exp:
      case Function::log:
      case Function::sqrt:
        return OpRole::monotone_activation;
      case Function::neg:
        return OpRole::proportional;  // a scaling by −1
      default:
        return OpRole::nonmonotone_activation;
    }
  }
  std::vector<Tensor> forward(std::span<const Tensor> inputs) const override {
    expect_inputs(inputs, 1, 1, where_);
    const Tensor& x = inputs[0];
    const float a = alpha_, b = beta_, g = gamma_;
    switch (function_) {
      case Function::hard_sigmoid:
        return {map_unary(x, [a, b](float v) { return std::clamp(a * v + b, 0.0f, 1.0f); })};
      case Function::hard_swish:
        return {map_unary(x, [](float v) { return v * std::clamp(v / 6.0f + 0.5f, 0.0f, 1.0f); })};
      case Function::erf:
        return {map_unary(x, [](float v) { return std::erf(v); })};
      case Function::gelu:
        return {map_unary(
            x, [](float v) { return 0.5f * v * (1.0f + std::erf(v * std::numbers::sqrt2_v<float> / 2)); })};
      case Function::gelu_tanh:
        return {map_unary(x, [](float v) {
          return 0.5f * v * (1.0f + std::tanh(kGeluTanhScale * (v + kGeluTanhCubic * v * v * v)));
        })};
      case Function::softplus:
        // log(1 + eˣ) without overflow: max(x, 0) + log1p(e^−|x|).
        return {map_unary(x, [](float v) { return std::max(v, 0.0f) + std::log1p(std::exp(-std::abs(v))); })};
      case Function::selu:
        return {map_unary(x, [a, g](float v) { return v > 0.0f ? g * v : g * a * std::expm1(v); })};
      case Function::exp:
        return {map_unary(x, [](float v) { return std::exp(v); })};
      case Function::log:
        return {map_unary(x, [](float v) { return std::log(v); })};
      case Function::neg:
        return {map_unary(x, [](float v) { return -v; })};
      case Function::abs:
        return {map_unary(x, [](float v) { return std::abs(v); })};
      case Function::sqrt:
        return {map_unary(x, [](float v) { return std::sqrt(v); })};
      case Function::reciprocal:
        return {map_unary(x, [](float v) { return 1.0f / v; })};
      case Function::sin:
        return {map_unary(x, [](float v) { return std::sin(v); })};
      case Function::cos:
        return {map_unary(x, [](float v) { return std::cos(v); })};
      case Function::silu:
        return {map_unary(x, [](float v) { return v / (1.0f + std::exp(-v)); })};
    }
    throw Error(where_ + ": unknown function");
  }
  // ȳ ⊙ f'(x), the derivative taken at the input (one-sided at the kinks of HardSigmoid, HardSwish
  // and Abs, as in PyTorch: the flat side at the HardSigmoid corners, sign(0) = 0 for Abs).
  std::vector<Tensor> vjp(const VjpArgs& args) const override {
    const Tensor& gy = args.grad_outputs[0];
    if (gy.empty() || !args.wanted[0]) return {Tensor()};
    const Tensor& x = args.inputs[0];
    const float a = alpha_, b = beta_, g = gamma_;
    switch (function_) {
      case Function::hard_sigmoid:
        return {zip(gy, x, [a, b](float d, float v) {
          const float z = a * v + b;
          return z > 0.0f && z < 1.0f ? d * a : 0.0f;
        })};
      case Function::hard_swish:
        return {zip(gy, x, [](float d, float v) {
          return v < -3.0f ? 0.0f : v > 3.0f ? d : d * (v / 3.0f + 0.5f);
        })};
      case Function::erf:
        return {zip(gy, x, [](float d, float v) {
          return d * std::numbers::inv_sqrtpi_v<float> * 2.0f * std::exp(-v * v);
        })};
      case Function::gelu:
        // Φ(x) + x·φ(x).
        return {zip(gy, x, [](float d, float v) {
          const float cdf = 0.5f * (1.0f + std::erf(v * std::numbers::sqrt2_v<float> / 2));
          const float pdf =
              std::exp(-0.5f * v * v) * std::numbers::inv_sqrtpi_v<float> / std::numbers::sqrt2_v<float>;
          return d * (cdf + v * pdf);
        })};
      case Function::gelu_tanh:
        return {zip(gy, x, [](float d, float v) {
          const float t = std::tanh(kGeluTanhScale * (v + kGeluTanhCubic * v * v * v));
          const float dt = (1.0f - t * t) * kGeluTanhScale * (1.0f + 3.0f * kGeluTanhCubic * v * v);
          return d * (0.5f * (1.0f + t) + 0.5f * v * dt);
        })};
      case Function::softplus:
        return {zip(gy, x, [](float d, float v) { return d / (1.0f + std::exp(-v)); })};
      case Function::selu:
        return {zip(gy, x, [a, g](float d, float v) { return v > 0.0f ? d * g : d * g * a * std::exp(v); })};
      case Function::exp:
        return {zip(gy, x, [](float d, float v) { return d * std::exp(v); })};
      case Function::log:
        return {zip(gy, x, [](float d, float v) { return d / v; })};
      case Function::neg:
        return {map_unary(gy, [](float d) { return -d; })};
      case Function::abs:
        return {zip(gy, x, [](float d, float v) { return v > 0.0f ? d : v < 0.0f ? -d : 0.0f; })};
      case Function::sqrt:
        return {zip(gy, x, [](float d, float v) { return d * 0.5f / std::sqrt(v); })};
      case Function::reciprocal:
        return {zip(gy, x, [](float d, float v) { return -d / (v * v); })};
      case Function::sin:
        return {zip(gy, x, [](float d, float v) { return d * std::cos(v); })};
      case Function::cos:
        return {zip(gy, x, [](float d, float v) { return -d * std::sin(v); })};
      case Function::silu:
        // σ(x)·(1 + x·(1 − σ(x))).
        return {zip(gy, x, [](float d, float v) {
          const float s = 1.0f / (1.0f + std::exp(-v));
          return d * s * (1.0f + v * (1.0f - s));
        })};
    }
    throw Error(where_ + ": unknown function");
  }
  VjpReads vjp_reads(size_t, size_t) const override { return {{function_ != Function::neg}, {false}}; }

 private:
  std::string where_, type_;
  Function function_;
  float alpha_ = 0.0f, beta_ = 0.0f, gamma_ = 0.0f;
};

// y = x where x ≥ 0, slope·x elsewhere; the slope broadcasts to x (per channel in practice). Before
// opset 7 a 1-D slope holds one value per channel (axis 1).
class PReluOp : public Op {
 public:
  explicit PReluOp(const OpSpec& spec) : where_(spec.where()), per_channel_(spec.opset < 7) {}
  std::string_view type() const override { return "PRelu"; }
  OpRole role(std::span<const bool> varying) const override {
    return varying.size() > 1 && varying[1] ? scaling_or_product(varying) : OpRole::monotone_activation;
  }
  std::vector<Tensor> forward(std::span<const Tensor> inputs) const override {
    expect_inputs(inputs, 2, 2, where_);
    const Tensor y = broadcast_binary(inputs[0], aligned_slope(inputs[1], inputs[0].rank()), where_,
                                      [](float v, float s) { return v >= 0.0f ? v : s * v; });
    if (y.shape() != inputs[0].shape())
      throw Error(where_ + ": slope of shape " + to_string(inputs[1].shape()) + " does not broadcast to X " +
                  to_string(inputs[0].shape()));
    return {y};
  }
  std::vector<Tensor> vjp(const VjpArgs& args) const override {
    std::vector<Tensor> grads(2);
    const Tensor& gy = args.grad_outputs[0];
    if (gy.empty()) return grads;
    const Tensor& x = args.inputs[0];
    const Tensor slope = aligned_slope(args.inputs[1], x.rank());
    if (args.wanted[0]) {
      const Tensor gate =
          broadcast_binary(x, slope, where_, [](float v, float s) { return v >= 0.0f ? 1.0f : s; });
      grads[0] = zip(gy, gate, [](float d, float k) { return d * k; });
    }
    if (args.wanted[1]) {
      const Tensor negative = zip(gy, x, [](float d, float v) { return v >= 0.0f ? 0.0f : d * v; });
      grads[1] = reduce_to_shape(negative, slope.shape(), where_).reshaped(args.input_shapes[1]);
    }
    return grads;
  }
  VjpReads vjp_reads(size_t, size_t) const override { return {{true, true}, {false}}; }

 private:
  Tensor aligned_slope(const Tensor& slope, int64_t rank) const {
    if (!per_channel_ || slope.rank() != 1 || slope.size() == 1 || rank < 2) return slope;
    Shape s(static_cast<size_t>(rank - 1), 1);
    s[0] = slope.size();
    return slope.reshaped(s);
  }
  std::string where_;
  bool per_channel_;
};

// y = a^b with numpy broadcasting. Exporters raise to a constant power (x², √ as x^0.5).
class PowOp : public Op {
 public:
  explicit PowOp(const OpSpec& spec) : where_(spec.where()) {}
  std::string_view type() const override { return "Pow"; }
  OpRole role(std::span<const bool> varying) const override {
    const bool both = varying.size() > 1 && varying[0] && varying[1];
    return both ? OpRole::product : OpRole::nonmonotone_activation;
  }
  std::vector<Tensor> forward(std::span<const Tensor> inputs) const override {
    expect_inputs(inputs, 2, 2, where_);
    return {broadcast_binary(inputs[0], inputs[1], where_, [](float a, float b) { return power(a, b); })};
  }
  // ∂/∂a = b·a^(b−1); ∂/∂b = aᵇ·ln a (0 at a = 0, as in PyTorch).
  std::vector<Tensor> vjp(const VjpArgs& args) const override {
    std::vector<Tensor> grads(2);
    const Tensor& gy = args.grad_outputs[0];
    if (gy.empty()) return grads;
    const Tensor &a = args.inputs[0], &b = args.inputs[1];
    if (args.wanted[0]) {
      const Tensor slope =
          broadcast_binary(a, b, where_, [](float x, float p) { return p * power(x, p - 1.0f); });
      grads[0] = reduce_to_shape(broadcast_binary(gy, slope, where_, std::multiplies<float>()),
                                 args.input_shapes[0], where_);
    }
    if (args.wanted[1]) {
      const Tensor slope = broadcast_binary(
          a, b, where_, [](float x, float p) { return x == 0.0f ? 0.0f : power(x, p) * std::log(x); });
      grads[1] = reduce_to_shape(broadcast_binary(gy, slope, where_, std::multiplies<float>()),
                                 args.input_shapes[1], where_);
    }
    return grads;
  }
  VjpReads vjp_reads(size_t, size_t) const override { return {{true, true}, {false}}; }

 private:
  // Squares (the common case in LayerNorm) exactly as x·x.
  static float power(float a, float b) { return b == 2.0f ? a * a : std::pow(a, b); }
  std::string where_;
};

}  // namespace

std::unique_ptr<Op> make_activation(const OpSpec& spec) {
  return std::make_unique<ActivationOp>(spec);
}
std::unique_ptr<Op> make_prelu(const OpSpec& spec) {
  return std::make_unique<PReluOp>(spec);
}
std::unique_ptr<Op> make_pow(const OpSpec& spec) {
  return std::make_unique<PowOp>(spec);
}

}  // namespace sieve::ops
