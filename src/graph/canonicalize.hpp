#pragma once

#include "sieve/graph.hpp"
#include "sieve/model.hpp"

namespace sieve {

// Applies the enabled semantics-preserving rewrites and records each one in the report.
void canonicalize(Graph& graph, const CanonicalizeOptions& options, ModelReport& report);

}  // namespace sieve
