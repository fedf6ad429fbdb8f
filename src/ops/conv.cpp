// Conv (1-3 spatial dimensions, groups, dilations, auto_pad) and ConvTranspose. ConvTranspose is the
// transpose of a convolution, so both run on the same three oneDNN convolution kernels.

#include <algorithm>

#include "ops/common.hpp"
#include "ops/dnnl_kernels.hpp"
#include "ops/factories.hpp"

namespace sieve::ops {
namespace {

void add_channel_bias(Tensor& y, const Tensor& b) {
  const int64_t n = y.dim(0), c = y.dim(1), inner = y.size() / std::max<int64_t>(1, n * c);
  float* p = y.data();
#pragma omp parallel for collapse(2) if (y.size() > 65536)
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < c; ++j) {
      float* q = p + (i * c + j) * inner;
      const float v = b[j];
      for (int64_t k = 0; k < inner; ++k) q[k] += v;
    }
  }
}

// Copies the leading corner of `from` (every axis starting at 0) into a tensor of shape `to`: a crop when
// `to` is smaller, zero-extension at the ends when it is larger.
Tensor resize_corner(const Tensor& from, const Shape& to) {
  if (from.shape() == to) return from;
  Tensor out(to);
  const Shape& fs = from.shape();
  const size_t rank = to.size();
  Shape common(rank);
  for (size_t d = 0; d < rank; ++d) common[d] = std::min(fs[d], to[d]);
  const int64_t rows = element_count(common) / std::max<int64_t>(common.back(), 1);
  for (int64_t r = 0; r < rows; ++r) {
    int64_t rem = r, src = 0, dst = 0, src_stride = fs.back(), dst_stride = to.back();
    for (size_t d = rank - 1; d-- > 0;) {
      const int64_t idx = rem % common[d];
      rem /= common[d];
      src += idx * src_stride;
      dst += idx * dst_stride;
      src_stride *= fs[d];
      dst_stride *= to[d];
    }
    std::copy(from.data() + src, from.data() + src + common.back(), out.data() + dst);
  }
  return out;
}

// Checks x [N, C, *spatial] against w [O, C/group, *kernel] for a convolution reading x.
void check_conv_operands(const std::string& where, const Shape& x, const Shape& w, int64_t group,
                         const char* x_role) {
  if (x.size() < 3 || x.size() > 5) {
    throw Error(where + ": " + x_role + " must have 1 to 3 spatial dimensions, got shape " + to_string(x));
  }
  if (w.size() != x.size()) {
    throw Error(where + ": weight shape " + to_string(w) + " does not match " + x_role + " shape " +
                to_string(x));
  }
  if (w[0] % group != 0 || x[1] != w[1] * group) {
    throw Error(where + ": " + x_role + " has " + std::to_string(x[1]) + " channels but weights " +
                to_string(w) + " with group=" + std::to_string(group) + " expect " +
                std::to_string(w[1] * group));
  }
}

// Conv and ConvTranspose: inputs X, W and an optional bias B, attributes of a sliding window.
class ConvolutionOp : public LinearOp {
 public:
  explicit ConvolutionOp(const OpSpec& spec)
      : where_(spec.where()), window_(WindowAttributes::read(spec, false)) {
    group_ = spec.attributes.get_int("group", 1);
    if (group_ <= 0) spec.fail("group must be positive");
  }
  std::vector<Tensor> forward(std::span<const Tensor> inputs) const override {
    expect_inputs(inputs, 2, 3, where_);
    return {apply(inputs[0], inputs[1], optional_input(inputs, 2))};
  }
  Tensor weight(std::span<const Tensor> inputs) const override { return inputs[1]; }
  Tensor bias(std::span<const Tensor> inputs) const override { return optional_input(inputs, 2); }

 protected:
  std::string where_;
  WindowAttributes window_;
  int64_t group_ = 1;
};

class ConvOp : public ConvolutionOp {
 public:
  using ConvolutionOp::ConvolutionOp;

  bool fuses_relu() const override { return true; }
  std::vector<Tensor> forward_relu(std::span<const Tensor> inputs) const override {
    expect_inputs(inputs, 2, 3, where_);
    return {convolve(inputs[0], inputs[1], optional_input(inputs, 2), true)};
  }
  std::string_view type() const override { return "Conv"; }
  Form form() const override { return Form::convolution; }

