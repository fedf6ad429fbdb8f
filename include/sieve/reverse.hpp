#pragma once

// The reverse pass: walk the graph backwards from one output, giving each node a backward mapping
// (the op's exact vector-Jacobian product by default) and summing the values that arrive at a tensor
// from several consumers before they enter its producer.

#include <functional>
#include <vector>

#include "sieve/executor.hpp"
#include "sieve/graph.hpp"

namespace sieve {

// A node's backward mapping: from the node's forward values and the values arriving at its outputs to
// the values sent to its inputs (an empty tensor where nothing flows).
using BackwardMapping = std::function<std::vector<Tensor>(const Node& node, const VjpArgs& args)>;

// Which nodes lie between the explained value (a model input, or a computed value such as an embedding
// lookup's output) and the explained output, and which forward values the reverse pass reads. Computed
// once per graph and output.
class ReversePlan {
 public:
  ReversePlan(const Graph& graph, ValueId output, ValueId input);
  // Values the trace must keep (for Executor::run) when every node on the path uses its op's VJP
  // reads; a mapping that reads more asks for it through `also_keep`.
  std::vector<bool> trace_keep(const std::vector<ValueId>& also_keep = {}) const;
  bool on_path(size_t node) const { return on_path_[node]; }
  bool on_path_value(ValueId v) const { return carries_grad_[static_cast<size_t>(v)]; }
  ValueId output() const { return output_; }
  ValueId input() const { return input_; }

 private:
  const Graph& graph_;
  ValueId output_, input_;
  std::vector<bool> on_path_;       // per node
  std::vector<bool> carries_grad_;  // per value: depends on the input and reaches the output
};

// Per node: whether it lies on a path from one of `from` to one of `to` (values in `from` count as given,
// so their producers do not).
std::vector<bool> nodes_between(const Graph& graph, const std::vector<ValueId>& from,
                                const std::vector<ValueId>& to);

// Runs the reverse pass from `seed` (shaped like the output) and returns the value arriving at the
// input. `mapping_for(node_index)` returns nullptr to use the op's VJP.
Tensor reverse_pass(const Graph& graph, const ReversePlan& plan, const Trace& trace, const Tensor& seed,
                    const std::function<const BackwardMapping*(size_t node_index)>& mapping_for = {});

}  // namespace sieve
