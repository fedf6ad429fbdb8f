#pragma once

#include <map>
#include <vector>

#include "sieve/graph.hpp"
#include "sieve/tensor.hpp"

namespace sieve {

// Activations of one forward pass, indexed by ValueId; empty for values that were not kept.
struct Trace {
  std::vector<Tensor> values;
  std::vector<Shape> shapes;  // every computed value's shape, kept or not
};

// Runs a graph forward, batched over the leading dimension of the inputs. Each intermediate value is
// released right after its last consumer ran, unless the caller asked to keep it in the trace. An op
// whose output only a Relu reads runs fused with it unless that output is to be kept.
class Executor {
 public:
  explicit Executor(const Graph& graph);

  // `keep[v]` marks values to keep in `trace` (constants and inputs are always available there).
  // `given` supplies computed values from outside (an embedding lookup's output on an integrated-gradients
  // path); a node whose outputs are all given is not run.
  std::vector<Tensor> run(const std::vector<Tensor>& inputs, Trace* trace = nullptr,
                          const std::vector<bool>& keep = {},
                          const std::map<ValueId, Tensor>& given = {}) const;

 private:
  const Graph& graph_;
  std::vector<int> last_use_;
  // Per node: the index of the Relu fused into it (the only reader of its output), or -1.
  std::vector<int>
      fused_relu_;  // per value: index of the last node reading it (-1: none; outputs never freed)
};

}  // namespace sieve
