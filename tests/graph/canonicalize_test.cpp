// Rewrites not covered by the exported models: Identity / Dropout removal and the merge of a zero Pad
// into a Conv, on graphs written with the ONNX library.

#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include "sieve/model.hpp"

namespace sieve {
namespace {

onnx::ValueInfoProto* declare(onnx::ValueInfoProto* v, const std::string& name, std::vector<int64_t> dims) {
  v->set_name(name);
  auto* t = v->mutable_type()->mutable_tensor_type();
  t->set_elem_type(onnx::TensorProto::FLOAT);
  for (int64_t d : dims) t->mutable_shape()->add_dim()->set_dim_value(d);
  return v;
}

onnx::NodeProto* node(onnx::GraphProto* g, const std::string& type, std::vector<std::string> in,
                      std::vector<std::string> out) {
  auto* n = g->add_node();
  n->set_op_type(type);
  n->set_name(type + "_" + out[0]);
  for (auto& s : in) n->add_input(s);
  for (auto& s : out) n->add_output(s);
  return n;
}

void initializer(onnx::GraphProto* g, const std::string& name, std::vector<int64_t> dims,
                 std::vector<float> values) {
  auto* t = g->add_initializer();
  t->set_name(name);
  t->set_data_type(onnx::TensorProto::FLOAT);
  for (int64_t d : dims) t->add_dims(d);
  for (float v : values) t->add_float_data(v);
}

std::string serialize(const onnx::ModelProto& m) {
  std::string s;
  m.SerializeToString(&s);
  return s;
}

TEST(Canonicalize, RemovesIdentityAndDropout) {
  onnx::ModelProto m;
  m.set_ir_version(8);
  m.add_opset_import()->set_version(13);
  auto* g = m.mutable_graph();
  g->set_name("g");
  declare(g->add_input(), "x", {2, 3});
  declare(g->add_output(), "y", {2, 3});
  node(g, "Identity", {"x"}, {"a"});
  node(g, "Relu", {"a"}, {"b"});
  node(g, "Dropout", {"b"}, {"y"});
  const Model model = Model::from_bytes(serialize(m), "identity.onnx");
  EXPECT_EQ(model.report().op_counts, (std::map<std::string, int>{{"Relu", 1}}));
  const Tensor x(Shape{2, 3}, std::vector<float>{-1, 2, -3, 4, 5, -6});
  const Tensor y = model.run({x})[0];
  for (int64_t i = 0; i < 6; ++i) EXPECT_EQ(y[i], std::max(0.0f, x[i]));
}

TEST(Canonicalize, MergesZeroPadIntoConvAndKeepsTheOutput) {
  onnx::ModelProto m;
  m.set_ir_version(8);
  m.add_opset_import()->set_version(13);
  auto* g = m.mutable_graph();
  g->set_name("g");
  declare(g->add_input(), "x", {1, 1, 4, 4});
  declare(g->add_output(), "y", {1, 1, 5, 6});
  initializer(g, "pads", {8}, {});
  g->mutable_initializer(0)->set_data_type(onnx::TensorProto::INT64);
  for (int64_t p : {0, 0, 1, 2, 0, 0, 2, 1}) g->mutable_initializer(0)->add_int64_data(p);
  initializer(g, "w", {1, 1, 3, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9});
  node(g, "Pad", {"x", "pads"}, {"p"});
  auto* conv = node(g, "Conv", {"p", "w"}, {"y"});
  auto* pads = conv->add_attribute();
  pads->set_name("pads");
  pads->set_type(onnx::AttributeProto::INTS);
  for (int64_t p : {0, 1, 0, 0}) pads->add_ints(p);
  Tensor x(Shape{1, 1, 4, 4});
  for (int64_t i = 0; i < 16; ++i) x[i] = static_cast<float>(i) - 7.5f;
  LoadOptions raw;
  raw.canonicalize = {false, false, false, false, false};
  const Tensor expected = Model::from_bytes(serialize(m), "pad.onnx", raw).run({x})[0];
  const Model merged = Model::from_bytes(serialize(m), "pad.onnx");
  EXPECT_EQ(merged.report().op_counts, (std::map<std::string, int>{{"Conv", 1}}));
  const Tensor y = merged.run({x})[0];
  ASSERT_EQ(y.shape(), expected.shape());
  // Exact in float32 whatever the kernel: integer weights times half-integer inputs give multiples of
  // 0.5, and every partial sum of nine of them (|Σ| ≤ 45 · 7.5) is one too, representable in float32.
  for (int64_t i = 0; i < y.size(); ++i) EXPECT_FLOAT_EQ(y[i], expected[i]);
}

}  // namespace
}  // namespace sieve
