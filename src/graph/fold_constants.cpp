#include <algorithm>
#include <optional>

#include "graph/canonicalize.hpp"
#include "sieve/error.hpp"

namespace sieve {
namespace {

// Constant sub-graphs larger than this stay in the graph instead of being folded at load time.
constexpr int64_t kMaxFoldedElements = int64_t{1} << 24;

bool fully_known(const Value& value) {
  return value.shape_known &&
         std::all_of(value.shape.begin(), value.shape.end(), [](int64_t d) { return d >= 0; });
}

// The node's inputs when all are known at load time, else nothing.
std::optional<std::vector<Tensor>> known_inputs(const Graph& graph, const Node& node) {
  std::vector<Tensor> inputs;
  for (ValueId v : node.inputs) {
    if (v < 0) {
      inputs.emplace_back();
      continue;
    }
    const Value& value = graph.value(v);
    if (value.is_constant()) {
      inputs.push_back(value.constant);
    } else if (node.op->reads_only_shapes() && fully_known(value)) {
      inputs.push_back(Tensor::uninitialized(value.shape));  // only the shape is read; pages stay untouched
    } else {
      return std::nullopt;
    }
  }
  return inputs;
}

}  // namespace

void fold_constants(Graph& graph, ModelReport& report) {
  std::vector<Node> kept;
  for (Node& node : graph.nodes()) {
    if (const std::optional<std::vector<Tensor>> inputs = known_inputs(graph, node)) {
      std::vector<Tensor> outputs;
      try {
        outputs = node.op->forward(*inputs);
      } catch (const std::exception& e) {
        const std::string message = e.what();
        throw Error(message.rfind("node '", 0) == 0 ? message : node.spec.where() + ": " + message);
      }
      const bool small = std::all_of(outputs.begin(), outputs.end(),
                                     [](const Tensor& t) { return t.size() <= kMaxFoldedElements; });
      if (small) {
        for (size_t k = 0; k < node.outputs.size() && k < outputs.size(); ++k) {
          if (node.outputs[k] < 0) continue;
          Value& out = graph.value(node.outputs[k]);
          out.constant = outputs[k];
          out.shape = outputs[k].shape();
          out.shape_known = true;
        }
        ++report.folded_constant_nodes;
        continue;
      }
    }
    kept.push_back(std::move(node));
  }
  graph.nodes() = std::move(kept);
  graph.prune();
}

}  // namespace sieve
