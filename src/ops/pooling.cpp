// MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool. Average pooling is linear, so it is a
// depthwise convolution with a kernel of ones followed by a division by the window count: that lets
// explanation rules substitute the kernel like any other linear layer.

#include <algorithm>
#include <limits>

#include "ops/common.hpp"
#include "ops/dnnl_kernels.hpp"
#include "ops/factories.hpp"

namespace sieve::ops {
namespace {

// Window geometry of a pooling op for one input shape.
struct PoolPlan {
  std::vector<int64_t> in, kernel, strides, dilations, pad_begin, pad_end, out;
  Shape y_shape;
};

PoolPlan plan_pool(const std::string& where, const WindowAttributes& w, bool ceil_mode, const Shape& x) {
  if (x.size() < 3 || x.size() > 5 || w.kernel.size() != x.size() - 2) {
    throw Error(where + ": input shape " + to_string(x) + " does not match kernel_shape of " +
                std::to_string(w.kernel.size()) + " spatial dimensions");
  }
  PoolPlan p;
  const size_t n = w.kernel.size();
  p.in.assign(x.begin() + 2, x.end());
  p.kernel = w.kernel;
  p.strides = w.strides.empty() ? std::vector<int64_t>(n, 1) : w.strides;
  p.dilations = w.dilations.empty() ? std::vector<int64_t>(n, 1) : w.dilations;
  w.resolve_pads(p.in, p.kernel, p.pad_begin, p.pad_end);
  p.y_shape = {x[0], x[1]};
  for (size_t i = 0; i < n; ++i) {
    const int64_t o = window_output_size(p.in[i], p.kernel[i], p.strides[i], p.dilations[i], p.pad_begin[i],
                                         p.pad_end[i], ceil_mode && w.auto_pad == "NOTSET");
    if (o <= 0) throw Error(where + ": kernel larger than the padded input " + to_string(x));
    p.out.push_back(o);
    p.y_shape.push_back(o);
    // Extend the end padding so the last (ceil-mode) window fits; those positions are never counted.
    const int64_t needed =
        (o - 1) * p.strides[i] + (p.kernel[i] - 1) * p.dilations[i] + 1 - p.in[i] - p.pad_begin[i];
    p.pad_end[i] = std::max(p.pad_end[i], needed);
  }
  return p;
}

// Visits, for every output position, the flat input offsets (within one channel) of its window's taps
// that lie inside the input, in row-major window order.
template <class Visit>
void for_each_window(const PoolPlan& p, Visit visit) {
  const size_t n = p.in.size();
  const int64_t out_count = element_count(Shape(p.out.begin(), p.out.end()));
  const int64_t taps = element_count(Shape(p.kernel.begin(), p.kernel.end()));
  std::vector<int64_t> o(n), t(n);
  std::vector<int64_t> offsets;
  for (int64_t oi = 0; oi < out_count; ++oi) {
    int64_t rem = oi;
    for (size_t d = n; d-- > 0;) {
      o[d] = rem % p.out[d];
      rem /= p.out[d];
    }
    offsets.clear();
    for (int64_t ti = 0; ti < taps; ++ti) {
      int64_t r = ti, flat = 0;
      bool inside = true;
      for (size_t d = n; d-- > 0;) {
        t[d] = r % p.kernel[d];
        r /= p.kernel[d];
      }
      for (size_t d = 0; d < n; ++d) {
        const int64_t pos = o[d] * p.strides[d] - p.pad_begin[d] + t[d] * p.dilations[d];
        if (pos < 0 || pos >= p.in[d]) {
          inside = false;
          break;
        }
        flat = flat * p.in[d] + pos;
      }
      if (inside) offsets.push_back(flat);
    }
    visit(oi, offsets);
  }
}

class MaxPoolOp : public Op {
 public:
  MaxPoolOp(const OpSpec& spec) : where_(spec.where()), window_(WindowAttributes::read(spec, true)) {
    ceil_mode_ = spec.attributes.get_int("ceil_mode", 0) != 0;
    column_major_indices_ = spec.attributes.get_int("storage_order", 0) != 0;
    with_indices_ = spec.num_outputs > 1;
  }
  std::string_view type() const override { return "MaxPool"; }
  OpRole role(std::span<const bool>) const override { return OpRole::max_selection; }
  std::unique_ptr<Op> average_pool_twin() const override;

