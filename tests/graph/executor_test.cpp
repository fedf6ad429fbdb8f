#include "sieve/executor.hpp"

#include <gtest/gtest.h>

#include <cmath>

#include "sieve/error.hpp"
#include "sieve/graph.hpp"
#include "sieve/model.hpp"
#include "sieve/op_spec.hpp"

namespace sieve {
namespace {

Node make_node(const std::string& type, std::vector<ValueId> inputs, std::vector<ValueId> outputs) {
  Node n;
  n.name = type + "_" + std::to_string(outputs.at(0));
  n.spec.op_type = type;
  n.spec.name = n.name;
  n.spec.opset = 13;
  n.spec.num_inputs = inputs.size();
  n.spec.num_outputs = outputs.size();
  n.op = create_op(n.spec);
  n.inputs = std::move(inputs);
  n.outputs = std::move(outputs);
  return n;
}

// y = relu(x) + relu(x) with x an input: a fork whose branches meet again.
Graph diamond() {
  Graph g;
  const ValueId x = g.add_value({"x", {-1, 3}, true, {}});
  const ValueId r = g.add_value({"r", {}, false, {}});
  const ValueId y = g.add_value({"y", {}, false, {}});
  g.inputs = {x};
  g.outputs = {y};
  g.add_node(make_node("Add", {r, r}, {y}));  // listed before its producer on purpose
  g.add_node(make_node("Relu", {x}, {r}));
  return g;
}

TEST(Graph, SortsTopologically) {
  Graph g = diamond();
  g.sort_topologically();
  EXPECT_EQ(g.nodes()[0].spec.op_type, "Relu");
  EXPECT_EQ(g.nodes()[1].spec.op_type, "Add");
}

TEST(Graph, RejectsCycles) {
  Graph g;
  const ValueId a = g.add_value({"a", {}, false, {}});
  const ValueId b = g.add_value({"b", {}, false, {}});
  g.outputs = {b};
  g.add_node(make_node("Relu", {b}, {a}));
  g.add_node(make_node("Relu", {a}, {b}));
  try {
    g.sort_topologically();
    FAIL() << "cycle not detected";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cycle"), std::string::npos);
  }
}

TEST(Executor, RunsBatchedAndKeepsOnlyRequestedValues) {
  Graph g = diamond();
  g.sort_topologically();
  Tensor x(Shape{2, 3}, std::vector<float>{-1, 2, -3, 4, -5, 6});
  Executor exec(g);
  Trace trace;
  std::vector<bool> keep(g.values().size(), false);
  keep[1] = true;  // r
  const std::vector<Tensor> out = exec.run({x}, &trace, keep);
  ASSERT_EQ(out.size(), 1u);
  const std::vector<float> expected{0, 4, 0, 8, 0, 12};
  for (int i = 0; i < 6; ++i) EXPECT_EQ(out[0][i], expected[static_cast<size_t>(i)]);
  EXPECT_FALSE(trace.values[1].empty());  // kept
  EXPECT_FALSE(trace.values[0].empty());  // inputs stay available
  // Without a keep request the intermediate value is released after its last use.
  Trace bare;
  exec.run({x}, &bare);
  EXPECT_TRUE(bare.values[1].empty());
}

TEST(Executor, ChecksInputCount) {
  Graph g = diamond();
  g.sort_topologically();
  EXPECT_THROW(Executor(g).run({}), Error);
}

}  // namespace
}  // namespace sieve

namespace sieve {
namespace {

// Conv + Relu run fused unless the convolution's own output is to be kept; both give the same values.
TEST(Executor, FusedConvReluMatchesUnfused) {
  const Model model = Model::load(std::string(SIEVE_TEST_DATA) + "/models/vgg_small.onnx");
  Tensor x(Shape{2, 3, 32, 32});
  for (int64_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>((i * 37) % 101) / 50.0f - 1.0f;
  const Executor exec(model.graph());
  Trace fused, unfused;
  const Tensor a = exec.run({x}, &fused)[0];
  const Tensor b = exec.run({x}, &unfused, std::vector<bool>(model.graph().values().size(), true))[0];
  ASSERT_EQ(a.shape(), b.shape());
  // The same convolution primitive with and without its ReLU post-op, which oneDNN applies to the
  // finished accumulator: the same float32 sums, so the same values downstream; 1e-5 of 1 + |y| leaves
  // room for a few roundings (u ≈ 6e-8) of the post-op's own arithmetic.
  for (int64_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], 1e-5f * (1.0f + std::abs(b[i])));
  size_t conv_outputs_kept = 0;
  for (const Node& n : model.graph().nodes()) {
    if (n.spec.op_type == "Conv")
      conv_outputs_kept += !unfused.values[static_cast<size_t>(n.outputs[0])].empty();
  }
  EXPECT_EQ(conv_outputs_kept, 4u);
}

}  // namespace
}  // namespace sieve
