// Resize (opset 10 and 11+) and Upsample (opset 7 and 9): nearest-neighbour and n-linear resampling.
// Both are separable, so the op resamples one axis after the other; each axis is a list of taps
// (source index, weight) per output index, and the gradient runs the same taps transposed.

#include <algorithm>
#include <cmath>

#include "ops/common.hpp"
#include "ops/factories.hpp"

namespace sieve::ops {
namespace {

// Per output index along one axis, its (up to) two source indices and weights.
struct AxisTaps {
  int64_t in = 0, out = 0;
  std::vector<int64_t> first, second;
  std::vector<float> first_weight, second_weight;
  bool identity() const {
    if (in != out) return false;
    for (int64_t j = 0; j < out; ++j)
      if (first[static_cast<size_t>(j)] != j || first_weight[static_cast<size_t>(j)] != 1.0f) return false;
    return true;
  }
};

// Resamples axis `axis` of x with the taps.
Tensor resample_axis(const Tensor& x, int64_t axis, const AxisTaps& taps) {
  Shape out_shape = x.shape();
  out_shape[static_cast<size_t>(axis)] = taps.out;
  Tensor y = Tensor::uninitialized(out_shape);
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < axis; ++d) outer *= x.dim(d);
  for (int64_t d = axis + 1; d < x.rank(); ++d) inner *= x.dim(d);
#pragma omp parallel for if (y.size() > 65536)
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t j = 0; j < taps.out; ++j) {
      const size_t t = static_cast<size_t>(j);
      const float* a = x.data() + (o * taps.in + taps.first[t]) * inner;
      const float* b = x.data() + (o * taps.in + taps.second[t]) * inner;
      const float wa = taps.first_weight[t], wb = taps.second_weight[t];
      float* py = y.data() + (o * taps.out + j) * inner;
      if (wb == 0.0f) {
        for (int64_t i = 0; i < inner; ++i) py[i] = wa * a[i];
      } else {
        for (int64_t i = 0; i < inner; ++i) py[i] = wa * a[i] + wb * b[i];
      }
    }
  }
  return y;
}

// The transpose of resample_axis: every output gradient added back into its taps.
Tensor resample_axis_transpose(const Tensor& g, int64_t axis, const AxisTaps& taps) {
  Shape in_shape = g.shape();
  in_shape[static_cast<size_t>(axis)] = taps.in;
  Tensor gx(in_shape);
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < axis; ++d) outer *= g.dim(d);
  for (int64_t d = axis + 1; d < g.rank(); ++d) inner *= g.dim(d);
#pragma omp parallel for if (g.size() > 65536)
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t j = 0; j < taps.out; ++j) {
      const size_t t = static_cast<size_t>(j);
      float* a = gx.data() + (o * taps.in + taps.first[t]) * inner;
      float* b = gx.data() + (o * taps.in + taps.second[t]) * inner;
      const float wa = taps.first_weight[t], wb = taps.second_weight[t];
      const float* pg = g.data() + (o * taps.out + j) * inner;
      for (int64_t i = 0; i < inner; ++i) a[i] += wa * pg[i];
      if (wb != 0.0f)
        for (int64_t i = 0; i < inner; ++i) b[i] += wb * pg[i];
    }
  }
  return gx;
}

