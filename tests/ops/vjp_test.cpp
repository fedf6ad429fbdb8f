// Every op's vector-Jacobian product against central finite differences: for random ȳ and a random
// direction d, ⟨vjp(ȳ)_i, d⟩ must equal (⟨f(x + h·d), ȳ⟩ − ⟨f(x − h·d), ȳ⟩) / 2h, with the inner products
// accumulated in double. Inputs of piecewise-linear ops are kept away from their kinks.

#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "sieve/op.hpp"
#include "sieve/op_spec.hpp"
#include "support/op_specs.hpp"

namespace sieve {
namespace {

struct Input {
  Tensor value;
  bool differentiable = true;
};

struct VjpCase {
  std::string label;
  OpSpec spec;
  std::vector<Input> inputs;
  double step = 1e-2;
};

Tensor random_tensor(const Shape& shape, std::mt19937& rng, float away_from = 0.0f) {
  Tensor t = Tensor::uninitialized(shape);
  std::normal_distribution<float> normal;
  for (float& v : t.values()) {
    v = normal(rng);
    // Keep |v| ≥ away_from so a small step never crosses a kink at 0.
    if (away_from > 0.0f) v = v >= 0 ? v + away_from : v - away_from;
  }
  return t;
}

// A tensor of distinct values (no ties) for max-type ops: a random permutation of 0.1·k.
Tensor distinct_tensor(const Shape& shape, std::mt19937& rng) {
  Tensor t = Tensor::uninitialized(shape);
  std::vector<int> order(static_cast<size_t>(t.size()));
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int>(i);
  std::shuffle(order.begin(), order.end(), rng);
  for (int64_t i = 0; i < t.size(); ++i)
    t[i] = 0.1f * static_cast<float>(order[static_cast<size_t>(i)]) - 5.0f;
  return t;
}

double dot(const Tensor& a, const Tensor& b) {
  double s = 0.0;
  for (int64_t i = 0; i < a.size(); ++i) s += static_cast<double>(a[i]) * b[i];
  return s;
}

void check(const VjpCase& c) {
  SCOPED_TRACE(c.label);
  const auto op = create_op(c.spec);
  std::vector<Tensor> inputs;
  std::vector<Shape> shapes;
  for (const Input& in : c.inputs) {
    inputs.push_back(in.value);
    shapes.push_back(in.value.shape());
  }
  const std::vector<Tensor> outputs = op->forward(inputs);
  std::mt19937 rng(7);
  const Tensor gy = random_tensor(outputs[0].shape(), rng);
  std::vector<Tensor> grads_out{gy};
  for (size_t k = 1; k < outputs.size(); ++k) grads_out.emplace_back();
  std::unique_ptr<bool[]> wanted(new bool[c.inputs.size()]);
  for (size_t i = 0; i < c.inputs.size(); ++i) wanted[i] = c.inputs[i].differentiable;
  const VjpArgs args{inputs, shapes, outputs, grads_out,
                     std::span<const bool>(wanted.get(), c.inputs.size())};
  const std::vector<Tensor> grads = op->vjp(args);
  for (size_t i = 0; i < c.inputs.size(); ++i) {
    if (!c.inputs[i].differentiable) continue;
    ASSERT_FALSE(grads.at(i).empty()) << "no gradient for input " << i;
    ASSERT_EQ(grads[i].shape(), shapes[i]);
    const Tensor d = random_tensor(shapes[i], rng);
    auto shifted = [&](double sign) {
      std::vector<Tensor> moved = inputs;
      moved[i] = inputs[i].clone();
      for (int64_t j = 0; j < d.size(); ++j) moved[i][j] += static_cast<float>(sign * c.step) * d[j];
      return dot(op->forward(moved)[0], gy);
    };
    const double numeric = (shifted(1.0) - shifted(-1.0)) / (2.0 * c.step);
    const double analytic = dot(grads[i], d);
    // The quotient's error: truncation h²/6·⟨f''', ȳ⟩ (h = 1e-2, 1e-3 for the curved ops) and the float32
    // rounding of the two forward values divided by 2h. Those have at most 18-term dot products and a few
    // hundred O(1) outputs; their independent rounding errors add up as √n·u per value and √outputs over ȳ
    // (probabilistic rounding analysis, Higham & Mary 2019; the worst case n·u is not approached by sums of
    // random signs): ≈ u/h·√18·√360 ≈ 5e-4 at h = 1e-2 and u/h·√3·√24 ≈ 5e-4 at 1e-3 (elementwise and
    // softmax ops), of O(1) values: under 2e-3·(1 + |numeric|).
    EXPECT_NEAR(analytic, numeric, 2e-3 * (std::abs(numeric) + 1.0)) << "input " << i;
  }
}

std::vector<VjpCase> cases() {
  std::mt19937 rng(1);
  std::vector<VjpCase> v;
  auto r = [&](const Shape& s, float away = 0.0f) { return random_tensor(s, rng, away); };
  auto constant = [](Tensor t) { return Input{std::move(t), false}; };
  auto ints = [](std::vector<float> values) {
    return Input{Tensor(Shape{static_cast<int64_t>(values.size())}, values), false};
  };

  {  // Conv 2-D: stride, asymmetric pads, dilation, groups; gradients for x, W and b.
    OpSpec s = op_spec("Conv", 3);
    s.attributes.set("strides", std::vector<int64_t>{2, 1});
    s.attributes.set("pads", std::vector<int64_t>{1, 0, 2, 1});
    s.attributes.set("dilations", std::vector<int64_t>{1, 2});
    s.attributes.set("group", int64_t{2});
    v.push_back({"conv2d", s, {{r({2, 4, 7, 8})}, {r({6, 2, 3, 3})}, {r({6})}}});
  }
  {
    OpSpec s = op_spec("Conv", 2);
    s.attributes.set("auto_pad", std::string("SAME_UPPER"));
    s.attributes.set("strides", std::vector<int64_t>{2});
    v.push_back({"conv1d_same", s, {{r({2, 3, 11})}, {r({4, 3, 4})}}});
  }
  {
    OpSpec s = op_spec("Conv", 2);
    s.attributes.set("group", int64_t{3});
    s.attributes.set("pads", std::vector<int64_t>{1, 1, 1, 1});
    v.push_back({"conv_depthwise", s, {{r({1, 3, 5, 5})}, {r({3, 1, 3, 3})}}});
  }
  {
    OpSpec s = op_spec("ConvTranspose", 3);
    s.attributes.set("strides", std::vector<int64_t>{2, 2});
    s.attributes.set("pads", std::vector<int64_t>{1, 0, 0, 1});
    s.attributes.set("output_padding", std::vector<int64_t>{1, 1});
    s.attributes.set("group", int64_t{2});
    v.push_back({"conv_transpose", s, {{r({2, 4, 4, 5})}, {r({4, 3, 3, 3})}, {r({6})}}});
  }
  for (int ta = 0; ta < 2; ++ta) {
    for (int tb = 0; tb < 2; ++tb) {
      OpSpec s = op_spec("Gemm", 3);
      s.attributes.set("transA", int64_t{ta});
      s.attributes.set("transB", int64_t{tb});
      s.attributes.set("alpha", 0.7f);
      s.attributes.set("beta", 1.3f);
      const Shape a = ta ? Shape{5, 3} : Shape{3, 5}, b = tb ? Shape{4, 5} : Shape{5, 4};
      v.push_back({"gemm_t" + std::to_string(ta) + std::to_string(tb), s, {{r(a)}, {r(b)}, {r({1, 4})}}});
    }
  }
  v.push_back({"matmul_batched", op_spec("MatMul", 2), {{r({2, 3, 4, 5})}, {r({3, 5, 2})}}});
  v.push_back({"matmul_layer", op_spec("MatMul", 2), {{r({2, 3, 5})}, constant(r({5, 4}))}});
  {
    OpSpec s = op_spec("AveragePool", 1);
    s.attributes.set("kernel_shape", std::vector<int64_t>{3, 3});
    s.attributes.set("strides", std::vector<int64_t>{2, 2});
    s.attributes.set("pads", std::vector<int64_t>{1, 1, 1, 1});
    s.attributes.set("ceil_mode", int64_t{1});
    s.attributes.set("count_include_pad", int64_t{1});
    v.push_back({"average_pool", s, {{r({2, 3, 6, 7})}}});
  }
  v.push_back({"global_average_pool", op_spec("GlobalAveragePool", 1), {{r({2, 3, 4, 5})}}});
  {
    OpSpec s = op_spec("MaxPool", 1);
    s.attributes.set("kernel_shape", std::vector<int64_t>{2, 3});
    s.attributes.set("strides", std::vector<int64_t>{2, 2});
    s.attributes.set("pads", std::vector<int64_t>{0, 1, 1, 1});
    v.push_back({"max_pool", s, {{distinct_tensor({2, 2, 5, 6}, rng)}}});
  }
  v.push_back({"global_max_pool", op_spec("GlobalMaxPool", 1), {{distinct_tensor({2, 3, 4, 4}, rng)}}});
  v.push_back(
      {"batchnorm",
       op_spec("BatchNormalization", 5),
       {{r({2, 3, 4})}, constant(r({3})), constant(r({3})), constant(r({3})), constant(Tensor({3}, 0.5f))}});
  for (const char* act : {"Relu", "LeakyRelu", "Elu"})
    v.push_back({act, op_spec(act, 1), {{r({3, 7}, 0.1f)}}});
  for (const char* act : {"Sigmoid", "Tanh"}) v.push_back({act, op_spec(act, 1), {{r({3, 7})}}, 1e-3});
  {
    OpSpec s = op_spec("Clip", 1, 9);
    s.attributes.set("min", -0.5f);
    s.attributes.set("max", 0.6f);
    Tensor x = distinct_tensor({4, 5}, rng);     // steps of 0.1 never reach -0.5 or 0.6 exactly...
    for (float& val : x.values()) val += 0.05f;  // ...once shifted off the grid
    v.push_back({"clip", s, {{x}}, 1e-3});
  }
  v.push_back({"add", op_spec("Add", 2), {{r({2, 3, 4})}, {r({3, 1})}}});
  v.push_back({"sub", op_spec("Sub", 2), {{r({2, 3, 4})}, {r({4})}}});
  v.push_back({"mul", op_spec("Mul", 2), {{r({2, 3, 4})}, {r({1, 3, 1})}}});
  {
    Tensor b = r({2, 1, 4}, 0.5f);
    v.push_back({"div", op_spec("Div", 2), {{r({2, 3, 4})}, {b}}, 1e-3});
  }
  for (int64_t opset : {11, 13}) {
    for (const char* t : {"Softmax", "LogSoftmax"}) {
      OpSpec s = op_spec(t, 1, opset);
      s.attributes.set("axis", int64_t{1});
      v.push_back({std::string(t) + std::to_string(opset), s, {{r({2, 3, 4})}}, 1e-3});
    }
  }
  v.push_back({"flatten", op_spec("Flatten", 1), {{r({2, 3, 4})}}});
  v.push_back({"reshape", op_spec("Reshape", 2), {{r({2, 3, 4})}, ints({0, -1})}});
  {
    OpSpec s = op_spec("Transpose", 1);
    s.attributes.set("perm", std::vector<int64_t>{2, 0, 1});
    v.push_back({"transpose", s, {{r({2, 3, 4})}}});
  }
  {
    OpSpec s = op_spec("Concat", 3);
    s.attributes.set("axis", int64_t{1});
    v.push_back({"concat", s, {{r({2, 1, 3})}, {r({2, 4, 3})}, {r({2, 2, 3})}}});
  }
  v.push_back({"squeeze", op_spec("Squeeze", 2), {{r({2, 1, 3})}, ints({1})}});
  v.push_back({"unsqueeze", op_spec("Unsqueeze", 2), {{r({2, 3})}, ints({0, 3})}});
  v.push_back({"pad",
               op_spec("Pad", 3),
               {{r({2, 3, 4})}, ints({0, 1, -1, 0, 2, 1}), constant(Tensor(Shape{}, 0.5f))}});
  v.push_back({"identity", op_spec("Identity", 1), {{r({3, 4})}}});
  v.push_back({"dropout", op_spec("Dropout", 1, 13, 2), {{r({3, 4})}}});
  {
    OpSpec s = op_spec("Gather", 2);
    s.attributes.set("axis", int64_t{1});
    v.push_back(
        {"gather", s, {{r({2, 4, 3})}, Input{Tensor(Shape{2, 2}, std::vector<float>{0, -1, 2, 0}), false}}});
  }
  v.push_back({"slice",
               op_spec("Slice", 5),
               {{r({3, 6, 4})}, ints({5, 1}), ints({0, -1}), ints({1, 2}), ints({-2, 1})}});
  v.push_back({"expand", op_spec("Expand", 2), {{r({3, 1})}, ints({2, 3, 4})}});
  v.push_back(
      {"where",
       op_spec("Where", 3),
       {Input{Tensor(Shape{1, 4}, std::vector<float>{1, 0, 0, 1}), false}, {r({3, 4})}, {r({3, 1})}}});
  {
    OpSpec s = op_spec("Cast", 1);
    s.attributes.set("to", int64_t{1});
    v.push_back({"cast", s, {{r({5})}}});
  }
  {
    // A grid −4.05, −3.85, …: at least 0.05 from the kinks of HardSigmoid (±2.5), HardSwish (±3) and Abs (0),
    // farther than a step of 1e-3·|d| reaches.
    Tensor grid = Tensor::uninitialized({6, 7});
    for (int64_t i = 0; i < grid.size(); ++i) grid[i] = -4.05f + 0.2f * static_cast<float>(i);
    for (const char* f : {"HardSigmoid", "HardSwish", "Abs"})
      v.push_back({f, op_spec(f, 1, 14), {{grid}}, 1e-3});
  }
  for (const char* f : {"Erf", "Gelu", "SiLU", "Softplus", "Selu", "Exp", "Neg", "Sin", "Cos"})
    v.push_back({f, op_spec(f, 1), {{r({3, 7}, 0.1f)}}, 1e-3});
  {
    OpSpec s = op_spec("Gelu", 1);
    s.attributes.set("approximate", std::string("tanh"));
    v.push_back({"gelu_tanh", s, {{r({3, 7})}}, 1e-3});
  }
  for (const char* f : {"Log", "Sqrt", "Reciprocal"}) {
    Tensor positive = r({3, 7});
    for (float& val : positive.values()) val = std::abs(val) + 0.5f;
    v.push_back({f, op_spec(f, 1), {{positive}}, 1e-3});
  }
  v.push_back({"prelu", op_spec("PRelu", 2), {{r({2, 3, 4}, 0.1f)}, {r({3, 1})}}});
  {
    Tensor base = r({2, 3});
    for (float& val : base.values()) val = std::abs(val) + 0.5f;
    v.push_back({"pow", op_spec("Pow", 2), {{base}, {r({3})}}, 1e-3});
    v.push_back({"pow_square", op_spec("Pow", 2), {{r({2, 3})}, constant(Tensor(Shape{}, 2.0f))}, 1e-3});
  }
  {
    OpSpec s = op_spec("ReduceSum", 2);
    s.attributes.set("keepdims", int64_t{0});
    v.push_back({"reduce_sum", s, {{r({2, 3, 4})}, ints({0, -1})}});
  }
  {
    OpSpec s = op_spec("ReduceMean", 1);
    s.attributes.set("axes", std::vector<int64_t>{1});
    v.push_back({"reduce_mean", s, {{r({2, 3, 4})}}});
    v.push_back({"reduce_mean_opset18", op_spec("ReduceMean", 2, 18), {{r({2, 3, 4})}, ints({2})}});
    s.op_type = "ReduceL2";
    v.push_back({"reduce_l2", s, {{r({2, 3, 4})}}, 1e-3});
    for (const char* m : {"ReduceMax", "ReduceMin"}) {
      s.op_type = m;
      v.push_back({m, s, {{distinct_tensor({2, 3, 4}, rng)}}});
    }
  }
  {
    OpSpec s = op_spec("ReduceSum", 2);
    s.attributes.set("noop_with_empty_axes", int64_t{1});
    v.push_back({"reduce_sum_noop", s, {{r({2, 3})}, constant(Tensor(Shape{0}))}});
  }
  v.push_back({"sum", op_spec("Sum", 3), {{r({2, 3, 4})}, {r({3, 1})}, {r({4})}}});
  v.push_back({"mean", op_spec("Mean", 2), {{r({2, 3})}, {r({3})}}});
  for (const char* m : {"Max", "Min"}) {
    Tensor other = distinct_tensor({3, 1}, rng);
    for (float& val : other.values()) val += 0.05f;  // off the first input's grid: no ties
    v.push_back({m, op_spec(m, 2), {{distinct_tensor({2, 3, 4}, rng)}, {other}}});
  }
  v.push_back({"tile", op_spec("Tile", 2), {{r({2, 3})}, ints({2, 3})}});
  {
    OpSpec s = op_spec("Split", 2, 13, 3);
    s.attributes.set("axis", int64_t{1});
    v.push_back({"split", s, {{r({2, 6, 3})}, ints({1, 3, 2})}});
    OpSpec even = op_spec("Split", 1, 18, 2);
    even.attributes.set("num_outputs", int64_t{2});
    v.push_back({"split_uneven", even, {{r({5, 3})}}});
  }
  {
    OpSpec s = op_spec("LayerNormalization", 3, 17);
    s.attributes.set("axis", int64_t{1});
    s.attributes.set("epsilon", 1e-3f);
    v.push_back({"layer_norm", s, {{r({2, 3, 4})}, {r({4})}, {r({3, 4})}}, 1e-3});
  }
  v.push_back(
      {"instance_norm", op_spec("InstanceNormalization", 3), {{r({2, 3, 5})}, {r({3})}, {r({3})}}, 1e-3});
  {
    const Input none{Tensor(), false};
    auto floats = [](std::vector<float> values) {
      return Input{Tensor(Shape{static_cast<int64_t>(values.size())}, values), false};
    };
    for (const char* mode : {"half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric"}) {
      OpSpec s = op_spec("Resize", 4);
      s.attributes.set("mode", std::string("linear"));
      s.attributes.set("coordinate_transformation_mode", std::string(mode));
      v.push_back({std::string("resize_linear_") + mode,
                   s,
                   {{r({1, 2, 3, 4})}, none, floats({1, 1, 2, 0.6f}), none}});
      s.attributes.set("mode", std::string("nearest"));
      v.push_back(
          {std::string("resize_nearest_") + mode, s, {{r({1, 2, 3, 4})}, none, none, ints({1, 2, 5, 3})}});
    }
    OpSpec up = op_spec("Upsample", 2, 9);
    up.attributes.set("mode", std::string("linear"));
    v.push_back({"upsample", up, {{r({1, 2, 3, 2})}, floats({1, 1, 2, 1.5f})}});
  }
  return v;
}

TEST(Vjp, EveryOpMatchesFiniteDifferences) {
  for (const VjpCase& c : cases()) check(c);
}

}  // namespace
}  // namespace sieve
