#include "import/onnx_import.hpp"

#include <onnx/checker.h>
#include <onnx/defs/schema.h>
#include <onnx/onnx_pb.h>
#include <onnx/shape_inference/implementation.h>

#include <algorithm>
#include <map>

#include "graph/canonicalize.hpp"
#include "import/tensor_proto.hpp"
#include "sieve/error.hpp"

namespace sieve::onnx_import {
namespace {

Attributes convert_attributes(const onnx::NodeProto& node, const std::string& where) {
  Attributes attributes;
  for (const onnx::AttributeProto& a : node.attribute()) {
    switch (a.type()) {
      case onnx::AttributeProto::INT:
        attributes.set(a.name(), static_cast<int64_t>(a.i()));
        break;
      case onnx::AttributeProto::FLOAT:
        attributes.set(a.name(), a.f());
        break;
      case onnx::AttributeProto::STRING:
        attributes.set(a.name(), a.s());
        break;
      case onnx::AttributeProto::INTS:
        attributes.set(a.name(), std::vector<int64_t>(a.ints().begin(), a.ints().end()));
        break;
      case onnx::AttributeProto::FLOATS:
        attributes.set(a.name(), std::vector<float>(a.floats().begin(), a.floats().end()));
        break;
      case onnx::AttributeProto::STRINGS:
        attributes.set(a.name(), std::vector<std::string>(a.strings().begin(), a.strings().end()));
        break;
      case onnx::AttributeProto::TENSOR:
        attributes.set(a.name(), tensor_from_proto(a.t(), where + " attribute '" + a.name() + "'"));
        break;
      default:
        break;  // graph/sparse attributes belong to operators sieve does not support
    }
  }
  return attributes;
}

void read_type_shape(const onnx::TypeProto& type, Value& value, const std::string& where) {
  if (!type.has_tensor_type() || !type.tensor_type().has_shape()) return;
  value.shape.clear();
  for (const auto& d : type.tensor_type().shape().dim())
    value.shape.push_back(d.has_dim_value() ? d.dim_value() : -1);
  value.shape_known = true;
  Shape known = value.shape;
  for (int64_t& d : known) d = std::max<int64_t>(d, 1);
  checked_element_count(known, where);
}

// The value of a Constant node.
Tensor constant_value(const onnx::NodeProto& node, const std::string& where) {
  for (const onnx::AttributeProto& a : node.attribute()) {
    if (a.name() == "value") return tensor_from_proto(a.t(), where);
    if (a.name() == "value_float") return Tensor(Shape{}, a.f());
    if (a.name() == "value_int") return Tensor(Shape{}, static_cast<float>(a.i()));
    if (a.name() == "value_floats")
      return Tensor(Shape{a.floats_size()}, std::vector<float>(a.floats().begin(), a.floats().end()));
    if (a.name() == "value_ints") {
      std::vector<float> v(a.ints().begin(), a.ints().end());
      return Tensor(Shape{static_cast<int64_t>(v.size())}, v);
    }
  }
  throw Error(where + ": Constant without a supported value attribute (value, value_float(s), value_int(s))");
}

onnx::ModelProto parse(std::string_view bytes, const std::string& name) {
  onnx::ModelProto model;
  if (bytes.empty()) throw Error(name + ": empty file, not an ONNX model");
  if (bytes.size() > static_cast<size_t>(INT32_MAX) ||
      !model.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    throw Error(name +
                ": not a valid ONNX model (the protobuf could not be parsed; truncated or corrupt file?)");
  }
  if (!model.has_graph()) throw Error(name + ": the ONNX model has no graph");
  return model;
}

int64_t default_opset(const onnx::ModelProto& model, const std::string& name) {
  int64_t opset = 0;
  for (const auto& op : model.opset_import()) {
    if (op.domain().empty() || op.domain() == "ai.onnx") opset = op.version();
  }
  if (opset == 0) throw Error(name + ": the model imports no version of the default ONNX operator set");
  return opset;
}

bool is_default_domain(const onnx::NodeProto& n) {
  return n.domain().empty() || n.domain() == "ai.onnx";
}

}  // namespace

OperatorScan scan_operators(std::string_view bytes, const std::string& name) {
  const onnx::ModelProto model = parse(bytes, name);
  OperatorScan scan;
  scan.opset = default_opset(model, name);
  for (int i = 0; i < model.graph().node_size(); ++i) {
    const onnx::NodeProto& n = model.graph().node(i);
    ++scan.op_counts[n.op_type()];
    if (n.op_type() != "Constant" && (!is_default_domain(n) || !is_supported_op(n.op_type()))) {
      scan.unsupported.push_back(n.op_type() + " (node '" +
                                 (n.name().empty() ? n.op_type() + "_" + std::to_string(i) : n.name()) +
                                 "')");
    }
  }
  return scan;
}

namespace {

// The ONNX checker and shape inference, whose findings name the file.
void check_and_infer_shapes(onnx::ModelProto& model, const std::string& name) {
  try {
    onnx::checker::check_model(model);
  } catch (const std::exception& e) {
    throw Error(name + ": ONNX checker: " + e.what());
  }
  try {
    onnx::ShapeInferenceOptions options{false, 0, true};
    onnx::shape_inference::InferShapes(model, onnx::OpSchemaRegistry::Instance(), options);
  } catch (const std::exception& e) {
    throw Error(name + ": ONNX shape inference: " + e.what());
  }
}

// What the graph is being built from, and the value of every name seen so far.
struct Builder {
  const onnx::GraphProto& g;
  const std::string& name;
  ImportResult& result;
  std::map<std::string, ValueId> ids;
};

// Initializers become constants; the other graph inputs become the model's inputs.
void add_initializers_and_inputs(Builder& b) {
  Graph& graph = b.result.graph;
  for (const onnx::TensorProto& init : b.g.initializer()) {
    Value v{init.name(), {}, false, tensor_from_proto(init, b.name + ": initializer '" + init.name() + "'")};
    v.shape = v.constant.shape();
    v.shape_known = true;
    b.ids[init.name()] = graph.add_value(std::move(v));
  }
  for (const onnx::ValueInfoProto& in : b.g.input()) {
    if (b.ids.count(in.name())) continue;  // an initializer listed as input (old exporters): a constant
    Value v{in.name(), {}, false, {}};
    read_type_shape(in.type(), v, b.name + ": input '" + in.name() + "'");
    const int32_t elem = in.type().tensor_type().elem_type();
    if (!is_numeric_type(elem))
      throw Error(b.name + ": input '" + in.name() + "' has unsupported element type " + type_name(elem));
    const ValueId id = graph.add_value(std::move(v));
    b.ids[in.name()] = id;
    graph.inputs.push_back(id);
    b.result.input_names.push_back(in.name());
    b.result.input_shapes.push_back(graph.value(id).shape);
    b.result.input_types.push_back(type_name(elem));
  }
}

// One node per NodeProto with its outputs (shapes as inferred); Constant nodes become constant values.
// Inputs are connected afterwards, so a graph listed out of order still loads.
void add_nodes(Builder& b) {
  Graph& graph = b.result.graph;
  ModelReport& report = b.result.report;
  std::map<std::string, const onnx::TypeProto*> inferred;
  for (const onnx::ValueInfoProto& vi : b.g.value_info()) inferred[vi.name()] = &vi.type();
  for (const onnx::ValueInfoProto& vi : b.g.output()) inferred[vi.name()] = &vi.type();
  for (int i = 0; i < b.g.node_size(); ++i) {
    const onnx::NodeProto& n = b.g.node(i);
    OpSpec spec;
    spec.op_type = n.op_type();
    spec.name = n.name().empty() ? n.op_type() + "_" + std::to_string(i) : n.name();
    spec.opset = report.opset;
    ++report.onnx_op_counts[n.op_type()];
    if (!is_default_domain(n))
      throw Error(b.name + ": " + spec.where() + ": unsupported operator (domain '" + n.domain() + "')");
    Node node;
    node.name = spec.name;
    for (const std::string& out : n.output()) {
      if (out.empty()) {
        node.outputs.push_back(-1);
        continue;
      }
      Value v{out, {}, false, {}};
      if (auto it = inferred.find(out); it != inferred.end())
        read_type_shape(*it->second, v, b.name + ": value '" + out + "'");
      const ValueId id = graph.add_value(std::move(v));
      b.ids[out] = id;
      node.outputs.push_back(id);
    }
    if (n.op_type() == "Constant") {
      Value& value = graph.value(node.outputs.at(0));
      value.constant = constant_value(n, b.name + ": " + spec.where());
      value.shape = value.constant.shape();
      value.shape_known = true;
      continue;
    }
    spec.num_outputs = static_cast<size_t>(n.output_size());
    spec.num_inputs = static_cast<size_t>(n.input_size());
    spec.attributes = convert_attributes(n, b.name + ": " + spec.where());
    for (const std::string& in : n.input()) spec.input_present.push_back(!in.empty());
    node.spec = spec;
    try {
      node.op = create_op(spec);
    } catch (const Error& e) {
      throw Error(b.name + ": " + e.what());
    }
    node.inputs.assign(static_cast<size_t>(n.input_size()), -1);
    graph.add_node(std::move(node));
  }
}

// Every node input and graph output resolved by name.
void connect(Builder& b) {
  Graph& graph = b.result.graph;
  size_t node_index = 0;
  for (const onnx::NodeProto& n : b.g.node()) {
    if (n.op_type() == "Constant") continue;
    Node& node = graph.nodes()[node_index++];
    for (int k = 0; k < n.input_size(); ++k) {
      if (n.input(k).empty()) continue;
      auto it = b.ids.find(n.input(k));
      if (it == b.ids.end()) {
        throw Error(b.name + ": " + node.spec.where() + ": input '" + n.input(k) +
                    "' is not an initializer, a graph input or the output of any node");
      }
      node.inputs[static_cast<size_t>(k)] = it->second;
    }
  }
  for (const onnx::ValueInfoProto& out : b.g.output()) {
    auto it = b.ids.find(out.name());
    if (it == b.ids.end())
      throw Error(b.name + ": graph output '" + out.name() + "' is not produced by any node");
    graph.outputs.push_back(it->second);
    b.result.output_names.push_back(out.name());
    Value declared;
    read_type_shape(out.type(), declared, b.name + ": output '" + out.name() + "'");
    b.result.output_shapes.push_back(declared.shape);
  }
}

}  // namespace

ImportResult import_model(std::string_view bytes, const std::string& name) {
  onnx::ModelProto model = parse(bytes, name);
  ImportResult result;
  ModelReport& report = result.report;
  report.path = name;
  report.producer =
      model.producer_name() + (model.producer_version().empty() ? "" : " " + model.producer_version());
  report.opset = default_opset(model, name);
  check_and_infer_shapes(model, name);

  Builder builder{model.graph(), name, result, {}};
  add_initializers_and_inputs(builder);
  add_nodes(builder);
  connect(builder);
  try {
    result.graph.sort_topologically();
    fold_constants(result.graph, report);
  } catch (const Error& e) {
    throw Error(name + ": " + e.what());
  }
  return result;
}

}  // namespace sieve::onnx_import
