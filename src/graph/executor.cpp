#include "sieve/executor.hpp"

#include <algorithm>
#include <oneapi/dnnl/dnnl.hpp>

#include "sieve/error.hpp"

namespace sieve {

Executor::Executor(const Graph& graph)
    : graph_(graph), last_use_(graph.values().size(), -1), fused_relu_(graph.nodes().size(), -1) {
  const auto& nodes = graph.nodes();
  const std::vector<int> uses = graph.use_counts();
  std::vector<int> reader(graph.values().size(), -1);
  for (size_t n = 0; n < nodes.size(); ++n) {
    for (ValueId v : nodes[n].inputs) {
      if (v >= 0) reader[static_cast<size_t>(v)] = static_cast<int>(n);
    }
  }
  for (size_t n = 0; n < nodes.size(); ++n) {
    if (!nodes[n].op->fuses_relu() || nodes[n].outputs.size() != 1 || nodes[n].outputs[0] < 0) continue;
    const size_t v = static_cast<size_t>(nodes[n].outputs[0]);
    const int r = reader[v];
    if (uses[v] == 1 && r >= 0 && nodes[static_cast<size_t>(r)].op->is_relu()) fused_relu_[n] = r;
  }
  for (size_t n = 0; n < nodes.size(); ++n) {
    for (ValueId v : nodes[n].inputs) {
      if (v >= 0) last_use_[static_cast<size_t>(v)] = static_cast<int>(n);
    }
  }
  // Outputs and model inputs are never released (inputs belong to the caller and stay in the trace).
  for (ValueId v : graph.outputs) last_use_[static_cast<size_t>(v)] = static_cast<int>(nodes.size());
  for (ValueId v : graph.inputs) last_use_[static_cast<size_t>(v)] = static_cast<int>(nodes.size());
}

namespace {

// The node's input values; trailing omitted optional inputs are dropped so ops see only what was given.
void collect_args(const Graph& graph, const Node& node, const std::vector<Tensor>& values,
                  std::vector<Tensor>& args) {
  args.clear();
  for (ValueId v : node.inputs) {
    if (v >= 0 && values[static_cast<size_t>(v)].empty() && !graph.value(v).is_constant()) {
      throw Error(node.spec.where() + ": input '" + graph.value(v).name + "' was not computed");
    }
    args.push_back(v >= 0 ? values[static_cast<size_t>(v)] : Tensor());
  }
  while (!args.empty() && args.back().empty() && node.inputs[args.size() - 1] < 0) args.pop_back();
}

// Runs one node; every failure becomes one message naming the node.
std::vector<Tensor> run_op(const Node& node, const std::vector<Tensor>& args, bool fused_relu) {
  try {
    return fused_relu ? node.op->forward_relu(args) : node.op->forward(args);
  } catch (const Error& e) {
    const std::string message = e.what();
    throw Error(message.rfind("node '", 0) == 0 ? message : node.spec.where() + ": " + message);
  } catch (const dnnl::error& e) {
    throw Error(node.spec.where() + ": oneDNN: " + e.what());
  }
}

}  // namespace

std::vector<Tensor> Executor::run(const std::vector<Tensor>& inputs, Trace* trace,
                                  const std::vector<bool>& keep,
                                  const std::map<ValueId, Tensor>& given) const {
  if (inputs.size() != graph_.inputs.size()) {
    throw Error("the model takes " + std::to_string(graph_.inputs.size()) + " inputs, got " +
                std::to_string(inputs.size()));
  }
  std::vector<Tensor> values(graph_.values().size());
  for (size_t v = 0; v < values.size(); ++v) {
    if (graph_.values()[v].is_constant()) values[v] = graph_.values()[v].constant;
  }
  for (size_t i = 0; i < inputs.size(); ++i) values[static_cast<size_t>(graph_.inputs[i])] = inputs[i];
  for (const auto& [v, value] : given) values[static_cast<size_t>(v)] = value;
  auto all_given = [&](const Node& node) {
    return !given.empty() && std::all_of(node.outputs.begin(), node.outputs.end(),
                                         [&](ValueId v) { return v < 0 || given.count(v) != 0; });
  };
  auto kept = [&](ValueId v) {
    return trace != nullptr && static_cast<size_t>(v) < keep.size() && keep[static_cast<size_t>(v)];
  };

  std::vector<Shape> shapes(values.size());
  for (size_t v = 0; v < values.size(); ++v) {
    if (!values[v].empty()) shapes[v] = values[v].shape();
  }
  const auto& nodes = graph_.nodes();
  std::vector<Tensor> args;
  std::vector<bool> done(nodes.size(), false);  // Relu nodes already computed by a fused producer
  for (size_t n = 0; n < nodes.size(); ++n) {
    const Node& node = nodes[n];
    if (done[n] || all_given(node)) continue;
    const int relu = fused_relu_[n] >= 0 && !kept(node.outputs[0]) ? fused_relu_[n] : -1;
    collect_args(graph_, node, values, args);
    std::vector<Tensor> outputs = run_op(node, args, relu >= 0);
    if (relu >= 0) {
      // The op's own output never exists; the Relu's output takes the fused result.
      const ValueId pre = node.outputs[0], post = nodes[static_cast<size_t>(relu)].outputs[0];
      shapes[static_cast<size_t>(pre)] = shapes[static_cast<size_t>(post)] = outputs[0].shape();
      values[static_cast<size_t>(post)] = std::move(outputs[0]);
      done[static_cast<size_t>(relu)] = true;
      outputs.clear();
    }
    for (size_t k = 0; k < node.outputs.size() && k < outputs.size(); ++k) {
      if (node.outputs[k] < 0) continue;
      shapes[static_cast<size_t>(node.outputs[k])] = outputs[k].shape();
      values[static_cast<size_t>(node.outputs[k])] = std::move(outputs[k]);
    }
    for (ValueId v : node.inputs) {
      if (v >= 0 && last_use_[static_cast<size_t>(v)] == static_cast<int>(n) && !kept(v) &&
          !graph_.value(v).is_constant()) {
        values[static_cast<size_t>(v)] = Tensor();
      }
    }
    for (ValueId v : node.outputs) {
      if (v >= 0 && last_use_[static_cast<size_t>(v)] < 0 && !kept(v))
        values[static_cast<size_t>(v)] = Tensor();
    }
  }
  std::vector<Tensor> outputs;
  for (ValueId v : graph_.outputs) outputs.push_back(values[static_cast<size_t>(v)]);
  if (trace != nullptr) {
    trace->values = std::move(values);
    trace->shapes = std::move(shapes);
  }
  return outputs;
}

}  // namespace sieve
