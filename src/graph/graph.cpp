#include "sieve/graph.hpp"

#include <algorithm>

#include "sieve/error.hpp"

namespace sieve {

ValueId Graph::add_value(Value value) {
  values_.push_back(std::move(value));
  return static_cast<ValueId>(values_.size() - 1);
}

void Graph::add_node(Node node) {
  nodes_.push_back(std::move(node));
}

OpRole Graph::role(const Node& node) const {
  const auto varying = std::make_unique<bool[]>(node.inputs.size());
  for (size_t i = 0; i < node.inputs.size(); ++i)
    varying[i] = node.inputs[i] >= 0 && !value(node.inputs[i]).is_constant();
  return node.op->role(std::span<const bool>(varying.get(), node.inputs.size()));
}

std::vector<int> Graph::producers() const {
  std::vector<int> producer(values_.size(), -1);
  for (size_t n = 0; n < nodes_.size(); ++n) {
    for (ValueId v : nodes_[n].outputs) {
      if (v >= 0) producer[static_cast<size_t>(v)] = static_cast<int>(n);
    }
  }
  return producer;
}

std::vector<int> Graph::use_counts() const {
  std::vector<int> uses(values_.size(), 0);
  for (const Node& node : nodes_) {
    for (ValueId v : node.inputs) {
      if (v >= 0) ++uses[static_cast<size_t>(v)];
    }
  }
  for (ValueId v : outputs) ++uses[static_cast<size_t>(v)];
  return uses;
}

void Graph::sort_topologically() {
  const std::vector<int> producer = producers();
  // 0 = unvisited, 1 = on the current path, 2 = done. Iterative DFS so deep graphs cannot overflow the stack.
  std::vector<int> state(nodes_.size(), 0);
  std::vector<size_t> order;
  order.reserve(nodes_.size());
  for (size_t root = 0; root < nodes_.size(); ++root) {
    if (state[root] != 0) continue;
    std::vector<std::pair<size_t, size_t>> stack{{root, 0}};  // (node, next input to visit)
    state[root] = 1;
    while (!stack.empty()) {
      auto& [n, next] = stack.back();
      if (next < nodes_[n].inputs.size()) {
        const ValueId v = nodes_[n].inputs[next++];
        if (v < 0) continue;
        const int p = producer[static_cast<size_t>(v)];
        if (p < 0) continue;
        if (state[static_cast<size_t>(p)] == 1) {
          throw Error("graph has a cycle through node '" + nodes_[static_cast<size_t>(p)].name +
                      "' (value '" + values_[static_cast<size_t>(v)].name + "')");
        }
        if (state[static_cast<size_t>(p)] == 0) {
          state[static_cast<size_t>(p)] = 1;
          stack.emplace_back(static_cast<size_t>(p), 0);
        }
      } else {
        state[n] = 2;
        order.push_back(n);
        stack.pop_back();
      }
    }
  }
  std::vector<Node> sorted;
  sorted.reserve(nodes_.size());
  for (size_t n : order) sorted.push_back(std::move(nodes_[n]));
  nodes_ = std::move(sorted);
}

void Graph::prune() {
  const std::vector<int> producer = producers();
  std::vector<bool> live(nodes_.size(), false);
  std::vector<ValueId> pending(outputs.begin(), outputs.end());
  while (!pending.empty()) {
    const ValueId v = pending.back();
    pending.pop_back();
    const int p = producer[static_cast<size_t>(v)];
    if (p < 0 || live[static_cast<size_t>(p)]) continue;
    live[static_cast<size_t>(p)] = true;
    for (ValueId in : nodes_[static_cast<size_t>(p)].inputs) {
      if (in >= 0) pending.push_back(in);
    }
  }
  std::vector<Node> kept;
  for (size_t n = 0; n < nodes_.size(); ++n) {
    if (live[n]) kept.push_back(std::move(nodes_[n]));
  }
  nodes_ = std::move(kept);
}

}  // namespace sieve
