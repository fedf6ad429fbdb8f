// Element-wise ops: activations, Clip, broadcasting arithmetic, Softmax/LogSoftmax, Where, Expand.
// Plain loops the compiler vectorizes, parallel with OpenMP on large tensors.

#include <algorithm>
#include <cmath>
#include <functional>
#include <optional>

#include "ops/common.hpp"
#include "ops/elementwise_kernels.hpp"
#include "ops/factories.hpp"

namespace sieve::ops {
namespace {

class UnaryOp : public Op {
 public:
  UnaryOp(const OpSpec& spec) : where_(spec.where()), type_(spec.op_type) {
    alpha_ = spec.attributes.get_float("alpha", type_ == "LeakyRelu" ? 0.01f : 1.0f);
  }
  std::string_view type() const override { return type_; }
  OpRole role(std::span<const bool>) const override { return OpRole::monotone_activation; }
  bool is_relu() const override { return type_ == "Relu"; }
  bool is_gate() const override { return type_ == "Sigmoid"; }
  std::vector<Tensor> forward(std::span<const Tensor> inputs) const override {
    expect_inputs(inputs, 1, 1, where_);
    const Tensor& x = inputs[0];
    const float a = alpha_;
    if (type_ == "Relu") return {map_unary(x, [](float v) { return v > 0.0f ? v : 0.0f; })};
    if (type_ == "LeakyRelu") return {map_unary(x, [a](float v) { return v >= 0.0f ? v : a * v; })};
    if (type_ == "Elu") return {map_unary(x, [a](float v) { return v >= 0.0f ? v : a * std::expm1(v); })};
    if (type_ == "Sigmoid") return {map_unary(x, [](float v) { return 1.0f / (1.0f + std::exp(-v)); })};
    return {map_unary(x, [](float v) { return std::tanh(v); })};
  }
  std::vector<Tensor> vjp(const VjpArgs& a) const override {
    const Tensor& g = a.grad_outputs[0];
    if (g.empty() || !a.wanted[0]) return {Tensor()};
    const float al = alpha_;
    if (type_ == "Relu")
      return {zip(g, a.outputs[0], [](float gy, float y) { return y > 0.0f ? gy : 0.0f; })};
    if (type_ == "LeakyRelu")
      return {zip(g, a.inputs[0], [al](float gy, float x) { return x >= 0.0f ? gy : al * gy; })};
    if (type_ == "Elu")
      return {
          zip(g, a.inputs[0], [al](float gy, float x) { return x >= 0.0f ? gy : gy * al * std::exp(x); })};
    if (type_ == "Sigmoid")
      return {zip(g, a.outputs[0], [](float gy, float y) { return gy * y * (1.0f - y); })};
    return {zip(g, a.outputs[0], [](float gy, float y) { return gy * (1.0f - y * y); })};
  }
  VjpReads vjp_reads(size_t, size_t) const override {
    const bool from_input = type_ == "LeakyRelu" || type_ == "Elu";
    return {{from_input}, {!from_input}};
  }

 private:
  std::string where_, type_;
  float alpha_;
};

class ClipOp : public Op {
 public:
  ClipOp(const OpSpec& spec) : where_(spec.where()), bounds_as_inputs_(spec.opset >= 11) {
    min_ = spec.attributes.get_float("min", -std::numeric_limits<float>::infinity());
    max_ = spec.attributes.get_float("max", std::numeric_limits<float>::infinity());
  }
  std::string_view type() const override { return "Clip"; }
  OpRole role(std::span<const bool>) const override { return OpRole::monotone_activation; }
  std::vector<Tensor> forward(std::span<const Tensor> inputs) const override {
    expect_inputs(inputs, 1, 3, where_);
    float lo = min_, hi = max_;
    if (bounds_as_inputs_) {
      lo = bound(inputs, 1, -std::numeric_limits<float>::infinity());
      hi = bound(inputs, 2, std::numeric_limits<float>::infinity());
    }
    return {map_unary(inputs[0], [lo, hi](float v) { return std::min(std::max(v, lo), hi); })};
  }
  // Gradient passes where the input lies within [min, max] (bounds included, as in PyTorch).
  std::vector<Tensor> vjp(const VjpArgs& a) const override {
    std::vector<Tensor> grads(a.inputs.size());
    if (a.grad_outputs[0].empty() || !a.wanted[0]) return grads;
    float lo = min_, hi = max_;
    if (bounds_as_inputs_) {
      lo = bound(a.inputs, 1, -std::numeric_limits<float>::infinity());
      hi = bound(a.inputs, 2, std::numeric_limits<float>::infinity());
    }
    grads[0] = zip(a.grad_outputs[0], a.inputs[0],
                   [lo, hi](float g, float x) { return x >= lo && x <= hi ? g : 0.0f; });
    return grads;
  }

