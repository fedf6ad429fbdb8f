// Input invariance (book ch. 14): a twin model for shifted inputs, built in memory, and the difference
// between the explanations of x by the model and of x + shift by the twin.

#include <algorithm>
#include <cmath>

#include "evaluation/common.hpp"
#include "sieve/error.hpp"
#include "sieve/evaluation.hpp"

namespace sieve {

Tensor shifted(const Tensor& sample, const std::vector<float>& shift) {
  const int64_t channels = sample.rank() >= 2 ? sample.dim(1) : 1;
  if (shift.size() != 1 && static_cast<int64_t>(shift.size()) != channels)
    throw Error("input shift of " + std::to_string(shift.size()) + " values for an input of " +
                std::to_string(channels) + " channels: give one value or one per channel");
  Tensor out = sample.clone();
  const int64_t rows = sample.dim(0), plane = sample.size() / (rows * channels);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < channels; ++c) {
      const float m = shift[shift.size() == 1 ? 0 : static_cast<size_t>(c)];
      float* at = out.data() + (r * channels + c) * plane;
      for (int64_t i = 0; i < plane; ++i) at[i] += m;
    }
  }
  return out;
}

namespace {

// The nodes reading value `v`.
std::vector<size_t> consumers(const Graph& graph, ValueId v) {
  std::vector<size_t> out;
  for (size_t n = 0; n < graph.nodes().size(); ++n) {
    const std::vector<ValueId>& in = graph.nodes()[n].inputs;
    if (std::find(in.begin(), in.end(), v) != in.end()) out.push_back(n);
  }
  return out;
}

// The inputs of node `n` with `value` in place of `v` and constants elsewhere.
std::vector<Tensor> node_inputs(const Graph& graph, const Node& node, ValueId v, const Tensor& value) {
  std::vector<Tensor> in;
  for (ValueId id : node.inputs) {
    if (id == v) {
      in.push_back(value);
    } else if (id < 0) {
      in.emplace_back();
    } else if (graph.value(id).is_constant()) {
      in.push_back(graph.value(id).constant);
    } else {
      throw Error("input invariance: node '" + node.name + "' (" + std::string(node.op->type()) +
                  ") on the way to the first layer reads another varying value");
    }
  }
  return in;
}

bool zero_padded(const Node& node) {
  const std::vector<int64_t> pads = node.spec.attributes.get_ints("pads", {});
  const std::string auto_pad = node.spec.attributes.get_string("auto_pad", "NOTSET");
  return std::any_of(pads.begin(), pads.end(), [](int64_t p) { return p != 0; }) ||
         (auto_pad != "NOTSET" && auto_pad != "VALID");
}

}  // namespace