  Tensor apply(const Tensor& x, const Tensor& w, const Tensor& b) const override {
    return convolve(x, w, b, false);
  }
  Tensor apply_transpose(const Tensor& dy, const Tensor& w, const Shape& x_shape) const override {
    kernels::ConvGeometry g;
    const Shape y_shape = plan(x_shape, w.shape(), g);
    if (dy.shape() != y_shape)
      throw Error(where_ + ": gradient shape " + to_string(dy.shape()) + " != output shape " +
                  to_string(y_shape));
    if (dy.size() == 0) return Tensor(x_shape);
    return kernels::conv_backward_data(g, dy, w, x_shape);
  }
  Tensor weight_gradient(const Tensor& x, const Tensor& dy, const Shape& w_shape) const override {
    kernels::ConvGeometry g;
    const Shape y_shape = plan(x.shape(), w_shape, g);
    if (dy.shape() != y_shape)
      throw Error(where_ + ": gradient shape " + to_string(dy.shape()) + " != output shape " +
                  to_string(y_shape));
    if (dy.size() == 0) return Tensor(w_shape);
    return kernels::conv_backward_weights(g, x, dy, w_shape);
  }

 private:
  Tensor convolve(const Tensor& x, const Tensor& w, const Tensor& b, bool relu) const {
    kernels::ConvGeometry g;
    const Shape y_shape = plan(x.shape(), w.shape(), g);
    if (!b.empty() && (b.rank() != 1 || b.dim(0) != w.dim(0))) {
      throw Error(where_ + ": bias shape " + to_string(b.shape()) + " does not match " +
                  std::to_string(w.dim(0)) + " output channels");
    }
    if (element_count(y_shape) == 0 || x.size() == 0) return Tensor(y_shape);
    return kernels::conv_forward(g, x, w, b, y_shape, relu);
  }

  // Geometry and output shape for input x_shape and weights w_shape.
  Shape plan(const Shape& x, const Shape& w, kernels::ConvGeometry& g) const {
    check_conv_operands(where_, x, w, group_, "input");
    const size_t n = x.size() - 2;
    const std::vector<int64_t> in(x.begin() + 2, x.end()), k(w.begin() + 2, w.end());
    if (!window_.kernel.empty() && window_.kernel != k) {
      throw Error(where_ + ": kernel_shape does not match weight shape " + to_string(w));
    }
    if ((!window_.strides.empty() && window_.strides.size() != n) ||
        (!window_.pads.empty() && window_.pads.size() != 2 * n) ||
        (!window_.dilations.empty() && window_.dilations.size() != n)) {
      throw Error(where_ + ": attributes do not match " + std::to_string(n) + " spatial dimensions");
    }
    g.groups = group_;
    g.strides = window_.strides.empty() ? std::vector<int64_t>(n, 1) : window_.strides;
    g.dilations = window_.dilations.empty() ? std::vector<int64_t>(n, 1) : window_.dilations;
    window_.resolve_pads(in, k, g.pad_begin, g.pad_end);
    Shape y{x[0], w[0]};
    for (size_t i = 0; i < n; ++i) {
      y.push_back(
          window_output_size(in[i], k[i], g.strides[i], g.dilations[i], g.pad_begin[i], g.pad_end[i]));
    }
    return y;
  }
};

class ConvTransposeOp : public ConvolutionOp {
 public:
  explicit ConvTransposeOp(const OpSpec& spec) : ConvolutionOp(spec) {
    output_padding_ = spec.attributes.get_ints("output_padding");
    output_shape_ = spec.attributes.get_ints("output_shape");
  }
  std::string_view type() const override { return "ConvTranspose"; }
  Form form() const override { return Form::transposed_convolution; }

  // y = convᵀ(x): x plays the convolution's output, y its input.
  Tensor apply(const Tensor& x, const Tensor& w, const Tensor& b) const override {
    kernels::ConvGeometry g;
    const Shape y_shape = plan(x.shape(), w.shape(), g);
    if (!b.empty() && (b.rank() != 1 || b.dim(0) != y_shape[1])) {
      throw Error(where_ + ": bias shape " + to_string(b.shape()) + " does not match " +
                  std::to_string(y_shape[1]) + " output channels");
    }
    if (element_count(y_shape) == 0) return Tensor(y_shape);
    const Shape core = core_shape(x.shape(), w.shape(), y_shape);
    Tensor y =
        x.size() == 0 ? Tensor(y_shape) : resize_corner(kernels::conv_backward_data(g, x, w, core), y_shape);
    if (!b.empty()) add_channel_bias(y, b);
    return y;
  }
  Tensor apply_transpose(const Tensor& dy, const Tensor& w, const Shape& x_shape) const override {
    kernels::ConvGeometry g;
    const Shape y_shape = plan(x_shape, w.shape(), g);
    if (dy.shape() != y_shape)
      throw Error(where_ + ": gradient shape " + to_string(dy.shape()) + " != output shape " +
                  to_string(y_shape));
    if (element_count(x_shape) == 0 || dy.size() == 0) return Tensor(x_shape);
    return kernels::conv_forward(g, resize_corner(dy, core_shape(x_shape, w.shape(), y_shape)), w, Tensor(),
                                 x_shape);
  }
  Tensor weight_gradient(const Tensor& x, const Tensor& dy, const Shape& w_shape) const override {
    kernels::ConvGeometry g;
    const Shape y_shape = plan(x.shape(), w_shape, g);
    if (dy.shape() != y_shape)
      throw Error(where_ + ": gradient shape " + to_string(dy.shape()) + " != output shape " +
                  to_string(y_shape));
    if (x.size() == 0 || dy.size() == 0) return Tensor(w_shape);
    return kernels::conv_backward_weights(g, resize_corner(dy, core_shape(x.shape(), w_shape, y_shape)), x,
                                          w_shape);
  }