 private:
  float bound(std::span<const Tensor> inputs, size_t i, float fallback) const {
    const Tensor& t = optional_input(inputs, i);
    if (t.empty()) return fallback;
    if (t.size() != 1) throw Error(where_ + ": min/max must be scalars, got shape " + to_string(t.shape()));
    return t[0];
  }
  std::string where_;
  bool bounds_as_inputs_;
  float min_, max_;
};

class BinaryOp : public Op {
 public:
  BinaryOp(const OpSpec& spec)
      : where_(spec.where()), type_(spec.op_type), integer_division_(spec.integer_output && type_ == "Div") {
    // Before opset 7, broadcasting was opt-in and B could be aligned to A at an explicit axis.
    if (spec.opset < 7 && spec.attributes.get_int("broadcast", 0) != 0 && spec.attributes.has("axis")) {
      legacy_axis_ = spec.attributes.get_int("axis", 0);
    }
  }
  std::string_view type() const override { return type_; }
  OpRole role(std::span<const bool> varying) const override {
    return type_ == "Mul" || type_ == "Div" ? scaling_or_product(varying) : OpRole::proportional;
  }
  std::vector<Tensor> forward(std::span<const Tensor> inputs) const override {
    expect_inputs(inputs, 2, 2, where_);
    const Tensor& a = inputs[0];
    const Tensor b = legacy_axis_ ? aligned_at_axis(inputs[1], a.rank()) : inputs[1];
    if (type_ == "Add") return {broadcast_binary(a, b, where_, std::plus<float>())};
    if (type_ == "Sub") return {broadcast_binary(a, b, where_, std::minus<float>())};
    if (type_ == "Mul") return {broadcast_binary(a, b, where_, std::multiplies<float>())};
    // Integer division truncates toward zero (exporters compute sizes such as (n + 2) / 3 with it); the
    // float quotient of integers below 2^24 never rounds across an integer, so truncating it is exact.
    if (integer_division_)
      return {broadcast_binary(a, b, where_, [](float x, float y) { return std::trunc(x / y); })};
    return {broadcast_binary(a, b, where_, std::divides<float>())};
  }
  std::vector<Tensor> vjp(const VjpArgs& args) const override {
    std::vector<Tensor> grads(2);
    const Tensor& g = args.grad_outputs[0];
    if (g.empty()) return grads;
    const Shape& as = args.input_shapes[0];
    const Shape bs = legacy_axis_ ? aligned_shape(args.input_shapes[1], static_cast<int64_t>(as.size()))
                                  : args.input_shapes[1];
    auto to_b = [&](const Tensor& t) {
      return reduce_to_shape(t, bs, where_).reshaped(args.input_shapes[1]);
    };
    if (type_ == "Add" || type_ == "Sub") {
      if (args.wanted[0]) grads[0] = reduce_to_shape(g, as, where_);
      if (args.wanted[1]) {
        grads[1] = to_b(type_ == "Add"
                            ? g
                            : broadcast_binary(g, Tensor(Shape{}, -1.0f), where_, std::multiplies<float>()));
      }
      return grads;
    }
    const Tensor& a = args.inputs[0];
    const Tensor b = legacy_axis_ ? args.inputs[1].reshaped(bs) : args.inputs[1];
    if (type_ == "Mul") {
      if (args.wanted[0])
        grads[0] = reduce_to_shape(broadcast_binary(g, b, where_, std::multiplies<float>()), as, where_);
      if (args.wanted[1]) grads[1] = to_b(broadcast_binary(g, a, where_, std::multiplies<float>()));
      return grads;
    }
    // Div: ∂(a/b)/∂a = 1/b, ∂(a/b)/∂b = −a/b².
    if (args.wanted[0])
      grads[0] = reduce_to_shape(broadcast_binary(g, b, where_, std::divides<float>()), as, where_);
    if (args.wanted[1]) {
      const Tensor q = broadcast_binary(a, b, where_, std::divides<float>());
      const Tensor qb = broadcast_binary(q, b, where_, std::divides<float>());
      grads[1] = to_b(broadcast_binary(g, qb, where_, [](float x, float y) { return -x * y; }));
    }
    return grads;
  }
  VjpReads vjp_reads(size_t, size_t) const override {
    const bool reads = type_ == "Mul" || type_ == "Div";
    return {{reads, reads}, {false}};
  }

