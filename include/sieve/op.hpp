#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "sieve/tensor.hpp"

namespace sieve {

class LinearOp;

// One operator of the graph, created at import from an ONNX node. Attributes are validated and
// stored at construction; run-time inputs arrive as tensors (constants included), in ONNX input order.
class Op {
 public:
  virtual ~Op() = default;
  // ONNX operator name (e.g. "Conv").
  virtual std::string_view type() const = 0;
  // Computes the outputs; throws sieve::Error when the inputs do not fit the op. Never writes into the
  // inputs. Integer-valued tensors (shapes, axes, indices) travel as floats holding exact integers.
  virtual std::vector<Tensor> forward(std::span<const Tensor> inputs) const = 0;
  // Non-null for the ops that are linear in their first input (see LinearOp).
  virtual const LinearOp* as_linear() const { return nullptr; }
};

// An op y = A_W(x) + b that is linear in x for fixed parameters W, b (Conv, ConvTranspose, Dense,
// BatchNormalization as an affine map, average pooling). Explanation rules run it with *substitute*
// parameters (W⁺, W², patterns, …), so forward and its exact transpose take the parameters explicitly.
// Parameter shapes are the op's own (e.g. Conv: [C_out, C_in/groups, k...]).
class LinearOp : public Op {
 public:
  // y = A_W(x) + b; `bias` may be empty (no bias).
  virtual Tensor apply(const Tensor& x, const Tensor& weight, const Tensor& bias) const = 0;
  // x̄ = A_Wᵀ(ȳ): the transpose of `apply` without bias, so ⟨apply(x, W, 0), ȳ⟩ = ⟨x, transpose(ȳ, W)⟩.
  virtual Tensor apply_transpose(const Tensor& grad_y, const Tensor& weight, const Shape& x_shape) const = 0;
  // ∂⟨apply(x, W, 0), ȳ⟩/∂W: the weight gradient, shaped like the weights.
  virtual Tensor weight_gradient(const Tensor& x, const Tensor& grad_y, const Shape& weight_shape) const = 0;
  // The op's own parameters computed from its input tensors (e.g. Conv: inputs[1] and inputs[2];
  // BatchNormalization: scale/√(var+ε) and the matching shift; average pooling: a kernel of ones).
  // `bias` returns an empty tensor when the op has none.
  virtual Tensor weight(std::span<const Tensor> inputs) const = 0;
  virtual Tensor bias(std::span<const Tensor> inputs) const = 0;

  const LinearOp* as_linear() const override { return this; }
};

}  // namespace sieve