 private:
  // Output shape and the geometry of the convolution from y back to x.
  Shape plan(const Shape& x, const Shape& w, kernels::ConvGeometry& g) const {
    if (x.size() < 3 || x.size() > 5 || w.size() != x.size() || x[1] != w[0] || w[0] % group_ != 0) {
      throw Error(where_ + ": input " + to_string(x) + " and weights " + to_string(w) +
                  " (group=" + std::to_string(group_) + ") do not fit a transposed convolution");
    }
    const size_t n = x.size() - 2;
    const std::vector<int64_t> in(x.begin() + 2, x.end()), k(w.begin() + 2, w.end());
    if ((!window_.strides.empty() && window_.strides.size() != n) ||
        (!window_.dilations.empty() && window_.dilations.size() != n) ||
        (!window_.pads.empty() && window_.pads.size() != 2 * n) ||
        (!output_padding_.empty() && output_padding_.size() != n) ||
        (!output_shape_.empty() && output_shape_.size() != n && output_shape_.size() != n + 2)) {
      throw Error(where_ + ": attributes do not match " + std::to_string(n) + " spatial dimensions");
    }
    g.groups = group_;
    g.strides = window_.strides.empty() ? std::vector<int64_t>(n, 1) : window_.strides;
    g.dilations = window_.dilations.empty() ? std::vector<int64_t>(n, 1) : window_.dilations;
    g.pad_begin.assign(n, 0);
    g.pad_end.assign(n, 0);
    Shape y{x[0], w[1] * group_};
    for (size_t i = 0; i < n; ++i) {
      const int64_t s = g.strides[i], d = g.dilations[i], span = (k[i] - 1) * d + 1;
      const int64_t op = output_padding_.empty() ? 0 : output_padding_[i];
      if (op < 0 || (op >= s && op >= d))
        throw Error(where_ + ": output_padding must be smaller than stride or dilation");
      const int64_t natural = s * (in[i] - 1) + op + span;
      int64_t out = 0;
      if (!output_shape_.empty() || window_.auto_pad == "SAME_UPPER" || window_.auto_pad == "SAME_LOWER") {
        out = !output_shape_.empty() ? output_shape_[output_shape_.size() - n + i] : in[i] * s;
        const int64_t total = std::max<int64_t>(natural - out, 0);  // a larger output_shape appends zeros
        const bool upper = window_.auto_pad != "SAME_LOWER";
        g.pad_begin[i] = upper ? total / 2 : total - total / 2;
        g.pad_end[i] = total - g.pad_begin[i];
      } else {
        if (window_.auto_pad == "NOTSET" && !window_.pads.empty()) {
          g.pad_begin[i] = window_.pads[i];
          g.pad_end[i] = window_.pads[i + n];
        }
        out = natural - g.pad_begin[i] - g.pad_end[i];
      }
      if (out <= 0) throw Error(where_ + ": output would be empty");
      // The convolution y → x with these pads yields x again: output padding only adds a tail of y that
      // no window reaches completely, which floor division in the output size absorbs.
      y.push_back(out);
    }
    return y;
  }

  // The part of y the convolution reaches: y without the zeros an over-sized output_shape appends.
  Shape core_shape(const Shape& x, const Shape& w, const Shape& y) const {
    kernels::ConvGeometry g;
    plan(x, w, g);
    Shape core = y;
    for (size_t i = 2; i < y.size(); ++i) {
      const size_t a = i - 2;
      const int64_t span = (w[i] - 1) * g.dilations[a] + 1;
      const int64_t op = output_padding_.empty() ? 0 : output_padding_[a];
      core[i] = std::min(y[i], g.strides[a] * (x[i] - 1) + op + span - g.pad_begin[a] - g.pad_end[a]);
    }
    return core;
  }

  std::vector<int64_t> output_padding_, output_shape_;
};

}  // namespace

std::unique_ptr<Op> make_conv(const OpSpec& spec) {
  return std::make_unique<ConvOp>(spec);
}
std::unique_ptr<Op> make_conv_transpose(const OpSpec& spec) {
  return std::make_unique<ConvTransposeOp>(spec);
}

}  // namespace sieve::ops