 private:
  Shape aligned_shape(const Shape& b, int64_t rank) const {
    return aligned_at_axis(Tensor::uninitialized(b), rank).shape();
  }
  // B reshaped to A's rank with its dimensions starting at the legacy axis.
  Tensor aligned_at_axis(const Tensor& b, int64_t rank) const {
    const int64_t axis = normalize_axis(*legacy_axis_, rank, where_);
    if (axis + b.rank() > rank) throw Error(where_ + ": B does not fit A at axis " + std::to_string(axis));
    Shape s(static_cast<size_t>(rank), 1);
    for (int64_t d = 0; d < b.rank(); ++d) s[static_cast<size_t>(axis + d)] = b.dim(d);
    return b.reshaped(s);
  }
  std::string where_, type_;
  bool integer_division_;
  std::optional<int64_t> legacy_axis_;
};

// Comparisons and logic (Equal, Less, Greater, LessOrEqual, GreaterOrEqual, And, Or, Xor, Not): masks
// as 0/1, through which no gradient flows.
class MaskOp : public Op {
 public:
  explicit MaskOp(const OpSpec& spec) : where_(spec.where()), type_(spec.op_type) {}
  std::string_view type() const override { return type_; }
  OpRole role(std::span<const bool>) const override { return OpRole::shape_only; }
  std::vector<Tensor> forward(std::span<const Tensor> inputs) const override {
    if (type_ == "Not") {
      expect_inputs(inputs, 1, 1, where_);
      return {map_unary(inputs[0], [](float v) { return v != 0.0f ? 0.0f : 1.0f; })};
    }
    expect_inputs(inputs, 2, 2, where_);
    const Tensor &a = inputs[0], &b = inputs[1];
    auto mask = [&](auto predicate) {
      return broadcast_binary(a, b, where_,
                              [predicate](float x, float y) { return predicate(x, y) ? 1.0f : 0.0f; });
    };
    if (type_ == "Equal") return {mask(std::equal_to<float>())};
    if (type_ == "Less") return {mask(std::less<float>())};
    if (type_ == "Greater") return {mask(std::greater<float>())};
    if (type_ == "LessOrEqual") return {mask(std::less_equal<float>())};
    if (type_ == "GreaterOrEqual") return {mask(std::greater_equal<float>())};
    if (type_ == "And") return {mask([](float x, float y) { return x != 0.0f && y != 0.0f; })};
    if (type_ == "Or") return {mask([](float x, float y) { return x != 0.0f || y != 0.0f; })};
    return {mask([](float x, float y) { return (x != 0.0f) != (y != 0.0f); })};
  }
  std::vector<Tensor> vjp(const VjpArgs& a) const override { return std::vector<Tensor>(a.inputs.size()); }
  VjpReads vjp_reads(size_t n, size_t m) const override {
    return {std::vector<bool>(n, false), std::vector<bool>(m, false)};
  }

