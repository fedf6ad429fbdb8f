#include "sieve/op.hpp"

#include <algorithm>

#include "ops/common.hpp"
#include "sieve/error.hpp"

namespace sieve {

std::string_view role_name(OpRole role) {
  switch (role) {
    case OpRole::linear:
      return "linear";
    case OpRole::monotone_activation:
      return "monotone activation";
    case OpRole::nonmonotone_activation:
      return "non-monotone activation";
    case OpRole::proportional:
      return "proportional";
    case OpRole::data_movement:
      return "data movement";
    case OpRole::max_selection:
      return "max selection";
    case OpRole::product:
      return "product";
    case OpRole::softmax:
      return "softmax";
    case OpRole::normalization:
      return "normalization";
    case OpRole::shape_only:
      return "shape only";
    case OpRole::recurrent:
      return "recurrent cell";
  }
  throw Error("unknown op role");
}

OpRole Op::scaling_or_product(std::span<const bool> varying) {
  return std::count(varying.begin(), varying.end(), true) > 1 ? OpRole::product : OpRole::proportional;
}

std::vector<Tensor> Op::vjp(const VjpArgs&) const {
  throw Error("operator " + std::string(type()) + " has no gradient");
}

std::vector<Tensor> Op::forward_relu(std::span<const Tensor>) const {
  throw Error("operator " + std::string(type()) + " cannot fuse a following Relu");
}

VjpReads Op::vjp_reads(size_t num_inputs, size_t num_outputs) const {
  return {std::vector<bool>(num_inputs, true), std::vector<bool>(num_outputs, true)};
}

bool LinearOp::is_layer() const {
  const Form f = form();
  return f == Form::convolution || f == Form::transposed_convolution || f == Form::dense;
}

OpRole LinearOp::role(std::span<const bool> varying) const {
  const bool parameters_vary =
      varying.size() > 1 && std::any_of(varying.begin() + 1, varying.end(), [](bool v) { return v; });
  return parameters_vary ? scaling_or_product(varying) : OpRole::linear;
}

Tensor LinearOp::bias_gradient(const Tensor& grad_y, const Shape& bias_shape) const {
  Tensor g(bias_shape);
  const int64_t n = grad_y.dim(0), c = grad_y.rank() > 1 ? grad_y.dim(1) : 1;
  const int64_t inner = n * c == 0 ? 0 : grad_y.size() / (n * c);
  if (g.size() != c)
    throw Error(std::string(type()) + ": bias of shape " + to_string(bias_shape) + " for " +
                std::to_string(c) + " channels");
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < c; ++j) {
      double sum = 0.0;
      for (int64_t k = 0; k < inner; ++k) sum += grad_y[(i * c + j) * inner + k];
      g[j] += static_cast<float>(sum);
    }
  }
  return g;
}

std::vector<Tensor> LinearOp::vjp(const VjpArgs& a) const {
  std::vector<Tensor> grads(a.inputs.size());
  const Tensor& gy = a.grad_outputs[0];
  if (gy.empty()) return grads;
  const bool want_params = std::any_of(a.wanted.begin() + 1, a.wanted.end(), [](bool w) { return w; });
  if (want_params && !parameters_are_inputs()) {
    throw Error("operator " + std::string(type()) +
                ": gradients with respect to its parameters are not supported");
  }
  if (a.wanted[0]) grads[0] = apply_transpose(gy, weight(a.inputs), a.input_shapes[0]);
  if (a.wanted.size() > 1 && a.wanted[1]) grads[1] = weight_gradient(a.inputs[0], gy, a.input_shapes[1]);
  if (a.wanted.size() > 2 && a.wanted[2]) grads[2] = bias_gradient(gy, a.input_shapes[2]);
  return grads;
}

VjpReads LinearOp::vjp_reads(size_t num_inputs, size_t num_outputs) const {
  // x is read only for a parameter gradient (bilinear uses such as MatMul of two activations) and by
  // relevance rules; the output is never read.
  return {std::vector<bool>(num_inputs, true), std::vector<bool>(num_outputs, false)};
}

}  // namespace sieve