  std::vector<Tensor> forward(std::span<const Tensor> inputs) const override {
    expect_inputs(inputs, 1, 1, where_);
    const Tensor& x = inputs[0];
    const PoolPlan p = plan_pool(where_, window_, ceil_mode_, x.shape());
    if (with_indices_) return argmax_pool(x, p);
    if (x.size() == 0) return {Tensor(p.y_shape)};
    kernels::PoolGeometry g{p.kernel, p.strides, p.dilations, p.pad_begin, p.pad_end};
    return {kernels::pool_forward(kernels::PoolKind::max, g, x, p.y_shape)};
  }
  // Routes each output gradient to its window's arg-max (the first maximum on ties).
  std::vector<Tensor> vjp(const VjpArgs& a) const override {
    const Tensor& gy = a.grad_outputs[0];
    if (gy.empty() || !a.wanted[0]) return {Tensor()};
    const Tensor& x = a.inputs[0];
    const PoolPlan p = plan_pool(where_, window_, ceil_mode_, x.shape());
    const int64_t planes = x.dim(0) * x.dim(1);
    const int64_t in_size = element_count(Shape(p.in.begin(), p.in.end()));
    const int64_t out_size = element_count(Shape(p.out.begin(), p.out.end()));
    Tensor gx(x.shape());
    for_each_window(p, [&](int64_t oi, const std::vector<int64_t>& offsets) {
      if (offsets.empty()) return;
      for (int64_t c = 0; c < planes; ++c) {
        const float* plane = x.data() + c * in_size;
        int64_t arg = offsets[0];
        for (int64_t off : offsets) {
          if (plane[off] > plane[arg]) arg = off;
        }
        gx[c * in_size + arg] += gy[c * out_size + oi];
      }
    });
    return {gx};
  }
  VjpReads vjp_reads(size_t, size_t m) const override { return {{true}, std::vector<bool>(m, false)}; }

 private:
  // Max and its flat index (ONNX's Indices output: over N·C·spatial, row- or column-major spatial).
  std::vector<Tensor> argmax_pool(const Tensor& x, const PoolPlan& p) const {
    Tensor y = Tensor::uninitialized(p.y_shape), indices = Tensor::uninitialized(p.y_shape);
    const int64_t planes = x.dim(0) * x.dim(1);
    const int64_t in_size = element_count(Shape(p.in.begin(), p.in.end()));
    const int64_t out_size = element_count(Shape(p.out.begin(), p.out.end()));
    for_each_window(p, [&](int64_t oi, const std::vector<int64_t>& offsets) {
      for (int64_t c = 0; c < planes; ++c) {
        const float* plane = x.data() + c * in_size;
        float best = -std::numeric_limits<float>::infinity();
        int64_t arg = offsets.empty() ? 0 : offsets[0];
        for (int64_t off : offsets) {
          if (plane[off] > best) {
            best = plane[off];
            arg = off;
          }
        }
        y[c * out_size + oi] = best;
        indices[c * out_size + oi] =
            static_cast<float>(c * in_size + (column_major_indices_ ? transpose_offset(p, arg) : arg));
      }
    });
    return {y, indices};
  }
  static int64_t transpose_offset(const PoolPlan& p, int64_t flat) {
    std::vector<int64_t> pos(p.in.size());
    for (size_t d = p.in.size(); d-- > 0;) {
      pos[d] = flat % p.in[d];
      flat /= p.in[d];
    }
    int64_t out = 0;
    for (size_t d = p.in.size(); d-- > 0;) out = out * p.in[d] + pos[d];
    return out;
  }

  std::string where_;
  WindowAttributes window_;
  bool ceil_mode_ = false, column_major_indices_ = false, with_indices_ = false;
};

class AveragePoolOp : public LinearOp {
 public:
  AveragePoolOp(const OpSpec& spec) : where_(spec.where()), window_(WindowAttributes::read(spec, true)) {
    ceil_mode_ = spec.attributes.get_int("ceil_mode", 0) != 0;
    count_include_pad_ = spec.attributes.get_int("count_include_pad", 0) != 0;
  }
  // Averages over the windows of a max pooling (padding excluded from the counts).
  AveragePoolOp(std::string where, WindowAttributes window, bool ceil_mode)
      : where_(std::move(where)), window_(std::move(window)), ceil_mode_(ceil_mode) {}
  std::string_view type() const override { return "AveragePool"; }
  Form form() const override { return Form::average_pooling; }

