#pragma once

// The heavy kernels (convolution, matrix products, pooling) on oneDNN. Primitive descriptors are
// created once per shape and cached; weights reordered into oneDNN's preferred layout are cached per
// weight tensor, so explanation rules that alternate substitute weights do not pay the reorder twice.

#include <vector>

#include "sieve/tensor.hpp"

namespace sieve::kernels {

// Geometry of a convolution with 1–3 spatial dimensions. Dilations use the ONNX convention (1 = dense).
struct ConvGeometry {
  int64_t groups = 1;
  std::vector<int64_t> strides, dilations, pad_begin, pad_end;
};

// y = conv(x, w) + b, then max(y, 0) when `relu`. x: [N, C, *spatial], w: [O, C/groups, *kernel], b: [O]
// or empty. y_shape is the caller's (so ConvTranspose can use output padding).
Tensor conv_forward(const ConvGeometry& g, const Tensor& x, const Tensor& w, const Tensor& b,
                    const Shape& y_shape, bool relu = false);
// Transpose of conv_forward without bias: ∂⟨conv(x,w), dy⟩/∂x.
Tensor conv_backward_data(const ConvGeometry& g, const Tensor& dy, const Tensor& w, const Shape& x_shape);
// ∂⟨conv(x,w), dy⟩/∂w.
Tensor conv_backward_weights(const ConvGeometry& g, const Tensor& x, const Tensor& dy, const Shape& w_shape);

// C = op(A)·op(B) (+ bias over the last axis) with numpy batch broadcasting. A: [..., M, K] (or
// [..., K, M] when `a_transposed`), B: [..., K, N] (or [..., N, K] when `b_transposed`).
Tensor matmul(const Tensor& a, bool a_transposed, const Tensor& b, bool b_transposed, const Tensor& bias,
              const Shape& c_shape);

enum class PoolKind { max, average_exclude_padding };

struct PoolGeometry {
  std::vector<int64_t> kernel, strides, dilations, pad_begin, pad_end;
};

// Pooling over the spatial axes of x [N, C, *spatial] into y_shape (pad_end may be extended by the caller
// for ceil_mode; padded positions are ignored by both kinds).
Tensor pool_forward(PoolKind kind, const PoolGeometry& g, const Tensor& x, const Shape& y_shape);

}  // namespace sieve::kernels