 private:
  std::string where_, type_;
};

// Softmax / LogSoftmax. Before opset 13 the input is coerced to 2-D at `axis` (default 1) and normalized
// over the flattened trailing part; from opset 13 over the single axis (default -1).
class SoftmaxOp : public Op {
 public:
  SoftmaxOp(const OpSpec& spec) : where_(spec.where()), type_(spec.op_type), coerce_2d_(spec.opset < 13) {
    axis_ = spec.attributes.get_int("axis", coerce_2d_ ? 1 : -1);
  }
  std::string_view type() const override { return type_; }
  OpRole role(std::span<const bool>) const override { return OpRole::softmax; }
  std::vector<Tensor> forward(std::span<const Tensor> inputs) const override {
    expect_inputs(inputs, 1, 1, where_);
    const Tensor& x = inputs[0];
    int64_t outer, len, inner;
    split(x.shape(), outer, len, inner);
    Tensor y = Tensor::uninitialized(x.shape());
    const bool log = type_ == "LogSoftmax";
#pragma omp parallel for collapse(2) if (x.size() > kParallelThreshold)
    for (int64_t o = 0; o < outer; ++o) {
      for (int64_t i = 0; i < inner; ++i) {
        const float* px = x.data() + o * len * inner + i;
        float* py = y.data() + o * len * inner + i;
        float m = -std::numeric_limits<float>::infinity();
        for (int64_t k = 0; k < len; ++k) m = std::max(m, px[k * inner]);
        double sum = 0.0;
        for (int64_t k = 0; k < len; ++k) sum += std::exp(static_cast<double>(px[k * inner] - m));
        const double log_sum = std::log(sum);
        for (int64_t k = 0; k < len; ++k) {
          const double z = static_cast<double>(px[k * inner] - m);
          py[k * inner] = static_cast<float>(log ? z - log_sum : std::exp(z - log_sum));
        }
      }
    }
    return {y};
  }
  // Softmax: x̄ = y ⊙ (ȳ − Σ ȳ⊙y); LogSoftmax: x̄ = ȳ − softmax(x) Σ ȳ.
  std::vector<Tensor> vjp(const VjpArgs& a) const override {
    const Tensor& g = a.grad_outputs[0];
    const Tensor& y = a.outputs[0];
    if (g.empty() || !a.wanted[0]) return {Tensor()};
    int64_t outer, len, inner;
    split(y.shape(), outer, len, inner);
    Tensor gx = Tensor::uninitialized(y.shape());
    const bool log = type_ == "LogSoftmax";
    for (int64_t o = 0; o < outer; ++o) {
      for (int64_t i = 0; i < inner; ++i) {
        const int64_t base = o * len * inner + i;
        double dot = 0.0;
        for (int64_t k = 0; k < len; ++k)
          dot += static_cast<double>(g[base + k * inner]) * (log ? 1.0f : y[base + k * inner]);
        for (int64_t k = 0; k < len; ++k) {
          const int64_t idx = base + k * inner;
          gx[idx] = log ? static_cast<float>(g[idx] - std::exp(y[idx]) * dot)
                        : static_cast<float>(y[idx] * (g[idx] - dot));
        }
      }
    }
    return {gx};
  }
  VjpReads vjp_reads(size_t, size_t) const override {
    return {{false}, {true}};
  }