  std::vector<Tensor> forward(std::span<const Tensor> inputs) const override {
    expect_inputs(inputs, 1, 1, where_);
    return {apply(inputs[0], weight(inputs), Tensor())};
  }
  // A kernel of ones, shared by all channels ([1, 1, *kernel]); the averaging divisor is part of the op.
  Tensor weight(std::span<const Tensor>) const override {
    Shape s{1, 1};
    s.insert(s.end(), window_.kernel.begin(), window_.kernel.end());
    return Tensor(s, 1.0f);
  }
  Tensor bias(std::span<const Tensor>) const override { return {}; }
  bool parameters_are_inputs() const override { return false; }

  Tensor apply(const Tensor& x, const Tensor& w, const Tensor& b) const override {
    const PoolPlan p = plan_pool(where_, window_, ceil_mode_, x.shape());
    Tensor y = x.size() == 0
                   ? Tensor(p.y_shape)
                   : kernels::conv_forward(geometry(p, x.dim(1)), x, depthwise(w, x.dim(1)), b, p.y_shape);
    divide_by_counts(y, p, b);
    return y;
  }
  Tensor apply_transpose(const Tensor& dy, const Tensor& w, const Shape& x_shape) const override {
    const PoolPlan p = plan_pool(where_, window_, ceil_mode_, x_shape);
    if (dy.shape() != p.y_shape)
      throw Error(where_ + ": gradient shape " + to_string(dy.shape()) + " != " + to_string(p.y_shape));
    if (element_count(x_shape) == 0) return Tensor(x_shape);
    Tensor scaled = dy.clone();
    divide_by_counts(scaled, p, Tensor());
    return kernels::conv_backward_data(geometry(p, x_shape[1]), scaled, depthwise(w, x_shape[1]), x_shape);
  }
  Tensor weight_gradient(const Tensor& x, const Tensor& dy, const Shape& w_shape) const override {
    const PoolPlan p = plan_pool(where_, window_, ceil_mode_, x.shape());
    Tensor scaled = dy.clone();
    divide_by_counts(scaled, p, Tensor());
    Shape full = w_shape;
    full[0] = x.dim(1);
    Tensor per_channel = kernels::conv_backward_weights(geometry(p, x.dim(1)), x, scaled, full);
    if (w_shape[0] == x.dim(1)) return per_channel;
    // A weight shared by all channels collects the gradient of every channel.
    Tensor shared(w_shape);
    const int64_t taps = shared.size();
    for (int64_t c = 0; c < x.dim(1); ++c) {
      for (int64_t t = 0; t < taps; ++t) shared[t] += per_channel[c * taps + t];
    }
    return shared;
  }

