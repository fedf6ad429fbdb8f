#pragma once

// Small helpers shared by the op implementations.

#include <cmath>
#include <span>
#include <string>
#include <vector>

#include "sieve/error.hpp"
#include "sieve/op_spec.hpp"
#include "sieve/tensor.hpp"

namespace sieve::ops {

// ONNX axis in [-rank, rank) → [0, rank).
int64_t normalize_axis(int64_t axis, int64_t rank, const std::string& where);
// Numpy broadcasting of two shapes; throws naming `where` when incompatible.
Shape broadcast_shapes(const Shape& a, const Shape& b, const std::string& where);
// Sums a broadcast result back to one operand's shape (the gradient of numpy broadcasting).
Tensor reduce_to_shape(const Tensor& g, const Shape& target, const std::string& where);

// Integer-valued tensors (shapes, axes, pads) are floats holding exact integers.
std::vector<int64_t> to_ints(const Tensor& t);
Tensor from_ints(const std::vector<int64_t>& values);

// Input i, or an empty tensor when it is absent.
inline const Tensor& optional_input(std::span<const Tensor> inputs, size_t i) {
  static const Tensor none;
  return i < inputs.size() ? inputs[i] : none;
}

// Checks the number of inputs an op received at run time.
void expect_inputs(std::span<const Tensor> inputs, size_t min, size_t max, const std::string& where);

// Spatial geometry shared by Conv, ConvTranspose and the pooling ops.
struct WindowAttributes {
  std::vector<int64_t> kernel, strides, dilations, pads;  // pads: begins then ends (ONNX order)
  std::string auto_pad = "NOTSET";
  // Reads kernel_shape/strides/dilations/pads/auto_pad and validates lengths and signs.
  static WindowAttributes read(const OpSpec& spec, bool kernel_required);
  // Begin/end pads for an input of the given spatial size, resolving auto_pad SAME_UPPER/SAME_LOWER/VALID.
  void resolve_pads(const std::vector<int64_t>& in, const std::vector<int64_t>& kernel,
                    std::vector<int64_t>& begin, std::vector<int64_t>& end) const;
};

// Output size of a sliding window along one axis (floor, or ceil for ceil_mode pooling).
int64_t window_output_size(int64_t in, int64_t kernel, int64_t stride, int64_t dilation, int64_t pad_begin,
                           int64_t pad_end, bool ceil_mode = false);

}  // namespace sieve::ops
