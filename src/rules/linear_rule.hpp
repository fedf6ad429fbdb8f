#pragma once

// The one generic relevance mapping of every linear node (see sieve/lrp.hpp).

#include "sieve/lrp.hpp"
#include "sieve/op.hpp"

namespace sieve::rules {

// A rule's substitute parameters for one node: per branch, the modified weights and bias.
struct ModifiedParameters {
  std::vector<Tensor> weights, biases;
};
ModifiedParameters modify_parameters(const LinearRule& rule, const Tensor& weight, const Tensor& bias);

struct LinearRuleInputs {
  const LinearOp& op;
  const Tensor& input;   // a, the node's forward input
  const Tensor& weight;  // the node's own parameters (for the true z when it is not in the trace)
  const Tensor& bias;
  const Tensor& output;     // the node's forward output z = forward(a, W, b), or empty when not kept
  const Tensor& relevance;  // R at the output
  const Tensor& low;        // z^B bounds shaped like the input (empty unless the rule uses them)
  const Tensor& high;
};

// R_in = Σ_b λ_g σ_b · in_b(a) ⊙ backward_data(R ⊙ mask_g / stabilize(z_g), W_b).
Tensor apply_linear_rule(const LinearRule& rule, const ModifiedParameters& params,
                         const LinearRuleInputs& in);

// A tensor shaped like `like` holding bound[c] along its channels: axis 1 when it has as many channels
// as there are bounds, otherwise the sample is read as [channels, rest] (a flattened image); one bound
// fills everything.
Tensor bounds_like(const Shape& like, const std::vector<float>& bound, const std::string& where);

}  // namespace sieve::rules