 private:
  kernels::ConvGeometry geometry(const PoolPlan& p, int64_t channels) const {
    return {channels, p.strides, p.dilations, p.pad_begin, p.pad_end};
  }
  Tensor depthwise(const Tensor& w, int64_t channels) const {
    Shape s{1, 1};
    s.insert(s.end(), window_.kernel.begin(), window_.kernel.end());
    Shape full = s;
    full[0] = channels;
    if (w.shape() == full) return w;
    if (w.shape() != s)
      throw Error(where_ + ": pooling weight must be " + to_string(s) + " or " + to_string(full) + ", got " +
                  to_string(w.shape()));
    Tensor out = Tensor::uninitialized(full);
    for (int64_t c = 0; c < channels; ++c)
      std::copy(w.data(), w.data() + w.size(), out.data() + c * w.size());
    return out;
  }
  // Divides by the number of taps counted by ONNX: inside the input, or inside input + explicit pads
  // with count_include_pad (never the ceil-mode overhang). The bias, if any, is not divided.
  void divide_by_counts(Tensor& y, const PoolPlan& p, const Tensor& b) const {
    const size_t n = p.in.size();
    std::vector<std::vector<float>> axis_counts(n);
    for (size_t d = 0; d < n; ++d) {
      const int64_t lo = count_include_pad_ ? -p.pad_begin[d] : 0;
      const int64_t hi = count_include_pad_ ? p.in[d] + explicit_end_pad(p, d) : p.in[d];
      for (int64_t o = 0; o < p.out[d]; ++o) {
        int64_t c = 0;
        for (int64_t t = 0; t < p.kernel[d]; ++t) {
          const int64_t pos = o * p.strides[d] - p.pad_begin[d] + t * p.dilations[d];
          c += pos >= lo && pos < hi;
        }
        axis_counts[d].push_back(static_cast<float>(std::max<int64_t>(c, 1)));
      }
    }
    const int64_t out_size = element_count(Shape(p.out.begin(), p.out.end()));
    std::vector<float> inv(static_cast<size_t>(out_size));
    std::vector<int64_t> o(n);
    for (int64_t oi = 0; oi < out_size; ++oi) {
      int64_t rem = oi;
      float count = 1.0f;
      for (size_t d = n; d-- > 0;) {
        count *= axis_counts[d][static_cast<size_t>(rem % p.out[d])];
        rem /= p.out[d];
      }
      inv[static_cast<size_t>(oi)] = 1.0f / count;
    }
    const int64_t planes = y.dim(0) * y.dim(1), channels = y.dim(1);
    float* py = y.data();
#pragma omp parallel for if (y.size() > 65536)
    for (int64_t c = 0; c < planes; ++c) {
      const float shift = b.empty() ? 0.0f : b[b.size() == 1 ? 0 : c % channels];
      for (int64_t i = 0; i < out_size; ++i) {
        float& v = py[c * out_size + i];
        v = (v - shift) * inv[static_cast<size_t>(i)] + shift;
      }
    }
  }
  int64_t explicit_end_pad(const PoolPlan& p, size_t d) const {
    std::vector<int64_t> begin, end;
    window_.resolve_pads(p.in, p.kernel, begin, end);
    return end[d];
  }

  std::string where_;
  WindowAttributes window_;
  bool ceil_mode_ = false, count_include_pad_ = false;
};

std::unique_ptr<Op> MaxPoolOp::average_pool_twin() const {
  return std::make_unique<AveragePoolOp>(where_, window_, ceil_mode_);
}

// Mean over all spatial positions, y[n, c] = w · mean(x[n, c, ...]); the weight is a scalar of 1.
class GlobalAveragePoolOp : public LinearOp {
 public:
  explicit GlobalAveragePoolOp(std::string where) : where_(std::move(where)) {}
  std::string_view type() const override { return "GlobalAveragePool"; }
  Form form() const override { return Form::average_pooling; }
  std::vector<Tensor> forward(std::span<const Tensor> inputs) const override {
    expect_inputs(inputs, 1, 1, where_);
    return {apply(inputs[0], weight(inputs), Tensor())};
  }
  Tensor weight(std::span<const Tensor>) const override { return Tensor(Shape{1}, 1.0f); }
  Tensor bias(std::span<const Tensor>) const override { return {}; }
  bool parameters_are_inputs() const override { return false; }

