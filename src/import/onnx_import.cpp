#include "import/onnx_import.hpp"

#include <onnx/checker.h>
#include <onnx/defs/schema.h>
#include <onnx/onnx_pb.h>
#include <onnx/shape_inference/implementation.h>

#include <algorithm>
#include <map>
#include <optional>

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
    // Constant and If nodes become values and branches at import, not ops.
    const bool imported_as_op = n.op_type() != "Constant" && n.op_type() != "If";
    if (imported_as_op && (!is_default_domain(n) || !is_supported_op(n.op_type()))) {
      scan.unsupported.push_back(n.op_type() + " (node '" +
                                 (n.name().empty() ? n.op_type() + "_" + std::to_string(i) : n.name()) +
                                 "')");
    }
  }
  return scan;
}

namespace {

// "node 'name' (If, opset 13)" for a node of the file's graph, as OpSpec::where() says it.
std::string where_of(const onnx::NodeProto& n, int index, int64_t opset) {
  OpSpec spec;
  spec.op_type = n.op_type();
  spec.name = n.name().empty() ? n.op_type() + "_" + std::to_string(index) : n.name();
  spec.opset = opset;
  return spec.where();
}

// Values of the graph that are known at load time: initializers, Constant nodes, and the outputs of
// supported ops whose inputs are known (shapes of inputs whose declared shape is fully static included),
// computed with sieve's own ops as constant folding would.
class LoadTimeValues {
 public:
  LoadTimeValues(const onnx::GraphProto& g, int64_t opset) : g_(g), opset_(opset) {
    for (const onnx::TensorProto& init : g.initializer()) initializers_[init.name()] = &init;
    for (int i = 0; i < g.node_size(); ++i)
      for (const std::string& out : g.node(i).output()) producers_[out] = i;
    for (const onnx::ValueInfoProto& in : g.input()) {
      if (!in.type().has_tensor_type() || !in.type().tensor_type().has_shape()) continue;
      Shape shape;
      bool is_static = true;
      for (const auto& d : in.type().tensor_type().shape().dim()) {
        is_static = is_static && d.has_dim_value();
        shape.push_back(d.dim_value());
      }
      if (is_static) static_input_shapes_[in.name()] = shape;
    }
  }

  std::optional<Tensor> value(const std::string& name) {
    if (const auto it = known_.find(name); it != known_.end()) return it->second;
    known_[name] = std::nullopt;  // a cycle or an unknown value stays unknown
    known_[name] = compute(name);
    return known_[name];
  }

 private:
  std::optional<Tensor> compute(const std::string& name) {
    if (const auto it = initializers_.find(name); it != initializers_.end())
      return tensor_from_proto(*it->second, "initializer '" + name + "'");
    const auto producer = producers_.find(name);
    if (producer == producers_.end()) return std::nullopt;
    const onnx::NodeProto& n = g_.node(producer->second);
    const std::string where = where_of(n, producer->second, opset_);
    if (n.op_type() == "Constant") return constant_value(n, where);
    if (!is_default_domain(n) || !is_supported_op(n.op_type())) return std::nullopt;
    OpSpec spec;
    spec.op_type = n.op_type();
    spec.name = n.name();
    spec.opset = opset_;
    spec.num_inputs = static_cast<size_t>(n.input_size());
    spec.num_outputs = static_cast<size_t>(n.output_size());
    spec.attributes = convert_attributes(n, where);
    for (const std::string& in : n.input()) spec.input_present.push_back(!in.empty());
    const std::unique_ptr<Op> op = create_op(spec);
    std::vector<Tensor> inputs;
    for (const std::string& in : n.input()) {
      if (in.empty()) {
        inputs.emplace_back();
        continue;
      }
      const auto shape = static_input_shapes_.find(in);
      if (op->reads_only_shapes() && shape != static_input_shapes_.end()) {
        inputs.emplace_back(shape->second);
        continue;
      }
      std::optional<Tensor> v = value(in);
      if (!v) return std::nullopt;
      inputs.push_back(*v);
    }
    const std::vector<Tensor> outputs = op->forward(inputs);
    for (int k = 0; k < n.output_size(); ++k)
      if (n.output(k) == name && static_cast<size_t>(k) < outputs.size())
        return outputs[static_cast<size_t>(k)];
    return std::nullopt;
  }

