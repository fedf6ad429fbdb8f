#pragma once

#include "sieve/graph.hpp"
#include "sieve/model.hpp"

namespace sieve {

// Computes at load time every node whose inputs are known then (constants, and the shapes of values
// whose shape is fully known), so the shape arithmetic exporters emit disappears from the run-time
// graph; then drops what no output needs. Results above 2²⁴ elements stay in the graph.
void fold_constants(Graph& graph, ModelReport& report);

// Applies the enabled semantics-preserving rewrites and records each one in the report.
void canonicalize(Graph& graph, const CanonicalizeOptions& options, ModelReport& report);

}  // namespace sieve