  Tensor apply(const Tensor& x, const Tensor& w, const Tensor& b) const override {
    const int64_t planes = check(x.shape()), inner = x.size() / std::max<int64_t>(planes, 1);
    Tensor y = Tensor::uninitialized(output_shape(x.shape()));
    const float scale = w[0] / static_cast<float>(std::max<int64_t>(inner, 1));
    const float* px = x.data();
#pragma omp parallel for if (x.size() > 65536)
    for (int64_t c = 0; c < planes; ++c) {
      double sum = 0.0;
      for (int64_t i = 0; i < inner; ++i) sum += px[c * inner + i];
      y[c] = static_cast<float>(sum) * scale + (b.empty() ? 0.0f : b[b.size() == 1 ? 0 : c % x.dim(1)]);
    }
    return y;
  }
  Tensor apply_transpose(const Tensor& dy, const Tensor& w, const Shape& x_shape) const override {
    const int64_t planes = check(x_shape), inner = element_count(x_shape) / std::max<int64_t>(planes, 1);
    if (dy.size() != planes)
      throw Error(where_ + ": gradient shape " + to_string(dy.shape()) + " does not match");
    Tensor dx = Tensor::uninitialized(x_shape);
    const float scale = w[0] / static_cast<float>(std::max<int64_t>(inner, 1));
#pragma omp parallel for if (dx.size() > 65536)
    for (int64_t c = 0; c < planes; ++c) {
      for (int64_t i = 0; i < inner; ++i) dx[c * inner + i] = dy[c] * scale;
    }
    return dx;
  }
  Tensor weight_gradient(const Tensor& x, const Tensor& dy, const Shape& w_shape) const override {
    const int64_t planes = check(x.shape()), inner = x.size() / std::max<int64_t>(planes, 1);
    double sum = 0.0;
    for (int64_t c = 0; c < planes; ++c) {
      double mean = 0.0;
      for (int64_t i = 0; i < inner; ++i) mean += x[c * inner + i];
      sum += dy[c] * mean / static_cast<double>(std::max<int64_t>(inner, 1));
    }
    return Tensor(w_shape, static_cast<float>(sum));
  }

 private:
  int64_t check(const Shape& x) const {
    if (x.size() < 3) throw Error(where_ + ": input must be [N, C, spatial...], got " + to_string(x));
    return x[0] * x[1];
  }
  static Shape output_shape(const Shape& x) {
    Shape y(x.size(), 1);
    y[0] = x[0];
    y[1] = x[1];
    return y;
  }
  std::string where_;
};

class GlobalMaxPoolOp : public Op {
 public:
  GlobalMaxPoolOp(const OpSpec& spec) : where_(spec.where()) {}
  std::string_view type() const override { return "GlobalMaxPool"; }
  OpRole role(std::span<const bool>) const override { return OpRole::max_selection; }
  std::unique_ptr<Op> average_pool_twin() const override {
    return std::make_unique<GlobalAveragePoolOp>(where_);
  }
  std::vector<Tensor> forward(std::span<const Tensor> inputs) const override {
    expect_inputs(inputs, 1, 1, where_);
    const Tensor& x = inputs[0];
    if (x.rank() < 3) throw Error(where_ + ": input must be [N, C, spatial...], got " + to_string(x.shape()));
    Shape ys(x.shape().size(), 1);
    ys[0] = x.dim(0);
    ys[1] = x.dim(1);
    Tensor y = Tensor::uninitialized(ys);
    const int64_t planes = x.dim(0) * x.dim(1), inner = x.size() / std::max<int64_t>(planes, 1);
    for (int64_t c = 0; c < planes; ++c) {
      const float* p = x.data() + c * inner;
      y[c] = inner == 0 ? -std::numeric_limits<float>::infinity() : *std::max_element(p, p + inner);
    }
    return {y};
  }
  std::vector<Tensor> vjp(const VjpArgs& a) const override {
    const Tensor& gy = a.grad_outputs[0];
    if (gy.empty() || !a.wanted[0]) return {Tensor()};
    const Tensor& x = a.inputs[0];
    Tensor gx(x.shape());
    const int64_t planes = x.dim(0) * x.dim(1), inner = x.size() / std::max<int64_t>(planes, 1);
    for (int64_t c = 0; c < planes && inner > 0; ++c) {
      const float* p = x.data() + c * inner;
      gx[c * inner + (std::max_element(p, p + inner) - p)] = gy[c];
    }
    return {gx};
  }
  VjpReads vjp_reads(size_t, size_t) const override { return {{true}, {false}}; }

 private:
  std::string where_;
};

}  // namespace

std::unique_ptr<Op> make_max_pool(const OpSpec& spec) {
  return std::make_unique<MaxPoolOp>(spec);
}
std::unique_ptr<Op> make_average_pool(const OpSpec& spec) {
  return std::make_unique<AveragePoolOp>(spec);
}
std::unique_ptr<Op> make_global_average_pool(const OpSpec& spec) {
  return std::make_unique<GlobalAveragePoolOp>(spec.where());
}
std::unique_ptr<Op> make_global_max_pool(const OpSpec& spec) {
  return std::make_unique<GlobalMaxPoolOp>(spec);
}

}  // namespace sieve::ops
