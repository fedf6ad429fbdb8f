#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "sieve/op.hpp"
#include "sieve/op_spec.hpp"
#include "sieve/tensor.hpp"

namespace sieve {

using ValueId = int;

// A tensor flowing through the graph: a model input, an intermediate result, or a constant
// (initializer / folded sub-graph). Declared dimensions may be -1 (unknown until run time).
struct Value {
  std::string name;
  Shape shape;               // declared / inferred; -1 for unknown dimensions
  bool shape_known = false;  // false when not even the rank is known
  Tensor constant;           // non-empty for constants
  bool is_constant() const { return !constant.empty(); }
};

struct Node {
  std::string name;  // ONNX node name, or "<op_type>_<index>" when the file has none
  OpSpec spec;       // what the op was created from
  std::unique_ptr<Op> op;
  std::vector<ValueId> inputs;  // -1 for an omitted optional input
  std::vector<ValueId> outputs;
};

// A computation graph with nodes in topological order.
class Graph {
 public:
  ValueId add_value(Value value);
  void add_node(Node node);

  std::vector<Value>& values() { return values_; }
  const std::vector<Value>& values() const { return values_; }
  std::vector<Node>& nodes() { return nodes_; }
  const std::vector<Node>& nodes() const { return nodes_; }
  const Value& value(ValueId id) const { return values_.at(static_cast<size_t>(id)); }
  Value& value(ValueId id) { return values_.at(static_cast<size_t>(id)); }

  std::vector<ValueId> inputs;   // model inputs (not constants)
  std::vector<ValueId> outputs;  // model outputs

  // Index of the node producing each value (-1 for inputs and constants).
  std::vector<int> producers() const;
  // Number of node inputs plus graph outputs that read each value.
  std::vector<int> use_counts() const;
  // Sorts the nodes topologically; throws sieve::Error naming a node on a cycle.
  void sort_topologically();
  // Removes the nodes whose outputs no graph output depends on.
  void prune();
  // The role of a node's op, its present non-constant inputs being the varying ones: the one place
  // that decides when an input counts as fixed.
  OpRole role(const Node& node) const;

 private:
  std::vector<Value> values_;
  std::vector<Node> nodes_;
};

}  // namespace sieve
