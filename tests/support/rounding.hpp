#pragma once

// Tolerances from float32 rounding. sieve computes in float32 and oneDNN picks its kernels by ISA and by
// shape, so two runs of the same model on different machines or batch sizes agree only up to rounding.
// The bound used throughout the suite is the worst case of a float32 forward pass: a dot product of
// length n is off by at most γ_n ≈ n·u of Σ|w·a| (u = 2⁻²⁴; Higham, Accuracy and Stability of Numerical
// Algorithms, §3.1), and the errors of the linear layers on the way add up.

#include <cmath>

#include "sieve/model.hpp"
#include "sieve/op.hpp"

namespace sieve {

inline constexpr double kFloat32UnitRoundoff = 0x1p-24;

// τ = u · Σ fan-in over the model's linear nodes with constant weights: a bound on the error of any
// pre-activation relative to its magnitude Σ|w·a| + |b|.
inline double forward_rounding_bound(const Model& model) {
  double fan_in_sum = 0.0;
  for (const Node& node : model.graph().nodes()) {
    const LinearOp* linear = node.op->as_linear();
    if (linear == nullptr || node.inputs.size() < 2) continue;
    const Tensor& w = model.graph().value(node.inputs[1]).constant;
    if (w.empty()) continue;
    fan_in_sum += static_cast<double>(w.size() / w.dim(linear->weight_output_axis()));
  }
  return fan_in_sum * kFloat32UnitRoundoff;
}

}  // namespace sieve