class ResizeOp : public Op {
 public:
  explicit ResizeOp(const OpSpec& spec) : where_(spec.where()), type_(spec.op_type) {
    const std::string mode = spec.attributes.get_string("mode", "nearest");
    // Upsample-7 called linear interpolation "bilinear".
    if (mode == "linear" || mode == "bilinear")
      linear_ = true;
    else if (mode != "nearest")
      spec.fail("mode '" + mode + "' is not supported (nearest, linear)");
    if (type_ == "Upsample") {
      scales_attribute_ = spec.attributes.get_floats("scales");
      if (spec.opset < 9 && scales_attribute_.empty()) spec.fail("attribute 'scales' is required");
    }
    // Upsample and Resize-10 map output to input coordinates as x/scale and pick the nearest by floor.
    if (type_ == "Upsample" || spec.opset < 11) {
      coordinates_ = "asymmetric";
      nearest_mode_ = "floor";
      input_layout_ = InputLayout::scales_second;
      return;
    }
    input_layout_ = InputLayout::roi_scales_sizes;
    coordinates_ = spec.attributes.get_string("coordinate_transformation_mode", "half_pixel");
    if (coordinates_ != "half_pixel" && coordinates_ != "pytorch_half_pixel" &&
        coordinates_ != "align_corners" && coordinates_ != "asymmetric" &&
        coordinates_ != "tf_half_pixel_for_nn")
      spec.fail("coordinate_transformation_mode '" + coordinates_ + "' is not supported");
    nearest_mode_ = spec.attributes.get_string("nearest_mode", "round_prefer_floor");
    if (nearest_mode_ != "round_prefer_floor" && nearest_mode_ != "round_prefer_ceil" &&
        nearest_mode_ != "floor" && nearest_mode_ != "ceil")
      spec.fail("nearest_mode '" + nearest_mode_ + "' is not supported");
    if (spec.attributes.get_int("antialias", 0) != 0) spec.fail("antialias is not supported");
    if (spec.attributes.has("axes")) spec.fail("attribute 'axes' is not supported");
    const std::string policy = spec.attributes.get_string("keep_aspect_ratio_policy", "stretch");
    if (policy != "stretch") spec.fail("keep_aspect_ratio_policy '" + policy + "' is not supported");
  }
  std::string_view type() const override { return type_; }
  // n-linear resampling is a linear map with non-negative weights and no bias; nearest copies values.
  OpRole role(std::span<const bool>) const override {
    return linear_ ? OpRole::proportional : OpRole::data_movement;
  }
  std::vector<Tensor> forward(std::span<const Tensor> inputs) const override {
    expect_inputs(inputs, 1, 4, where_);
    Tensor y = inputs[0];
    const std::vector<AxisTaps> plan = taps(inputs, y.shape());
    for (size_t d = 0; d < plan.size(); ++d)
      if (!plan[d].identity()) y = resample_axis(y, static_cast<int64_t>(d), plan[d]);
    return {y};
  }
  std::vector<Tensor> vjp(const VjpArgs& a) const override {
    std::vector<Tensor> grads(a.inputs.size());
    if (a.grad_outputs[0].empty() || !a.wanted[0]) return grads;
    const std::vector<AxisTaps> plan = taps(a.inputs, a.input_shapes[0]);
    Tensor g = a.grad_outputs[0];
    for (size_t d = plan.size(); d-- > 0;)
      if (!plan[d].identity()) g = resample_axis_transpose(g, static_cast<int64_t>(d), plan[d]);
    grads[0] = std::move(g);
    return grads;
  }
  VjpReads vjp_reads(size_t n, size_t) const override {
    std::vector<bool> reads(n, true);  // scales and sizes
    reads[0] = false;
    return {reads, {false}};
  }

 private:
  enum class InputLayout { scales_second, roi_scales_sizes };

  std::vector<AxisTaps> taps(std::span<const Tensor> inputs, const Shape& xs) const {
    const size_t rank = xs.size();
    std::vector<float> scales;
    std::vector<int64_t> sizes;
    if (input_layout_ == InputLayout::scales_second) {
      const Tensor& s = optional_input(inputs, 1);
      scales = s.empty() ? scales_attribute_ : std::vector<float>(s.values().begin(), s.values().end());
    } else {
      const Tensor &s = optional_input(inputs, 2), &z = optional_input(inputs, 3);
      if (!s.empty() && s.size() > 0) scales.assign(s.values().begin(), s.values().end());
      if (!z.empty() && z.size() > 0) sizes = to_ints(z);
      if (!scales.empty() && !sizes.empty()) throw Error(where_ + ": give scales or sizes, not both");
    }
    if (scales.empty() && sizes.empty()) throw Error(where_ + ": neither scales nor sizes given");
    if ((!scales.empty() && scales.size() != rank) || (!sizes.empty() && sizes.size() != rank))
      throw Error(where_ + ": scales/sizes need one entry per axis of the input " + to_string(xs));
    std::vector<AxisTaps> plan(rank);
    for (size_t d = 0; d < rank; ++d) {
      AxisTaps& t = plan[d];
      t.in = xs[d];
      double scale;
      if (!scales.empty()) {
        if (!(scales[d] > 0.0f))
          throw Error(where_ + ": scale " + std::to_string(scales[d]) + " is not positive");
        scale = scales[d];
        t.out = static_cast<int64_t>(std::floor(static_cast<double>(t.in) * scale));
      } else {
        if (sizes[d] < 0) throw Error(where_ + ": negative size " + std::to_string(sizes[d]));
        t.out = sizes[d];
        scale = t.in == 0 ? 1.0 : static_cast<double>(t.out) / static_cast<double>(t.in);
      }
      if (t.out > 0 && t.in == 0) throw Error(where_ + ": cannot resize an empty axis");
      fill_taps(t, scale);
    }
    Shape out(rank);
    for (size_t d = 0; d < rank; ++d) out[d] = plan[d].out;
    checked_element_count(out, where_);
    return plan;
  }