void shift_input(Model& model, const std::vector<float>& shift) {
  Graph& graph = model.graph();
  if (graph.inputs.size() != 1) throw Error("input invariance needs a model with one input");
  Shape shape = model.input_shapes().at(0);
  if (shape.empty()) throw Error("input invariance needs an input with a batch axis");
  shape[0] = 1;
  for (int64_t d : shape) {
    if (d < 1)
      throw Error("input invariance needs the input's sample shape; it is " +
                  to_string(model.input_shapes()[0]));
  }
  // The shift as it arrives at the first layer, carried through the reshapes on the way.
  ValueId v = graph.inputs[0];
  Tensor moved = shifted(Tensor(shape), shift);
  size_t layer = 0;
  for (;;) {
    const std::vector<size_t> readers = consumers(graph, v);
    if (readers.size() != 1)
      throw Error("input invariance: the input value '" + graph.value(v).name + "' feeds " +
                  std::to_string(readers.size()) + " nodes; the twin compensates a shift in one first layer");
    const Node& node = graph.nodes()[readers[0]];
    const LinearOp* linear = node.op->as_linear();
    if (linear != nullptr && linear->is_layer()) {
      layer = readers[0];
      break;
    }
    if (graph.role(node) != OpRole::data_movement)
      throw Error("input invariance: the input reaches node '" + node.name + "' (" +
                  std::string(node.op->type()) + ") before any convolution or dense layer");
    moved = node.op->forward(node_inputs(graph, node, v, moved)).at(0);
    v = node.outputs.at(0);
  }
  Node& node = graph.nodes()[layer];
  const LinearOp& linear = *node.op->as_linear();
  const std::vector<Tensor> inputs = node_inputs(graph, node, v, moved);
  const Tensor response = linear.apply(moved, linear.weight(inputs), Tensor());  // W·shift per output
  const Tensor bias = linear.bias(inputs);
  const int64_t neurons = response.dim(1), positions = response.size() / neurons;
  const bool per_channel = linear.form() == LinearOp::Form::dense || !zero_padded(node);
  if (per_channel && node.inputs.size() >= 3 && node.inputs[2] >= 0 && bias.size() == neurons &&
      graph.value(node.inputs[2]).constant.size() == neurons) {
    Tensor compensated(graph.value(node.inputs[2]).constant.shape());
    for (int64_t k = 0; k < neurons; ++k) compensated[k] = bias[k] - response[k * positions];
    node.inputs[2] = graph.add_value({node.name + "_shifted_bias", compensated.shape(), true, compensated});
    return;
  }
  Tensor compensation(response.shape());
  for (int64_t i = 0; i < response.size(); ++i) compensation[i] = -response[i];
  const ValueId out = node.outputs.at(0);
  const ValueId constant =
      graph.add_value({node.name + "_shift_compensation", compensation.shape(), true, compensation});
  const Value& declared = graph.value(out);
  const ValueId sum =
      graph.add_value({node.name + "_shift_compensated", declared.shape, declared.shape_known, Tensor()});
  for (Node& other : graph.nodes()) std::replace(other.inputs.begin(), other.inputs.end(), out, sum);
  std::replace(graph.outputs.begin(), graph.outputs.end(), out, sum);
  OpSpec spec;
  spec.op_type = "Add";
  spec.name = node.name + "_shift_compensation";
  spec.opset = 13;
  spec.num_inputs = 2;
  spec.num_outputs = 1;
  spec.input_present = {true, true};
  Node add{spec.name, spec, create_op(spec), {out, constant}, {sum}};
  graph.add_node(std::move(add));
  graph.sort_topologically();
}

InputInvariance input_invariance(const Model& model, const Analyzer& analyzer, const Model& twin,
                                 const Analyzer& twin_analyzer, const std::vector<Tensor>& samples,
                                 const std::vector<float>& shift, const std::vector<int64_t>& targets,
                                 double tolerance, int64_t max_batch) {
  evaluation::check_samples(samples);
  evaluation::check_targets(model, targets, samples.size());
  std::vector<Tensor> moved;
  for (const Tensor& s : samples) moved.push_back(shifted(s, shift));
  const std::vector<Tensor> original = explain_targets(model, analyzer, samples, targets, max_batch);
  const std::vector<Tensor> twin_map = explain_targets(twin, twin_analyzer, moved, targets, max_batch);
  InputInvariance r;
  for (size_t i = 0; i < samples.size(); ++i) {
    double largest = 0.0, difference = 0.0;
    for (int64_t k = 0; k < original[i].size(); ++k) {
      largest = std::max(largest, std::abs(static_cast<double>(original[i][k])));
      difference = std::max(difference, std::abs(static_cast<double>(original[i][k]) - twin_map[i][k]));
    }
    // An all-zero explanation is invariant only if the twin's is all zero too.
    r.relative_difference.push_back(largest > 0.0 ? difference / largest
                                                  : (difference > 0.0 ? INFINITY : 0.0));
    r.max_relative_difference = std::max(r.max_relative_difference, r.relative_difference.back());
  }
  r.passed = r.max_relative_difference <= tolerance;
  return r;
}

}  // namespace sieve
