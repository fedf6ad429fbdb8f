#include "sieve/reverse.hpp"

#include <oneapi/dnnl/dnnl.hpp>

#include "sieve/error.hpp"

namespace sieve {
namespace {

void accumulate(Tensor& into, const Tensor& add) {
  if (into.empty()) {
    into = add;
    return;
  }
  if (into.shape() != add.shape())
    throw Error("reverse pass: gradient shapes " + to_string(into.shape()) + " and " +
                to_string(add.shape()) + " differ");
  if (!into.unique()) into = into.clone();  // the first contribution may alias a forward value
  float* p = into.data();
  const float* q = add.data();
  const int64_t n = into.size();
#pragma omp parallel for simd if (n > 65536)
  for (int64_t i = 0; i < n; ++i) p[i] += q[i];
}

struct Between {
  std::vector<bool> values;  // depends on one of `from` and reaches one of `to`
  std::vector<bool> nodes;   // reads such a value and computes one
};

Between between(const Graph& graph, const std::vector<ValueId>& from, const std::vector<ValueId>& to) {
  const auto& nodes = graph.nodes();
  std::vector<bool> from_input(graph.values().size(), false), to_output(graph.values().size(), false);
  // A value in `from` may be computed (an embedding lookup's output): its producer is not between.
  std::vector<bool> given(graph.values().size(), false), reads_input(nodes.size(), false);
  for (ValueId v : from) given[static_cast<size_t>(v)] = from_input[static_cast<size_t>(v)] = true;
  for (size_t n = 0; n < nodes.size(); ++n) {
    for (ValueId v : nodes[n].inputs)
      reads_input[n] = reads_input[n] || (v >= 0 && from_input[static_cast<size_t>(v)]);
    for (ValueId v : nodes[n].outputs) {
      if (v >= 0 && !given[static_cast<size_t>(v)]) from_input[static_cast<size_t>(v)] = reads_input[n];
    }
  }
  for (ValueId v : to) to_output[static_cast<size_t>(v)] = true;
  for (size_t n = nodes.size(); n-- > 0;) {
    bool reaches = false;
    for (ValueId v : nodes[n].outputs) reaches = reaches || (v >= 0 && to_output[static_cast<size_t>(v)]);
    if (!reaches) continue;
    for (ValueId v : nodes[n].inputs) {
      if (v >= 0) to_output[static_cast<size_t>(v)] = true;
    }
  }
  Between b{std::vector<bool>(graph.values().size()), std::vector<bool>(nodes.size(), false)};
  for (size_t v = 0; v < b.values.size(); ++v) b.values[v] = from_input[v] && to_output[v];
  for (size_t n = 0; n < nodes.size(); ++n) {
    for (ValueId v : nodes[n].outputs)
      b.nodes[n] = b.nodes[n] || (reads_input[n] && v >= 0 && b.values[static_cast<size_t>(v)]);
  }
  return b;
}

}  // namespace

std::vector<bool> nodes_between(const Graph& graph, const std::vector<ValueId>& from,
                                const std::vector<ValueId>& to) {
  return between(graph, from, to).nodes;
}

ReversePlan::ReversePlan(const Graph& graph, ValueId output, ValueId input)
    : graph_(graph), output_(output), input_(input) {
  Between b = between(graph, {input}, {output});
  on_path_ = std::move(b.nodes);
  carries_grad_ = std::move(b.values);
  if (!carries_grad_[static_cast<size_t>(output)])
    throw Error("the explained output does not depend on the input");
}

std::vector<bool> ReversePlan::trace_keep(const std::vector<ValueId>& also_keep) const {
  std::vector<bool> keep(graph_.values().size(), false);
  const auto& nodes = graph_.nodes();
  for (size_t n = 0; n < nodes.size(); ++n) {
    if (!on_path_[n]) continue;
    const VjpReads reads = nodes[n].op->vjp_reads(nodes[n].inputs.size(), nodes[n].outputs.size());
    for (size_t i = 0; i < nodes[n].inputs.size(); ++i) {
      if (nodes[n].inputs[i] >= 0 && i < reads.inputs.size() && reads.inputs[i])
        keep[static_cast<size_t>(nodes[n].inputs[i])] = true;
    }
    for (size_t k = 0; k < nodes[n].outputs.size(); ++k) {
      if (nodes[n].outputs[k] >= 0 && k < reads.outputs.size() && reads.outputs[k])
        keep[static_cast<size_t>(nodes[n].outputs[k])] = true;
    }
  }
  for (ValueId v : also_keep) keep[static_cast<size_t>(v)] = true;
  return keep;
}

Tensor reverse_pass(const Graph& graph, const ReversePlan& plan, const Trace& trace, const Tensor& seed,
                    const std::function<const BackwardMapping*(size_t)>& mapping_for) {
  const auto& nodes = graph.nodes();
  std::vector<Tensor> grads(graph.values().size());
  if (seed.shape() != trace.shapes[static_cast<size_t>(plan.output())]) {
    throw Error("reverse pass: seed shape " + to_string(seed.shape()) + " differs from the output shape " +
                to_string(trace.shapes[static_cast<size_t>(plan.output())]));
  }
  grads[static_cast<size_t>(plan.output())] = seed;
  std::vector<Tensor> inputs, outputs, grad_outputs;
  std::vector<Shape> input_shapes;
  std::unique_ptr<bool[]> wanted;
  for (size_t n = nodes.size(); n-- > 0;) {
    if (!plan.on_path(n)) continue;
    const Node& node = nodes[n];
    bool any = false;
    grad_outputs.clear();
    for (ValueId v : node.outputs) {
      grad_outputs.push_back(v >= 0 ? grads[static_cast<size_t>(v)] : Tensor());
      any = any || !grad_outputs.back().empty();
    }
    if (!any) continue;
    inputs.clear();
    input_shapes.clear();
    wanted = std::make_unique<bool[]>(node.inputs.size());
    for (size_t i = 0; i < node.inputs.size(); ++i) {
      const ValueId v = node.inputs[i];
      inputs.push_back(v >= 0 ? trace.values[static_cast<size_t>(v)] : Tensor());
      input_shapes.push_back(v >= 0 ? trace.shapes[static_cast<size_t>(v)] : Shape());
      wanted[i] = v >= 0 && !graph.value(v).is_constant() && plan.on_path_value(v);
    }
    outputs.clear();
    for (ValueId v : node.outputs)
      outputs.push_back(v >= 0 ? trace.values[static_cast<size_t>(v)] : Tensor());
    const VjpArgs args{inputs, input_shapes, outputs, grad_outputs,
                       std::span<const bool>(wanted.get(), node.inputs.size())};
    std::vector<Tensor> back;
    try {
      const BackwardMapping* mapping = mapping_for ? mapping_for(n) : nullptr;
      back = mapping != nullptr ? (*mapping)(node, args) : node.op->vjp(args);
    } catch (const Error& e) {
      const std::string message = e.what();
      throw Error(message.rfind("node '", 0) == 0 ? message
                                                  : node.spec.where() + ": reverse pass: " + message);
    } catch (const dnnl::error& e) {
      throw Error(node.spec.where() + ": reverse pass: oneDNN: " + e.what());
    }
    for (size_t i = 0; i < node.inputs.size() && i < back.size(); ++i) {
      if (wanted[i] && !back[i].empty()) accumulate(grads[static_cast<size_t>(node.inputs[i])], back[i]);
    }
    for (ValueId v : node.outputs) {
      if (v >= 0) grads[static_cast<size_t>(v)] = Tensor();  // consumed: free early
    }
  }
  Tensor result = grads[static_cast<size_t>(plan.input())];
  return result.empty() ? Tensor(trace.shapes[static_cast<size_t>(plan.input())]) : result;
}

}  // namespace sieve
