// If nodes whose condition is known at load time (a constant, or computed from constants and static
// shapes) are replaced by the branch they take; one whose condition depends on the model's input is
// refused naming the node, the op and the opset.

#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include "import/onnx_import.hpp"
#include "sieve/error.hpp"
#include "sieve/model.hpp"
#include "support/errors.hpp"

namespace sieve {
namespace {

onnx::NodeProto node(const std::string& op, std::vector<std::string> inputs, std::vector<std::string> outputs,
                     const std::string& name = "") {
  onnx::NodeProto n;
  n.set_op_type(op);
  n.set_name(name);
  for (const std::string& in : inputs) n.add_input(in);
  for (const std::string& out : outputs) n.add_output(out);
  return n;
}

onnx::TensorProto tensor(const std::string& name, int32_t type, std::vector<int64_t> dims,
                         std::vector<float> values) {
  onnx::TensorProto t;
  t.set_name(name);
  t.set_data_type(type);
  for (int64_t d : dims) t.add_dims(d);
  for (float v : values) {
    if (type == onnx::TensorProto::FLOAT)
      t.add_float_data(v);
    else if (type == onnx::TensorProto::INT64)
      t.add_int64_data(static_cast<int64_t>(v));
    else
      t.add_int32_data(static_cast<int32_t>(v));  // BOOL
  }
  return t;
}

onnx::ValueInfoProto float_value(const std::string& name, std::vector<int64_t> dims) {
  onnx::ValueInfoProto v;
  v.set_name(name);
  auto* t = v.mutable_type()->mutable_tensor_type();
  t->set_elem_type(onnx::TensorProto::FLOAT);
  for (int64_t d : dims) t->mutable_shape()->add_dim()->set_dim_value(d);
  return v;
}

// A branch computing `out` from the outer graph's x with one op, through a value named "t" (a name the
// outer graph also uses) and an initializer of its own.
onnx::GraphProto branch(const std::string& op, const std::string& out) {
  onnx::GraphProto g;
  g.set_name(op + "_branch");
  *g.add_initializer() = tensor("two", onnx::TensorProto::FLOAT, {}, {2.0f});
  *g.add_node() = node(op, {"x"}, {"t"});
  *g.add_node() = node("Mul", {"t", "two"}, {out});
  *g.add_output() = float_value(out, {2, 3});
  return g;
}

onnx::NodeProto if_node(const std::string& condition, const std::string& output, const std::string& name,
                        onnx::GraphProto then_branch, onnx::GraphProto else_branch) {
  onnx::NodeProto n = node("If", {condition}, {output}, name);
  onnx::AttributeProto* a = n.add_attribute();
  a->set_name("then_branch");
  a->set_type(onnx::AttributeProto::GRAPH);
  *a->mutable_g() = std::move(then_branch);
  a = n.add_attribute();
  a->set_name("else_branch");
  a->set_type(onnx::AttributeProto::GRAPH);
  *a->mutable_g() = std::move(else_branch);
  return n;
}

// y = If(condition) then 2·Relu(x) else 2·Neg(x), then y + t where t = x (the outer "t").
onnx::ModelProto model_with(const std::vector<onnx::NodeProto>& condition_nodes,
                            const std::vector<onnx::TensorProto>& initializers,
                            const std::string& condition) {
  onnx::ModelProto m;
  m.set_ir_version(8);
  m.add_opset_import()->set_version(13);
  onnx::GraphProto* g = m.mutable_graph();
  g->set_name("if_test");
  *g->add_input() = float_value("x", {2, 3});
  for (const onnx::TensorProto& t : initializers) *g->add_initializer() = t;
  for (const onnx::NodeProto& n : condition_nodes) *g->add_node() = n;
  *g->add_node() = if_node(condition, "y", "gate", branch("Relu", "relu_out"), branch("Neg", "neg_out"));
  // Defined after the If so that the branches' own "t" does not shadow it (which the checker forbids);
  // once inlined, both exist in one graph.
  *g->add_node() = node("Identity", {"x"}, {"t"});
  *g->add_node() = node("Add", {"y", "t"}, {"z"});
  *g->add_output() = float_value("z", {2, 3});
  return m;
}

Tensor run(const onnx::ModelProto& m) {
  std::string bytes;
  m.SerializeToString(&bytes);
  const Model model = Model::from_bytes(bytes, "if_test.onnx");
  const Tensor x(Shape{2, 3}, std::vector<float>{-1, 2, -3, 4, -5, 6});
  return model.run({x}).at(0);
}

// 2·Relu(x) + x, or 2·(−x) + x = −x.
std::vector<float> expected(bool then_branch) {
  const std::vector<float> x{-1, 2, -3, 4, -5, 6};
  std::vector<float> z;
  for (float v : x) z.push_back(then_branch ? 2.0f * std::max(v, 0.0f) + v : -v);
  return z;
}

void expect_values(const Tensor& got, const std::vector<float>& want) {
  ASSERT_EQ(got.size(), static_cast<int64_t>(want.size()));
  for (size_t i = 0; i < want.size(); ++i) EXPECT_EQ(got[static_cast<int64_t>(i)], want[i]) << i;
}

TEST(IfFolding, AConstantConditionTakesItsBranch) {
  for (const bool taken : {true, false}) {
    SCOPED_TRACE(taken);
    const onnx::TensorProto condition =
        tensor("condition", onnx::TensorProto::BOOL, {}, {taken ? 1.0f : 0.0f});
    expect_values(run(model_with({}, {condition}, "condition")), expected(taken));
    // The same condition from a Constant node.
    onnx::NodeProto constant = node("Constant", {}, {"condition"});
    onnx::AttributeProto* value = constant.add_attribute();
    value->set_name("value");
    value->set_type(onnx::AttributeProto::TENSOR);
    *value->mutable_t() = condition;
    expect_values(run(model_with({constant}, {}, "condition")), expected(taken));
  }
}

TEST(IfFolding, TheOperatorScanLeavesIfToTheImporter) {
  std::string bytes;
  model_with({}, {tensor("condition", onnx::TensorProto::BOOL, {}, {1.0f})}, "condition")
      .SerializeToString(&bytes);
  EXPECT_TRUE(onnx_import::scan_operators(bytes, "if_test.onnx").unsupported.empty());
}

TEST(IfFolding, AConditionComputedFromStaticShapesFolds) {
  // x.shape[0] == 2 (true) and x.shape[1] == 2 (false), as exporters write batch-size checks.
  for (const int64_t axis : {0, 1}) {
    SCOPED_TRACE(axis);
    const std::vector<onnx::NodeProto> nodes{node("Shape", {"x"}, {"shape"}),
                                             node("Gather", {"shape", "axis"}, {"size"}),
                                             node("Equal", {"size", "two_rows"}, {"condition"})};
    const std::vector<onnx::TensorProto> initializers{
        tensor("axis", onnx::TensorProto::INT64, {}, {static_cast<float>(axis)}),
        tensor("two_rows", onnx::TensorProto::INT64, {}, {2.0f})};
    expect_values(run(model_with(nodes, initializers, "condition")), expected(axis == 0));
  }
}

TEST(IfFolding, NestedIfsFold) {
  onnx::ModelProto m =
      model_with({}, {tensor("condition", onnx::TensorProto::BOOL, {}, {0.0f})}, "condition");
  // The else branch becomes an If of its own on a condition the branch holds.
  onnx::GraphProto outer;
  outer.set_name("outer_else");
  *outer.add_initializer() = tensor("inner_condition", onnx::TensorProto::BOOL, {}, {1.0f});
  *outer.add_node() =
      if_node("inner_condition", "inner_out", "inner", branch("Relu", "relu_out"), branch("Neg", "neg_out"));
  *outer.add_output() = float_value("inner_out", {2, 3});
  for (onnx::NodeProto& n : *m.mutable_graph()->mutable_node())
    if (n.op_type() == "If") *n.mutable_attribute(1)->mutable_g() = outer;
  expect_values(run(m), expected(true));
}

TEST(IfFolding, AConditionOnTheInputIsRefused) {
  const std::vector<onnx::NodeProto> nodes{node("ReduceSum", {"x"}, {"total"}),
                                           node("Greater", {"total", "zero"}, {"condition"})};
  const onnx::ModelProto m =
      model_with(nodes, {tensor("zero", onnx::TensorProto::FLOAT, {}, {0.0f})}, "condition");
  const std::string message = error_of([&] { run(m); });
  EXPECT_NE(message.find("if_test.onnx: node 'gate' (If, opset 13): the condition 'condition' is not known "
                         "at load time"),
            std::string::npos)
      << message;
}

}  // namespace
}  // namespace sieve
