#pragma once

// What pattern fitting and the ρ(S) statistics both need from a forward pass: every pattern layer's
// input, output with and without bias, and parameters.

#include <functional>
#include <string>
#include <vector>

#include "sieve/io/stream.hpp"
#include "sieve/model.hpp"

namespace sieve::patterns {

struct LayerPass {
  const Node* node = nullptr;
  const LinearOp* op = nullptr;
  Tensor x, z, y;    // input, output with bias, output without bias
  Tensor w, b;       // the op's parameters
  int64_t axis = 1;  // the output axis that indexes the neurons (the last for MatMul)
};

// The node's inputs with `x` in place of the first and the constants for the others.
std::vector<Tensor> constant_inputs(const Graph& graph, const Node& node, const Tensor& x);

// Runs `batch` forward keeping only the pattern layers' values; `what` names the caller in messages.
std::vector<LayerPass> run_pattern_layers(const Model& model, const Tensor& batch, const std::string& what);

// Feeds every batch of `data` to `accumulate`, model.rows_per_pass(batch) samples at a time, reporting
// `progress(done, total)`; throws when the data is empty (`what` names the caller).
void for_each_batch(const Model& model, InputStream& data, int64_t batch,
                    const std::function<void(const Tensor&)>& accumulate,
                    const std::function<void(int64_t, int64_t)>& progress, const std::string& what);

}  // namespace sieve::patterns