 private:
  void split(const Shape& s, int64_t& outer, int64_t& len, int64_t& inner) const {
    const int64_t rank = std::max<int64_t>(static_cast<int64_t>(s.size()), 1);
    const int64_t axis = normalize_axis(axis_, rank, where_);
    outer = len = inner = 1;
    for (int64_t d = 0; d < static_cast<int64_t>(s.size()); ++d) {
      if (d < axis)
        outer *= s[static_cast<size_t>(d)];
      else if (d == axis || coerce_2d_)
        len *= s[static_cast<size_t>(d)];
      else
        inner *= s[static_cast<size_t>(d)];
    }
  }
  std::string where_, type_;
  bool coerce_2d_;
  int64_t axis_;
};

class WhereOp : public Op {
 public:
  WhereOp(const OpSpec& spec) : where_(spec.where()) {}
  std::string_view type() const override { return "Where"; }
  OpRole role(std::span<const bool>) const override { return OpRole::data_movement; }
  std::vector<Tensor> forward(std::span<const Tensor> inputs) const override {
    expect_inputs(inputs, 3, 3, where_);
    // select(c, x, y) = c ? x : y, built from two broadcasts so all three operands broadcast together.
    const Tensor picked_x =
        broadcast_binary(inputs[0], inputs[1], where_, [](float c, float x) { return c != 0.0f ? x : 0.0f; });
    const Tensor mask = broadcast_binary(inputs[0], inputs[1], where_,
                                         [](float c, float) { return c != 0.0f ? 1.0f : 0.0f; });
    const Tensor picked_y =
        broadcast_binary(mask, inputs[2], where_, [](float m, float y) { return m != 0.0f ? 0.0f : y; });
    return {broadcast_binary(picked_x, picked_y, where_, std::plus<float>())};
  }
  std::vector<Tensor> vjp(const VjpArgs& a) const override {
    std::vector<Tensor> grads(3);
    const Tensor& g = a.grad_outputs[0];
    if (g.empty()) return grads;
    const Tensor& c = a.inputs[0];
    if (a.wanted[1])
      grads[1] = reduce_to_shape(
          broadcast_binary(g, c, where_, [](float v, float m) { return m != 0.0f ? v : 0.0f; }),
          a.input_shapes[1], where_);
    if (a.wanted[2])
      grads[2] = reduce_to_shape(
          broadcast_binary(g, c, where_, [](float v, float m) { return m != 0.0f ? 0.0f : v; }),
          a.input_shapes[2], where_);
    return grads;
  }
  VjpReads vjp_reads(size_t, size_t) const override { return {{true, false, false}, {false}}; }

 private:
  std::string where_;
};

class ExpandOp : public Op {
 public:
  ExpandOp(const OpSpec& spec) : where_(spec.where()) {}
  std::string_view type() const override { return "Expand"; }
  OpRole role(std::span<const bool>) const override { return OpRole::data_movement; }
  std::vector<Tensor> forward(std::span<const Tensor> inputs) const override {
    expect_inputs(inputs, 2, 2, where_);
    const std::vector<int64_t> dims = to_ints(inputs[1]);
    const Tensor ones(Shape(dims.begin(), dims.end()), 1.0f);
    return {broadcast_binary(inputs[0], ones, where_, [](float x, float) { return x; })};
  }
  std::vector<Tensor> vjp(const VjpArgs& a) const override {
    std::vector<Tensor> grads(2);
    if (!a.grad_outputs[0].empty() && a.wanted[0])
      grads[0] = reduce_to_shape(a.grad_outputs[0], a.input_shapes[0], where_);
    return grads;
  }
  VjpReads vjp_reads(size_t, size_t) const override { return {{false, true}, {false}}; }

 private:
  std::string where_;
};

}  // namespace

std::unique_ptr<Op> make_unary(const OpSpec& spec) {
  return std::make_unique<UnaryOp>(spec);
}
std::unique_ptr<Op> make_clip(const OpSpec& spec) {
  return std::make_unique<ClipOp>(spec);
}
std::unique_ptr<Op> make_binary(const OpSpec& spec) {
  return std::make_unique<BinaryOp>(spec);
}
std::unique_ptr<Op> make_mask(const OpSpec& spec) {
  return std::make_unique<MaskOp>(spec);
}
std::unique_ptr<Op> make_softmax(const OpSpec& spec) {
  return std::make_unique<SoftmaxOp>(spec);
}
std::unique_ptr<Op> make_where(const OpSpec& spec) {
  return std::make_unique<WhereOp>(spec);
}
std::unique_ptr<Op> make_expand(const OpSpec& spec) {
  return std::make_unique<ExpandOp>(spec);
}

}  // namespace sieve::ops
