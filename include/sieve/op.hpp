#pragma once

#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "sieve/tensor.hpp"

namespace sieve {

class LinearOp;

// What an op is, for everything that treats ops by kind (relevance treatments, pattern statistics,
// canonicalization). Each op declares its role itself (Op::role).
enum class OpRole {
  linear,                  // linear in input 0 for fixed parameters (a LinearOp)
  monotone_activation,     // element-wise and monotone (Relu, Sigmoid, Tanh, Clip, …)
  nonmonotone_activation,  // element-wise, not monotone (HardSwish, GELU, Abs, Sin, Pow, …)
  proportional,            // a sum or scaling of its varying inputs (Add, Sub, Mul/Div by a constant)
  data_movement,  // each output element is a copy of input elements or a constant (Reshape, Concat, Pad, …)
  max_selection,  // the maximum of a window (MaxPool, GlobalMaxPool)
  product,        // a product of two input-dependent tensors (Mul, Div, MatMul of two activations)
  softmax,        // Softmax, LogSoftmax
  normalization,  // divides by statistics of its own input (LayerNorm, InstanceNorm) or computes one (L2
                  // norm)
  shape_only,     // shapes, indices or masks: nothing flows back through it
  recurrent,      // a recurrent cell run over a sequence (LSTM, GRU, RNN)
};
std::string_view role_name(OpRole role);

// What a vector-Jacobian product receives: the forward inputs and outputs (a tensor is empty when the
// op's `vjp_reads` said it does not need it), their shapes, the gradients arriving at the outputs
// (empty where none arrived) and which input gradients are wanted.
struct VjpArgs {
  std::span<const Tensor> inputs;
  std::span<const Shape> input_shapes;
  std::span<const Tensor> outputs;
  std::span<const Tensor> grad_outputs;
  std::span<const bool> wanted;
};

// Which forward values a vjp reads, so a trace keeps only those.
struct VjpReads {
  std::vector<bool> inputs, outputs;  // per position; missing entries mean "not read"
};

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
  // The op's role when the inputs flagged in `varying` depend on the explained input and the others
  // are fixed for the pass (constants, or values that do not depend on it).
  virtual OpRole role(std::span<const bool> varying) const = 0;
  // Non-null for the ops that are linear in their first input (see LinearOp).
  virtual const LinearOp* as_linear() const { return nullptr; }
  // For max-selection ops: the average-pooling op over the same windows (relevance may treat max
  // pooling as average pooling).
  virtual std::unique_ptr<Op> average_pool_twin() const { return nullptr; }
  // True for relu(x) itself (executors fuse it into a producer; DeconvNet and Guided Backprop modify it).
  virtual bool is_relu() const { return false; }
  // True when the op returns its first input unchanged (Identity, inference Dropout).
  virtual bool is_identity() const { return false; }
  // True when the op reads only the shapes of its inputs, never their values (Shape), so it can be
  // computed at load time wherever those shapes are known.
  virtual bool reads_only_shapes() const { return false; }
  // True when the output is slices of input 0 along its first axis picked by the integer indices of
  // input 1 (Gather on axis 0): with a constant input 0, an embedding lookup, where token ids are explained.
  virtual bool is_table_lookup() const { return false; }
  // True for activations whose output lies in [0, 1] and that architectures multiply other tensors with as
  // gates (Sigmoid, HardSigmoid): relevance treats the other factor of such a product as the signal.
  virtual bool is_gate() const { return false; }
  // For normalization ops: the VJP with the op's divisor (the standard deviation of LayerNorm and
  // InstanceNorm) held at its forward value, which makes the op linear in its input (the LN rule of
  // relevance). Ops with no divisor to hold (ReduceL2, homogeneous of degree one) keep their own VJP.
  virtual std::vector<Tensor> vjp_fixed_divisor(const VjpArgs& args) const { return vjp(args); }
  // True when forward_relu computes relu(forward(inputs)) in one pass, so an executor can fuse the op
  // with a Relu that is the only reader of its output.
  virtual bool fuses_relu() const { return false; }
  virtual std::vector<Tensor> forward_relu(std::span<const Tensor> inputs) const;

  // The role of an op whose inputs are multiplied or divided: a product when two or more of them vary
  // with the explained input, else a scaling (proportional). The one place that decides it.
  static OpRole scaling_or_product(std::span<const bool> varying);

  // Gradients of ⟨outputs, grad_outputs⟩ with respect to each wanted input (an empty tensor where no
  // gradient flows, e.g. into shapes or indices). The default says the op has no gradient.
  virtual std::vector<Tensor> vjp(const VjpArgs& args) const;
  // Default: every input and output.
  virtual VjpReads vjp_reads(size_t num_inputs, size_t num_outputs) const;
};

// An op y = A_W(x) + b that is linear in x for fixed parameters W, b (Conv, ConvTranspose, Dense,
// BatchNormalization as an affine map, average pooling). Explanation rules run it with *substitute*
// parameters (W⁺, W², patterns, …), so forward and its exact transpose take the parameters explicitly.
// Parameter shapes are the op's own (e.g. Conv: [C_out, C_in/groups, k...]).
class LinearOp : public Op {
 public:
  // The kind of linear map, for methods that treat layers differently from pooling and scaling.
  enum class Form { convolution, transposed_convolution, dense, channel_affine, average_pooling };
  virtual Form form() const = 0;
  // A learned layer (convolution, transposed convolution, dense), as opposed to pooling or a
  // per-channel affine map: what composites number and pattern statistics fit.
  bool is_layer() const;
  // Linear when no parameter input varies; otherwise a scaling or a product of its varying inputs.
  OpRole role(std::span<const bool> varying) const override;
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
  // The weight axis that indexes output neurons (Conv: 0; Gemm: 0 with transB, else 1; MatMul: 1).
  virtual int64_t weight_output_axis() const { return 0; }
  // The output axis that indexes output neurons, for an output of the given rank (MatMul: the last).
  virtual int64_t output_neuron_axis(int64_t /*output_rank*/) const { return 1; }
  // True when weight and bias are the op's inputs 1 and 2 themselves (not derived from them), so
  // their gradients are weight_gradient and bias_gradient.
  virtual bool parameters_are_inputs() const { return true; }
  // ∂⟨apply(x, W, b), ȳ⟩/∂b for a bias of the given shape; by default the sum over all axes but 1.
  virtual Tensor bias_gradient(const Tensor& grad_y, const Shape& bias_shape) const;

  const LinearOp* as_linear() const override { return this; }
  // x̄ = apply_transpose(ȳ); parameter gradients when they are wanted (non-constant parameters).
  std::vector<Tensor> vjp(const VjpArgs& args) const override;
  // Only the parameters (and x, if a parameter gradient is wanted) are read.
  VjpReads vjp_reads(size_t num_inputs, size_t num_outputs) const override;
};

}  // namespace sieve