  // Source coordinate of output index j (ONNX coordinate_transformation_mode), in double as the spec.
  // `resized` is the output length before flooring (in·scale when scales are given), as in ONNX's
  // reference: align_corners with a scale of 0.6 on 4 elements maps 1 to 3/1.4, not to 3.
  double source_coordinate(int64_t j, double scale, int64_t in, int64_t out, double resized) const {
    const double x = static_cast<double>(j);
    if (coordinates_ == "half_pixel") return (x + 0.5) / scale - 0.5;
    if (coordinates_ == "pytorch_half_pixel") return out > 1 ? (x + 0.5) / scale - 0.5 : 0.0;
    if (coordinates_ == "align_corners")
      return out == 1 ? 0.0 : x * static_cast<double>(in - 1) / (resized - 1.0);
    if (coordinates_ == "tf_half_pixel_for_nn") return (x + 0.5) / scale;
    return x / scale;  // asymmetric
  }

  int64_t nearest(double x) const {
    if (nearest_mode_ == "floor") return static_cast<int64_t>(std::floor(x));
    if (nearest_mode_ == "ceil") return static_cast<int64_t>(std::ceil(x));
    const bool half = x - std::floor(x) == 0.5;
    if (half)
      return static_cast<int64_t>(nearest_mode_ == "round_prefer_ceil" ? std::ceil(x) : std::floor(x));
    return static_cast<int64_t>(std::round(x));
  }

  void fill_taps(AxisTaps& t, double scale) const {
    const size_t n = static_cast<size_t>(t.out);
    t.first.resize(n);
    t.second.resize(n);
    t.first_weight.resize(n);
    t.second_weight.resize(n);
    auto clamp = [&](int64_t i) { return std::clamp<int64_t>(i, 0, t.in - 1); };
    for (int64_t j = 0; j < t.out; ++j) {
      const size_t k = static_cast<size_t>(j);
      const double x = source_coordinate(j, scale, t.in, t.out, static_cast<double>(t.in) * scale);
      if (!linear_) {
        t.first[k] = t.second[k] = clamp(nearest(x));
        t.first_weight[k] = 1.0f;
        t.second_weight[k] = 0.0f;
        continue;
      }
      // Neighbours outside the input repeat its edge, so the weights of a clamped pair add up.
      const double xc = std::clamp(x, 0.0, static_cast<double>(t.in - 1));
      const int64_t lo = static_cast<int64_t>(std::floor(xc));
      const double frac = xc - static_cast<double>(lo);
      t.first[k] = lo;
      t.second[k] = clamp(lo + 1);
      t.first_weight[k] = static_cast<float>(1.0 - frac);
      t.second_weight[k] = static_cast<float>(frac);
    }
  }

  std::string where_, type_;
  bool linear_ = false;
  std::string coordinates_, nearest_mode_;
  InputLayout input_layout_;
  std::vector<float> scales_attribute_;
};

}  // namespace

std::unique_ptr<Op> make_resize(const OpSpec& spec) {
  return std::make_unique<ResizeOp>(spec);
}

}  // namespace sieve::ops
