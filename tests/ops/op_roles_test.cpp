// Every registered operator declares its role, and the roles that depend on which inputs vary, the
// layer kinds and the average-pooling twins of max pooling are what explanation methods expect.

#include <gtest/gtest.h>

#include <map>

#include "sieve/error.hpp"
#include "sieve/op_spec.hpp"
#include "support/op_specs.hpp"

namespace sieve {
namespace {

// The role each registered op type must declare when its first input varies and the others are fixed.
const std::map<std::string, OpRole>& expected_roles() {
  static const std::map<std::string, OpRole> roles{
      {"Abs", OpRole::nonmonotone_activation},
      {"Add", OpRole::proportional},
      {"And", OpRole::shape_only},
      {"AveragePool", OpRole::linear},
      {"BatchNormalization", OpRole::linear},
      {"Cast", OpRole::data_movement},
      {"Clip", OpRole::monotone_activation},
      {"Concat", OpRole::data_movement},
      {"ConstantOfShape", OpRole::shape_only},
      {"Conv", OpRole::linear},
      {"ConvTranspose", OpRole::linear},
      {"Cos", OpRole::nonmonotone_activation},
      {"Div", OpRole::proportional},
      {"Dropout", OpRole::data_movement},
      {"Elu", OpRole::monotone_activation},
      {"Equal", OpRole::shape_only},
      {"Erf", OpRole::monotone_activation},
      {"Exp", OpRole::monotone_activation},
      {"Expand", OpRole::data_movement},
      {"Flatten", OpRole::data_movement},
      {"Gather", OpRole::data_movement},
      {"Gelu", OpRole::nonmonotone_activation},
      {"GRU", OpRole::recurrent},
      {"Gemm", OpRole::linear},
      {"GlobalAveragePool", OpRole::linear},
      {"GlobalMaxPool", OpRole::max_selection},
      {"Greater", OpRole::shape_only},
      {"GreaterOrEqual", OpRole::shape_only},
      {"HardSigmoid", OpRole::monotone_activation},
      {"HardSwish", OpRole::nonmonotone_activation},
      {"Identity", OpRole::data_movement},
      {"InstanceNormalization", OpRole::normalization},
      {"LSTM", OpRole::recurrent},
      {"LayerNormalization", OpRole::normalization},
      {"LeakyRelu", OpRole::monotone_activation},
      {"Less", OpRole::shape_only},
      {"LessOrEqual", OpRole::shape_only},
      {"Log", OpRole::monotone_activation},
      {"LogSoftmax", OpRole::softmax},
      {"MatMul", OpRole::linear},
      {"Max", OpRole::monotone_activation},
      {"MaxPool", OpRole::max_selection},
      {"Mean", OpRole::proportional},
      {"Min", OpRole::monotone_activation},
      {"Mul", OpRole::proportional},
      {"Neg", OpRole::proportional},
      {"Not", OpRole::shape_only},
      {"Or", OpRole::shape_only},
      {"PRelu", OpRole::monotone_activation},
      {"Pad", OpRole::data_movement},
      {"Pow", OpRole::nonmonotone_activation},
      {"RNN", OpRole::recurrent},
      {"Range", OpRole::shape_only},
      {"Reciprocal", OpRole::nonmonotone_activation},
      {"ReduceL2", OpRole::normalization},
      {"ReduceMax", OpRole::max_selection},
      {"ReduceMean", OpRole::proportional},
      {"ReduceMin", OpRole::max_selection},
      {"ReduceSum", OpRole::proportional},
      {"Relu", OpRole::monotone_activation},
      {"Reshape", OpRole::data_movement},
      {"Resize", OpRole::data_movement},
      {"Selu", OpRole::monotone_activation},
      {"Shape", OpRole::shape_only},
      {"SiLU", OpRole::nonmonotone_activation},
      {"Sigmoid", OpRole::monotone_activation},
      {"Sin", OpRole::nonmonotone_activation},
      {"Slice", OpRole::data_movement},
      {"Softmax", OpRole::softmax},
      {"Softplus", OpRole::monotone_activation},
      {"Split", OpRole::data_movement},
      {"Sqrt", OpRole::monotone_activation},
      {"Squeeze", OpRole::data_movement},
      {"Sub", OpRole::proportional},
      {"Sum", OpRole::proportional},
      {"Tanh", OpRole::monotone_activation},
      {"Tile", OpRole::data_movement},
      {"Transpose", OpRole::data_movement},
      {"Unsqueeze", OpRole::data_movement},
      {"Upsample", OpRole::data_movement},
      {"Where", OpRole::data_movement},
      {"Xor", OpRole::shape_only},
  };
  return roles;
}

size_t input_count(const std::string& type) {
  static const std::map<std::string, size_t> counts{{"Add", 2},
                                                    {"Sub", 2},
                                                    {"Mul", 2},
                                                    {"Div", 2},
                                                    {"Equal", 2},
                                                    {"MatMul", 2},
                                                    {"Conv", 3},
                                                    {"ConvTranspose", 3},
                                                    {"Gemm", 3},
                                                    {"BatchNormalization", 5},
                                                    {"Concat", 2},
                                                    {"Reshape", 2},
                                                    {"Expand", 2},
                                                    {"Gather", 2},
                                                    {"Where", 3},
                                                    {"Range", 3},
                                                    {"Slice", 3},
                                                    {"Pad", 2},
                                                    {"Clip", 3},
                                                    {"Unsqueeze", 2},
                                                    {"PRelu", 2},
                                                    {"Pow", 2},
                                                    {"Tile", 2},
                                                    {"Max", 2},
                                                    {"Min", 2},
                                                    {"Sum", 2},
                                                    {"Mean", 2},
                                                    {"Less", 2},
                                                    {"Greater", 2},
                                                    {"LessOrEqual", 2},
                                                    {"GreaterOrEqual", 2},
                                                    {"And", 2},
                                                    {"Or", 2},
                                                    {"Xor", 2},
                                                    {"LayerNormalization", 3},
                                                    {"InstanceNormalization", 3},
                                                    {"LSTM", 3},
                                                    {"GRU", 3},
                                                    {"RNN", 3}};
  const auto it = counts.find(type);
  return it == counts.end() ? 1 : it->second;
}

// The op as the importer would create it from a minimal node of that type.
std::unique_ptr<Op> minimal_op(const std::string& type) {
  OpSpec spec = op_spec(type, input_count(type));
  if (type == "MaxPool" || type == "AveragePool")
    spec.attributes.set("kernel_shape", std::vector<int64_t>{2, 2});
  if (type == "Concat") spec.attributes.set("axis", int64_t{1});
  if (type == "Cast") spec.attributes.set("to", int64_t{1});
  return create_op(spec);
}

// Input 0 varies, the others are fixed.
std::vector<char> first_varies(size_t n) {
  std::vector<char> v(n, 0);
  v[0] = 1;
  return v;
}

OpRole role_of(const Op& op, const std::vector<char>& varying) {
  const auto flags = std::make_unique<bool[]>(varying.size());
  for (size_t i = 0; i < varying.size(); ++i) flags[i] = varying[i] != 0;
  return op.role(std::span<const bool>(flags.get(), varying.size()));
}

TEST(OpRoles, EveryRegisteredOpDeclaresItsRole) {
  for (const std::string& type : supported_ops()) {
    SCOPED_TRACE(type);
    const auto expected = expected_roles().find(type);
    ASSERT_NE(expected, expected_roles().end()) << "a registered op type without an expected role here";
    const std::unique_ptr<Op> op = minimal_op(type);
    EXPECT_EQ(role_of(*op, first_varies(input_count(type))), expected->second)
        << role_name(role_of(*op, first_varies(input_count(type))));
    EXPECT_EQ(op->as_linear() != nullptr, expected->second == OpRole::linear);
  }
  EXPECT_EQ(expected_roles().size(), supported_ops().size()) << "expected roles of unregistered op types";
}

TEST(OpRoles, ProductsOnlyWhenTwoFactorsVary) {
  for (const std::string type : {"Mul", "Div", "MatMul"}) {
    SCOPED_TRACE(type);
    const std::unique_ptr<Op> op = minimal_op(type);
    EXPECT_EQ(role_of(*op, {1, 1}), OpRole::product);
    EXPECT_EQ(role_of(*op, {0, 1}), OpRole::proportional);
  }
  EXPECT_EQ(role_of(*minimal_op("MatMul"), {1, 0}), OpRole::linear);
  EXPECT_EQ(role_of(*minimal_op("Mul"), {1, 0}), OpRole::proportional);
  EXPECT_EQ(role_of(*minimal_op("Add"), {1, 1}), OpRole::proportional);
  EXPECT_EQ(role_of(*minimal_op("Conv"), {1, 1, 0}), OpRole::product);
  EXPECT_EQ(role_of(*minimal_op("Pow"), {1, 1}), OpRole::product);
  EXPECT_EQ(role_of(*minimal_op("PRelu"), {1, 1}), OpRole::product);
}

TEST(OpRoles, SelectionsAndResamplingDependOnInputsAndMode) {
  EXPECT_EQ(role_of(*minimal_op("Max"), {1, 1}), OpRole::max_selection);
  EXPECT_EQ(role_of(*minimal_op("Min"), {1, 1, 0}), OpRole::max_selection);
  EXPECT_EQ(role_of(*minimal_op("Sum"), {1, 1}), OpRole::proportional);
  OpSpec linear = op_spec("Resize", 3);
  linear.attributes.set("mode", std::string("linear"));
  EXPECT_EQ(role_of(*create_op(linear), {1, 0, 0}), OpRole::proportional);
}

TEST(OpRoles, LayersAreConvolutionsAndDenseOps) {
  for (const std::string type : {"Conv", "ConvTranspose", "Gemm", "MatMul"})
    EXPECT_TRUE(minimal_op(type)->as_linear()->is_layer()) << type;
  for (const std::string type : {"AveragePool", "GlobalAveragePool", "BatchNormalization"})
    EXPECT_FALSE(minimal_op(type)->as_linear()->is_layer()) << type;
  EXPECT_TRUE(minimal_op("Relu")->is_relu());
  EXPECT_FALSE(minimal_op("LeakyRelu")->is_relu());
  EXPECT_TRUE(minimal_op("Dropout")->is_identity());
  EXPECT_FALSE(minimal_op("Reshape")->is_identity());
}

TEST(OpRoles, MaxPoolingHasAnAveragePoolingTwinOverTheSameWindows) {
  OpSpec max = op_spec("MaxPool", 1);
  max.attributes.set("kernel_shape", std::vector<int64_t>{3, 2});
  max.attributes.set("strides", std::vector<int64_t>{2, 1});
  max.attributes.set("pads", std::vector<int64_t>{1, 0, 1, 1});
  max.attributes.set("ceil_mode", int64_t{1});
  OpSpec avg = max;
  avg.op_type = "AveragePool";
  Tensor x(Shape{2, 3, 7, 6});
  for (int64_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>((i * 37) % 11) - 5.0f;
  const std::unique_ptr<Op> twin = create_op(max)->average_pool_twin();
  ASSERT_NE(twin, nullptr);
  ASSERT_NE(twin->as_linear(), nullptr);
  const Tensor expected = create_op(avg)->forward(std::vector<Tensor>{x})[0];
  const Tensor got = twin->forward(std::vector<Tensor>{x})[0];
  ASSERT_EQ(got.shape(), expected.shape());
  for (int64_t i = 0; i < got.size(); ++i) EXPECT_FLOAT_EQ(got[i], expected[i]) << i;

  const std::unique_ptr<Op> global = create_op(op_spec("GlobalMaxPool", 1))->average_pool_twin();
  ASSERT_NE(global, nullptr);
  const Tensor mean = global->forward(std::vector<Tensor>{x})[0];
  ASSERT_EQ(mean.shape(), (Shape{2, 3, 1, 1}));
  double sum = 0.0;
  for (int64_t i = 0; i < 42; ++i) sum += x[i];
  EXPECT_NEAR(mean[0], sum / 42.0, 1e-5);
  EXPECT_EQ(minimal_op("Relu")->average_pool_twin(), nullptr);
}

}  // namespace
}  // namespace sieve