  const onnx::GraphProto& g_;
  int64_t opset_;
  std::map<std::string, const onnx::TensorProto*> initializers_;
  std::map<std::string, int> producers_;
  std::map<std::string, Shape> static_input_shapes_;
  std::map<std::string, std::optional<Tensor>> known_;
};

// Renames the names in `names` wherever a node of `g` (or of a graph nested in its attributes) reads or
// writes them.
void rename_in(onnx::GraphProto& g, const std::map<std::string, std::string>& names) {
  const auto renamed = [&](std::string* s) {
    if (const auto it = names.find(*s); it != names.end()) *s = it->second;
  };
  for (onnx::NodeProto& n : *g.mutable_node()) {
    for (std::string& in : *n.mutable_input()) renamed(&in);
    for (std::string& out : *n.mutable_output()) renamed(&out);
    for (onnx::AttributeProto& a : *n.mutable_attribute()) {
      if (a.has_g()) rename_in(*a.mutable_g(), names);
      for (onnx::GraphProto& sub : *a.mutable_graphs()) rename_in(sub, names);
    }
  }
  for (onnx::ValueInfoProto& out : *g.mutable_output()) renamed(out.mutable_name());
}

// Replaces each If node whose condition is known at load time by the nodes of the branch it takes, the
// branch's own names prefixed with the If node's so they cannot clash with the outer graph's, and an
// Identity per output. Repeats until no If is left, so a condition computed from a folded branch folds
// too. An If whose condition depends on the model's inputs is refused. True when any If was folded.
bool fold_if_nodes(onnx::GraphProto& g, const std::string& name, int64_t opset) {
  for (bool folded = false;; folded = true) {
    int index = -1;
    for (int i = 0; i < g.node_size() && index < 0; ++i)
      if (g.node(i).op_type() == "If" && is_default_domain(g.node(i))) index = i;
    if (index < 0) return folded;
    const onnx::NodeProto node = g.node(index);
    const std::string where = name + ": " + where_of(node, index, opset);
    const std::optional<Tensor> condition =
        node.input_size() == 1 ? LoadTimeValues(g, opset).value(node.input(0)) : std::nullopt;
    if (!condition)
      throw Error(where + ": the condition '" + (node.input_size() ? node.input(0) : std::string()) +
                  "' is not known at load time (it depends on the model's inputs); sieve runs an If only "
                  "when its condition is a constant or folds to one");
    if (condition->size() != 1)
      throw Error(where + ": the condition has " + std::to_string(condition->size()) + " elements, not one");
    const std::string branch_name = (*condition)[0] != 0.0f ? "then_branch" : "else_branch";
    onnx::GraphProto branch;
    bool found = false;
    for (const onnx::AttributeProto& a : node.attribute()) {
      if (a.name() == branch_name && a.has_g()) {
        branch = a.g();
        found = true;
      }
    }
    if (!found) throw Error(where + ": attribute '" + branch_name + "' is missing");
    if (branch.output_size() != node.output_size())
      throw Error(where + ": " + branch_name + " has " + std::to_string(branch.output_size()) +
                  " outputs, the node " + std::to_string(node.output_size()));

    // Names the branch defines get the prefix; names it reads from the outer graph keep theirs.
    const std::string prefix = (node.name().empty() ? "If_" + std::to_string(index) : node.name()) + "/";
    std::map<std::string, std::string> names;
    for (const onnx::TensorProto& init : branch.initializer()) names[init.name()] = prefix + init.name();
    for (const onnx::NodeProto& n : branch.node())
      for (const std::string& out : n.output())
        if (!out.empty()) names[out] = prefix + out;
    rename_in(branch, names);
    for (onnx::TensorProto init : branch.initializer()) {
      init.set_name(names.at(init.name()));
      *g.add_initializer() = init;
    }
    std::vector<onnx::NodeProto> inlined(branch.node().begin(), branch.node().end());
    for (int k = 0; k < node.output_size(); ++k) {
      if (node.output(k).empty()) continue;
      onnx::NodeProto identity;
      identity.set_op_type("Identity");
      identity.set_name(prefix + "output_" + std::to_string(k));
      identity.add_input(branch.output(k).name());
      identity.add_output(node.output(k));
      inlined.push_back(identity);
    }
    std::vector<onnx::NodeProto> nodes(g.node().begin(), g.node().end());
    nodes.erase(nodes.begin() + index);
    nodes.insert(nodes.begin() + index, inlined.begin(), inlined.end());
    g.clear_node();
    for (onnx::NodeProto& n : nodes) *g.add_node() = std::move(n);
  }
}

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
      if (auto it = inferred.find(out); it != inferred.end()) {
        read_type_shape(*it->second, v, b.name + ": value '" + out + "'");
        if (node.outputs.empty())
          spec.integer_output = is_integer_type(it->second->tensor_type().elem_type());
      }
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
  // Inlined branches get their shapes inferred with the rest of the graph.
  if (fold_if_nodes(*model.mutable_graph(), name, report.opset)) check_and_infer_shapes(model, name);

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
