// Ops that move values without arithmetic (Flatten, Reshape, Transpose, Concat, Squeeze, Unsqueeze,
// Pad, Identity/Dropout) and the shape arithmetic exporters put around them (Shape, Gather, Cast,
// ConstantOfShape, Slice, Range), which the importer folds whenever the shapes are known.

#include <algorithm>
#include <cmath>
#include <limits>

#include "ops/common.hpp"
#include "ops/factories.hpp"

namespace sieve::ops {
namespace {

// Copies the block of `x` described by per-axis (start, step, count) into a new tensor of the counts.
Tensor strided_copy(const Tensor& x, const std::vector<int64_t>& start, const std::vector<int64_t>& step,
                    const Shape& out_shape) {
  Tensor y = Tensor::uninitialized(out_shape);
  const int64_t n = y.size();
  const size_t rank = out_shape.size();
  const std::vector<int64_t> xs = strides_of(x.shape());
  for (int64_t i = 0; i < n; ++i) {
    int64_t rem = i, off = 0;
    for (size_t d = rank; d-- > 0;) {
      const int64_t idx = rem % out_shape[d];
      rem /= out_shape[d];
      off += (start[d] + idx * step[d]) * xs[d];
    }
    y[i] = x[off];
  }
  return y;
}

// Ops whose output is their first input with another shape: the gradient is reshaped back.
class ReshapingOp : public Op {
 public:
  std::vector<Tensor> vjp(const VjpArgs& a) const override {
    std::vector<Tensor> grads(a.inputs.size());
    if (!a.grad_outputs[0].empty() && a.wanted[0]) grads[0] = a.grad_outputs[0].reshaped(a.input_shapes[0]);
    return grads;
  }
  VjpReads vjp_reads(size_t n, size_t) const override { return {std::vector<bool>(n, false), {false}}; }
};

class FlattenOp : public ReshapingOp {
 public:
  FlattenOp(const OpSpec& spec) : where_(spec.where()), axis_(spec.attributes.get_int("axis", 1)) {}
  std::string_view type() const override { return "Flatten"; }
  OpRole role(std::span<const bool>) const override { return OpRole::data_movement; }
  std::vector<Tensor> forward(std::span<const Tensor> inputs) const override {
    expect_inputs(inputs, 1, 1, where_);
    const Tensor& x = inputs[0];
    const int64_t axis = axis_ == x.rank() ? axis_ : normalize_axis(axis_, x.rank(), where_);
    int64_t outer = 1;
    for (int64_t d = 0; d < axis; ++d) outer *= x.dim(d);
    return {x.reshaped({outer, outer == 0 ? 0 : x.size() / outer})};
  }

 private:
  std::string where_;
  int64_t axis_;
};

class ReshapeOp : public ReshapingOp {
 public:
  ReshapeOp(const OpSpec& spec)
      : where_(spec.where()), allow_zero_(spec.attributes.get_int("allowzero", 0) != 0) {
    if (spec.opset < 5) spec.fail("Reshape with a 'shape' attribute (opset < 5) is not supported");
  }
  std::string_view type() const override { return "Reshape"; }
  OpRole role(std::span<const bool>) const override { return OpRole::data_movement; }
  std::vector<Tensor> forward(std::span<const Tensor> inputs) const override {
    expect_inputs(inputs, 2, 2, where_);
    const Tensor& x = inputs[0];
    std::vector<int64_t> dims = to_ints(inputs[1]);
    int64_t known = 1, infer = -1;
    for (size_t i = 0; i < dims.size(); ++i) {
      if (dims[i] == 0 && !allow_zero_) {
        if (static_cast<int64_t>(i) >= x.rank())
          throw Error(where_ + ": shape entry 0 at axis " + std::to_string(i) +
                      " has no input dimension to copy");
        dims[i] = x.dim(static_cast<int64_t>(i));
      }
      if (dims[i] == -1) {
        if (infer >= 0) throw Error(where_ + ": more than one -1 in the target shape");
        infer = static_cast<int64_t>(i);
      } else if (dims[i] < 0) {
        throw Error(where_ + ": invalid target dimension " + std::to_string(dims[i]));
      } else {
        known *= dims[i];
      }
    }
    if (infer >= 0) {
      if (known == 0 || x.size() % known != 0) {
        throw Error(where_ + ": cannot reshape " + to_string(x.shape()) + " to " +
                    to_string(to_ints(inputs[1])));
      }
      dims[static_cast<size_t>(infer)] = x.size() / known;
    }
    if (checked_element_count(dims, where_) != x.size()) {
      throw Error(where_ + ": cannot reshape " + to_string(x.shape()) + " to " + to_string(dims));
    }
    return {x.reshaped(dims)};
  }

 private:
  std::string where_;
  bool allow_zero_;
};

class TransposeOp : public Op {
 public:
  TransposeOp(const OpSpec& spec) : where_(spec.where()), perm_(spec.attributes.get_ints("perm")) {}
  std::string_view type() const override { return "Transpose"; }
  OpRole role(std::span<const bool>) const override { return OpRole::data_movement; }
  std::vector<Tensor> forward(std::span<const Tensor> inputs) const override {
    expect_inputs(inputs, 1, 1, where_);
    const Tensor& x = inputs[0];
    const size_t rank = static_cast<size_t>(x.rank());
    std::vector<int64_t> perm = perm_;
    if (perm.empty()) {
      for (size_t i = 0; i < rank; ++i) perm.push_back(static_cast<int64_t>(rank - 1 - i));
    }
    std::vector<bool> seen(rank, false);
    if (perm.size() != rank)
      throw Error(where_ + ": perm has " + std::to_string(perm.size()) + " entries for rank " +
                  std::to_string(rank));
    for (int64_t& p : perm) {
      p = normalize_axis(p, static_cast<int64_t>(rank), where_);
      if (seen[static_cast<size_t>(p)]) throw Error(where_ + ": perm is not a permutation");
      seen[static_cast<size_t>(p)] = true;
    }
    Shape out(rank);
    const std::vector<int64_t> xs = strides_of(x.shape());
    for (size_t i = 0; i < rank; ++i) {
      out[i] = x.dim(perm[i]);
    }
    // Read x through permuted strides: output axis i walks input axis perm[i].
    Tensor y = Tensor::uninitialized(out);
    const int64_t n = y.size();
#pragma omp parallel for if (n > 65536)
    for (int64_t i = 0; i < n; ++i) {
      int64_t rem = i, off = 0;
      for (size_t d = rank; d-- > 0;) {
        off += (rem % out[d]) * xs[static_cast<size_t>(perm[d])];
        rem /= out[d];
      }
      y[i] = x[off];
    }
    return {y};
  }

  std::vector<Tensor> vjp(const VjpArgs& a) const override {
    const Tensor& g = a.grad_outputs[0];
    if (g.empty() || !a.wanted[0]) return {Tensor()};
    const size_t rank = a.input_shapes[0].size();
    std::vector<int64_t> perm = perm_;
    if (perm.empty()) {
      for (size_t i = 0; i < rank; ++i) perm.push_back(static_cast<int64_t>(rank - 1 - i));
    }
    std::vector<int64_t> inverse(rank);
    for (size_t i = 0; i < rank; ++i)
      inverse[static_cast<size_t>(normalize_axis(perm[i], static_cast<int64_t>(rank), where_))] =
          static_cast<int64_t>(i);
    OpSpec spec;
    spec.op_type = "Transpose";
    spec.name = where_;
    spec.attributes.set("perm", inverse);
    return TransposeOp(spec).forward(std::span<const Tensor>(&g, 1));
  }
  VjpReads vjp_reads(size_t, size_t) const override {
    return {{false}, {false}};
  }

 private:
  std::string where_;
  std::vector<int64_t> perm_;
};

class ConcatOp : public Op {
 public:
  ConcatOp(const OpSpec& spec) : where_(spec.where()) {
    if (!spec.attributes.has("axis")) spec.fail("attribute 'axis' is required");
    axis_ = spec.attributes.get_int("axis", 0);
  }
  std::string_view type() const override { return "Concat"; }
  OpRole role(std::span<const bool>) const override { return OpRole::data_movement; }
  std::vector<Tensor> forward(std::span<const Tensor> inputs) const override {
    if (inputs.empty()) throw Error(where_ + ": no inputs");
    const Shape& first = inputs[0].shape();
    const int64_t axis = normalize_axis(axis_, static_cast<int64_t>(first.size()), where_);
    Shape out = first;
    out[static_cast<size_t>(axis)] = 0;
    for (const Tensor& t : inputs) {
      bool fits = t.rank() == static_cast<int64_t>(first.size());
      for (size_t d = 0; fits && d < first.size(); ++d)
        fits = static_cast<int64_t>(d) == axis || t.shape()[d] == first[d];
      if (!fits)
        throw Error(where_ + ": cannot concatenate " + to_string(t.shape()) + " with " + to_string(first) +
                    " on axis " + std::to_string(axis));
      out[static_cast<size_t>(axis)] += t.dim(axis);
    }
    Tensor y = Tensor::uninitialized(out);
    int64_t outer = 1;
    for (int64_t d = 0; d < axis; ++d) outer *= first[static_cast<size_t>(d)];
    const int64_t out_row = outer == 0 ? 0 : y.size() / outer;
    int64_t offset = 0;
    for (const Tensor& t : inputs) {
      const int64_t row = outer == 0 ? 0 : t.size() / outer;
      for (int64_t o = 0; o < outer; ++o)
        std::copy(t.data() + o * row, t.data() + (o + 1) * row, y.data() + o * out_row + offset);
      offset += row;
    }
    return {y};
  }

  // Splits the gradient back into the pieces along the axis.
  std::vector<Tensor> vjp(const VjpArgs& a) const override {
    std::vector<Tensor> grads(a.input_shapes.size());
    const Tensor& g = a.grad_outputs[0];
    if (g.empty()) return grads;
    const int64_t axis = normalize_axis(axis_, g.rank(), where_);
    int64_t outer = 1;
    for (int64_t d = 0; d < axis; ++d) outer *= g.dim(d);
    const int64_t out_row = outer == 0 ? 0 : g.size() / outer;
    int64_t offset = 0;
    for (size_t i = 0; i < a.input_shapes.size(); ++i) {
      const int64_t row = outer == 0 ? 0 : element_count(a.input_shapes[i]) / outer;
      if (a.wanted[i]) {
        Tensor t = Tensor::uninitialized(a.input_shapes[i]);
        for (int64_t o = 0; o < outer; ++o)
          std::copy(g.data() + o * out_row + offset, g.data() + o * out_row + offset + row,
                    t.data() + o * row);
        grads[i] = std::move(t);
      }
      offset += row;
    }
    return grads;
  }
  VjpReads vjp_reads(size_t n, size_t) const override { return {std::vector<bool>(n, false), {false}}; }

 private:
  std::string where_;
  int64_t axis_;
};

// Squeeze / Unsqueeze; axes come from an attribute before opset 13 and from an input after.
class SqueezeOp : public ReshapingOp {
 public:
  SqueezeOp(const OpSpec& spec)
      : where_(spec.where()), type_(spec.op_type), axes_from_input_(spec.opset >= 13) {
    axes_ = spec.attributes.get_ints("axes");
    if (type_ == "Unsqueeze" && !axes_from_input_ && axes_.empty()) spec.fail("attribute 'axes' is required");
  }
  std::string_view type() const override { return type_; }
  OpRole role(std::span<const bool>) const override { return OpRole::data_movement; }
  std::vector<Tensor> forward(std::span<const Tensor> inputs) const override {
    expect_inputs(inputs, 1, 2, where_);
    const Tensor& x = inputs[0];
    std::vector<int64_t> axes = axes_;
    if (axes_from_input_ && inputs.size() > 1 && !inputs[1].empty()) axes = to_ints(inputs[1]);
    if (axes_from_input_ && type_ == "Unsqueeze" && axes.empty())
      throw Error(where_ + ": input 'axes' is required");
    return {x.reshaped(type_ == "Squeeze" ? squeezed(x.shape(), axes) : unsqueezed(x.shape(), axes))};
  }

 private:
  Shape squeezed(const Shape& s, std::vector<int64_t> axes) const {
    const int64_t rank = static_cast<int64_t>(s.size());
    std::vector<bool> drop(s.size(), false);
    if (axes.empty()) {
      for (size_t d = 0; d < s.size(); ++d) drop[d] = s[d] == 1;
    }
    for (int64_t a : axes) {
      const int64_t d = normalize_axis(a, rank, where_);
      if (s[static_cast<size_t>(d)] != 1)
        throw Error(where_ + ": cannot squeeze axis " + std::to_string(a) + " of shape " + to_string(s));
      drop[static_cast<size_t>(d)] = true;
    }
    Shape out;
    for (size_t d = 0; d < s.size(); ++d)
      if (!drop[d]) out.push_back(s[d]);
    return out;
  }
  Shape unsqueezed(const Shape& s, const std::vector<int64_t>& axes) const {
    const int64_t rank = static_cast<int64_t>(s.size() + axes.size());
    std::vector<bool> added(static_cast<size_t>(rank), false);
    for (int64_t a : axes) {
      const int64_t d = normalize_axis(a, rank, where_);
      if (added[static_cast<size_t>(d)]) throw Error(where_ + ": repeated axis " + std::to_string(a));
      added[static_cast<size_t>(d)] = true;
    }
    Shape out;
    size_t next = 0;
    for (int64_t d = 0; d < rank; ++d) out.push_back(added[static_cast<size_t>(d)] ? 1 : s[next++]);
    return out;
  }
  std::string where_, type_;
  bool axes_from_input_;
  std::vector<int64_t> axes_;
};

// Constant-mode Pad; negative pads crop.
class PadOp : public Op {
 public:
  PadOp(const OpSpec& spec) : where_(spec.where()), pads_from_input_(spec.opset >= 11) {
    const std::string mode = spec.attributes.get_string("mode", "constant");
    if (mode != "constant") spec.fail("only mode 'constant' is supported, not '" + mode + "'");
    pads_ = spec.attributes.get_ints("pads");
    value_ = spec.attributes.get_float("value", 0.0f);
  }
  std::string_view type() const override { return "Pad"; }
  OpRole role(std::span<const bool>) const override { return OpRole::data_movement; }
  std::vector<Tensor> forward(std::span<const Tensor> inputs) const override {
    expect_inputs(inputs, pads_from_input_ ? 2 : 1, 4, where_);
    const Tensor& x = inputs[0];
    const int64_t rank = x.rank();
    std::vector<int64_t> pads = pads_from_input_ ? to_ints(inputs[1]) : pads_;
    float value = value_;
    if (pads_from_input_ && inputs.size() > 2 && !inputs[2].empty()) {
      if (inputs[2].size() != 1) throw Error(where_ + ": constant_value must be a scalar");
      value = inputs[2][0];
    }
    if (pads_from_input_ && inputs.size() > 3 && !inputs[3].empty()) {
      // Pads given for some axes only (opset 18): spread them over the full rank.
      const std::vector<int64_t> axes = to_ints(inputs[3]);
      if (pads.size() != 2 * axes.size()) throw Error(where_ + ": pads do not match axes");
      std::vector<int64_t> full(static_cast<size_t>(2 * rank), 0);
      for (size_t i = 0; i < axes.size(); ++i) {
        const int64_t a = normalize_axis(axes[i], rank, where_);
        full[static_cast<size_t>(a)] = pads[i];
        full[static_cast<size_t>(a + rank)] = pads[i + axes.size()];
      }
      pads = full;
    }
    if (static_cast<int64_t>(pads.size()) != 2 * rank) {
      throw Error(where_ + ": " + std::to_string(pads.size()) + " pads for an input of rank " +
                  std::to_string(rank));
    }
    Shape out(static_cast<size_t>(rank));
    for (int64_t d = 0; d < rank; ++d) {
      out[static_cast<size_t>(d)] =
          x.dim(d) + pads[static_cast<size_t>(d)] + pads[static_cast<size_t>(d + rank)];
      if (out[static_cast<size_t>(d)] < 0) throw Error(where_ + ": pads crop more than the input has");
    }
    Tensor y(out, value);
    const std::vector<int64_t> xs = strides_of(x.shape());
    const int64_t n = y.size();
    for (int64_t i = 0; i < n; ++i) {
      int64_t rem = i, off = 0;
      bool inside = true;
      for (int64_t d = rank; d-- > 0;) {
        const int64_t src = rem % out[static_cast<size_t>(d)] - pads[static_cast<size_t>(d)];
        rem /= out[static_cast<size_t>(d)];
        if (src < 0 || src >= x.dim(d)) {
          inside = false;
          break;
        }
        off += src * xs[static_cast<size_t>(d)];
      }
      if (inside) y[i] = x[off];
    }
    return {y};
  }

  // The gradient of padding is the crop of the gradient (and zeros where the pad cropped the input).
  std::vector<Tensor> vjp(const VjpArgs& a) const override {
    std::vector<Tensor> grads(a.inputs.size());
    const Tensor& g = a.grad_outputs[0];
    if (g.empty() || !a.wanted[0]) return grads;
    const Shape& xs = a.input_shapes[0];
    const int64_t rank = static_cast<int64_t>(xs.size());
    std::vector<int64_t> pads = pads_from_input_ ? to_ints(a.inputs[1]) : pads_;
    if (pads_from_input_ && a.inputs.size() > 3 && !a.inputs[3].empty())
      throw Error(where_ + ": gradient of Pad with axes is not supported");
    Tensor gx(xs);
    const std::vector<int64_t> gs = strides_of(g.shape());
    for (int64_t i = 0; i < gx.size(); ++i) {
      int64_t rem = i, off = 0;
      bool inside = true;
      for (int64_t d = rank; d-- > 0;) {
        const int64_t pos = rem % xs[static_cast<size_t>(d)] + pads[static_cast<size_t>(d)];
        rem /= xs[static_cast<size_t>(d)];
        if (pos < 0 || pos >= g.dim(d)) {
          inside = false;
          break;
        }
        off += pos * gs[static_cast<size_t>(d)];
      }
      if (inside) gx[i] = g[off];
    }
    grads[0] = std::move(gx);
    return grads;
  }
  VjpReads vjp_reads(size_t n, size_t) const override {
    std::vector<bool> reads(n, true);
    reads[0] = false;
    return {reads, {false}};
  }

 private:
  std::string where_;
  bool pads_from_input_;
  std::vector<int64_t> pads_;
  float value_;
};

// Identity and inference-time Dropout (whose optional mask output is all true).
class IdentityOp : public Op {
 public:
  IdentityOp(const OpSpec& spec) : where_(spec.where()), type_(spec.op_type), outputs_(spec.num_outputs) {}
  std::string_view type() const override { return type_; }
  OpRole role(std::span<const bool>) const override { return OpRole::data_movement; }
  bool is_identity() const override { return true; }
  std::vector<Tensor> forward(std::span<const Tensor> inputs) const override {
    if (inputs.empty() || inputs[0].empty()) throw Error(where_ + ": missing input");
    if (inputs.size() > 2 && !inputs[2].empty() && inputs[2].size() == 1 && inputs[2][0] != 0.0f) {
      throw Error(where_ + ": Dropout in training mode is not supported");
    }
    std::vector<Tensor> out{inputs[0]};
    if (outputs_ > 1) out.emplace_back(inputs[0].shape(), 1.0f);
    return out;
  }

  std::vector<Tensor> vjp(const VjpArgs& a) const override {
    std::vector<Tensor> grads(a.inputs.size());
    if (!a.grad_outputs[0].empty() && a.wanted[0]) grads[0] = a.grad_outputs[0];
    return grads;
  }
  VjpReads vjp_reads(size_t n, size_t m) const override {
    return {std::vector<bool>(n, false), std::vector<bool>(m, false)};
  }

 private:
  std::string where_, type_;
  size_t outputs_;
};

class ShapeOp : public Op {
 public:
  ShapeOp(const OpSpec& spec)
      : where_(spec.where()),
        start_(spec.attributes.get_int("start", 0)),
        end_(spec.attributes.get_int("end", std::numeric_limits<int64_t>::max())) {}
  std::string_view type() const override { return "Shape"; }
  OpRole role(std::span<const bool>) const override { return OpRole::shape_only; }
  bool reads_only_shapes() const override { return true; }
  std::vector<Tensor> forward(std::span<const Tensor> inputs) const override {
    expect_inputs(inputs, 1, 1, where_);
    const Shape& s = inputs[0].shape();
    const int64_t r = static_cast<int64_t>(s.size());
    auto clamp = [r](int64_t v) { return std::clamp(v < 0 ? v + r : v, int64_t{0}, r); };
    const int64_t b = clamp(start_), e = clamp(end_);
    return {from_ints(std::vector<int64_t>(s.begin() + b, s.begin() + std::max(b, e)))};
  }

  // The output depends on shapes or constants only: no gradient flows back.
  std::vector<Tensor> vjp(const VjpArgs& a) const override { return std::vector<Tensor>(a.inputs.size()); }
  VjpReads vjp_reads(size_t n, size_t m) const override {
    return {std::vector<bool>(n, false), std::vector<bool>(m, false)};
  }

 private:
  std::string where_;
  int64_t start_, end_;
};

class GatherOp : public Op {
 public:
  GatherOp(const OpSpec& spec) : where_(spec.where()), axis_(spec.attributes.get_int("axis", 0)) {}
  std::string_view type() const override { return "Gather"; }
  OpRole role(std::span<const bool>) const override { return OpRole::data_movement; }
  bool is_table_lookup() const override { return axis_ == 0; }
  std::vector<Tensor> forward(std::span<const Tensor> inputs) const override {
    expect_inputs(inputs, 2, 2, where_);
    const Tensor &x = inputs[0], &idx = inputs[1];
    const int64_t axis = normalize_axis(axis_, x.rank(), where_);
    const std::vector<int64_t> indices = to_ints(idx);
    Shape out(x.shape().begin(), x.shape().begin() + axis);
    out.insert(out.end(), idx.shape().begin(), idx.shape().end());
    out.insert(out.end(), x.shape().begin() + axis + 1, x.shape().end());
    int64_t outer = 1, inner = 1;
    for (int64_t d = 0; d < axis; ++d) outer *= x.dim(d);
    for (int64_t d = axis + 1; d < x.rank(); ++d) inner *= x.dim(d);
    const int64_t len = x.dim(axis);
    Tensor y = Tensor::uninitialized(out);
    for (int64_t o = 0; o < outer; ++o) {
      for (size_t j = 0; j < indices.size(); ++j) {
        int64_t k = indices[j] < 0 ? indices[j] + len : indices[j];
        if (k < 0 || k >= len)
          throw Error(where_ + ": index " + std::to_string(indices[j]) + " out of range for axis of size " +
                      std::to_string(len));
        std::copy(x.data() + (o * len + k) * inner, x.data() + (o * len + k + 1) * inner,
                  y.data() + (o * static_cast<int64_t>(indices.size()) + static_cast<int64_t>(j)) * inner);
      }
    }
    return {y};
  }

  std::vector<Tensor> vjp(const VjpArgs& a) const override {
    std::vector<Tensor> grads(2);
    const Tensor& g = a.grad_outputs[0];
    if (g.empty() || !a.wanted[0]) return grads;
    const Shape& xs = a.input_shapes[0];
    const int64_t axis = normalize_axis(axis_, static_cast<int64_t>(xs.size()), where_);
    const std::vector<int64_t> indices = to_ints(a.inputs[1]);
    int64_t outer = 1, inner = 1;
    for (int64_t d = 0; d < axis; ++d) outer *= xs[static_cast<size_t>(d)];
    for (size_t d = static_cast<size_t>(axis) + 1; d < xs.size(); ++d) inner *= xs[d];
    const int64_t len = xs[static_cast<size_t>(axis)], count = static_cast<int64_t>(indices.size());
    Tensor gx(xs);
    for (int64_t o = 0; o < outer; ++o) {
      for (int64_t j = 0; j < count; ++j) {
        const int64_t k = indices[static_cast<size_t>(j)] < 0 ? indices[static_cast<size_t>(j)] + len
                                                              : indices[static_cast<size_t>(j)];
        for (int64_t i = 0; i < inner; ++i) gx[(o * len + k) * inner + i] += g[(o * count + j) * inner + i];
      }
    }
    grads[0] = std::move(gx);
    return grads;
  }
  VjpReads vjp_reads(size_t, size_t) const override { return {{false, true}, {false}}; }

 private:
  std::string where_;
  int64_t axis_;
};

// Cast between the types sieve carries as float: integer targets truncate, bool becomes 0/1.
class CastOp : public Op {
 public:
  CastOp(const OpSpec& spec) : where_(spec.where()), to_(spec.attributes.get_int("to", 1)) {
    // ONNX TensorProto types: 1 float, 2 uint8, 3 int8, 4 uint16, 5 int16, 6 int32, 7 int64, 9 bool,
    // 10 float16, 11 double, 12 uint32, 13 uint64, 16 bfloat16.
    if (to_ == 8 || to_ == 14 || to_ == 15 || to_ > 16 || to_ <= 0)
      spec.fail("unsupported target type " + std::to_string(to_));
  }
  std::string_view type() const override { return "Cast"; }
  OpRole role(std::span<const bool>) const override { return OpRole::data_movement; }
  std::vector<Tensor> forward(std::span<const Tensor> inputs) const override {
    expect_inputs(inputs, 1, 1, where_);
    const Tensor& x = inputs[0];
    Tensor y = Tensor::uninitialized(x.shape());
    const bool integer = to_ >= 2 && to_ <= 7 ? true : (to_ == 12 || to_ == 13);
    for (int64_t i = 0; i < x.size(); ++i) {
      const float v = x[i];
      y[i] = to_ == 9 ? (v != 0.0f ? 1.0f : 0.0f) : integer ? std::trunc(v) : v;
    }
    return {y};
  }

  // Float-to-float casts pass the gradient; casts to integer or bool types have none.
  std::vector<Tensor> vjp(const VjpArgs& a) const override {
    const bool floating = to_ == 1 || to_ == 10 || to_ == 11 || to_ == 16;
    if (!floating || a.grad_outputs[0].empty() || !a.wanted[0]) return {Tensor()};
    return {a.grad_outputs[0]};
  }
  VjpReads vjp_reads(size_t, size_t) const override { return {{false}, {false}}; }

 private:
  std::string where_;
  int64_t to_;
};

class ConstantOfShapeOp : public Op {
 public:
  ConstantOfShapeOp(const OpSpec& spec) : where_(spec.where()) {
    if (spec.attributes.has("value")) {
      const Tensor v = spec.attributes.get_tensor("value");
      if (v.size() != 1) spec.fail("'value' must hold one element");
      value_ = v[0];
    }
  }
  std::string_view type() const override { return "ConstantOfShape"; }
  OpRole role(std::span<const bool>) const override { return OpRole::shape_only; }
  std::vector<Tensor> forward(std::span<const Tensor> inputs) const override {
    expect_inputs(inputs, 1, 1, where_);
    const std::vector<int64_t> dims = to_ints(inputs[0]);
    checked_element_count(dims, where_);
    return {Tensor(Shape(dims.begin(), dims.end()), value_)};
  }

  // The output depends on shapes or constants only: no gradient flows back.
  std::vector<Tensor> vjp(const VjpArgs& a) const override { return std::vector<Tensor>(a.inputs.size()); }
  VjpReads vjp_reads(size_t n, size_t m) const override {
    return {std::vector<bool>(n, false), std::vector<bool>(m, false)};
  }

 private:
  std::string where_;
  float value_ = 0.0f;
};

class SliceOp : public Op {
 public:
  SliceOp(const OpSpec& spec) : where_(spec.where()), from_inputs_(spec.opset >= 10) {
    starts_ = spec.attributes.get_ints("starts");
    ends_ = spec.attributes.get_ints("ends");
    axes_ = spec.attributes.get_ints("axes");
  }
  std::string_view type() const override { return "Slice"; }
  OpRole role(std::span<const bool>) const override { return OpRole::data_movement; }
  std::vector<Tensor> forward(std::span<const Tensor> inputs) const override {
    expect_inputs(inputs, from_inputs_ ? 3 : 1, 5, where_);
    std::vector<int64_t> start, step;
    Shape out;
    plan(inputs, inputs[0].shape(), start, step, out);
    const Tensor& x = inputs[0];
    return {strided_copy(x, start, step, out)};
  }

  // Scatters the gradient back into the sliced positions.
  std::vector<Tensor> vjp(const VjpArgs& a) const override {
    std::vector<Tensor> grads(a.inputs.size());
    const Tensor& g = a.grad_outputs[0];
    if (g.empty() || !a.wanted[0]) return grads;
    std::vector<int64_t> start, step;
    Shape out;
    plan(a.inputs, a.input_shapes[0], start, step, out);
    Tensor gx(a.input_shapes[0]);
    const std::vector<int64_t> xs = strides_of(a.input_shapes[0]);
    for (int64_t i = 0; i < g.size(); ++i) {
      int64_t rem = i, off = 0;
      for (size_t d = out.size(); d-- > 0;) {
        off += (start[d] + (rem % out[d]) * step[d]) * xs[d];
        rem /= out[d];
      }
      gx[off] += g[i];
    }
    grads[0] = std::move(gx);
    return grads;
  }
  VjpReads vjp_reads(size_t n, size_t) const override {
    std::vector<bool> reads(n, true);
    reads[0] = false;
    return {reads, {false}};
  }

  // Start, step and extent per axis of the slice of an input of shape x_shape.
  void plan(std::span<const Tensor> inputs, const Shape& x_shape, std::vector<int64_t>& start,
            std::vector<int64_t>& step, Shape& out) const {
    std::vector<int64_t> starts = starts_, ends = ends_, axes = axes_, steps;
    if (from_inputs_) {
      starts = to_ints(inputs[1]);
      ends = to_ints(inputs[2]);
      if (inputs.size() > 3 && !inputs[3].empty()) axes = to_ints(inputs[3]);
      if (inputs.size() > 4 && !inputs[4].empty()) steps = to_ints(inputs[4]);
    }
    if (axes.empty())
      for (size_t i = 0; i < starts.size(); ++i) axes.push_back(static_cast<int64_t>(i));
    if (steps.empty()) steps.assign(starts.size(), 1);
    if (ends.size() != starts.size() || axes.size() != starts.size() || steps.size() != starts.size()) {
      throw Error(where_ + ": starts, ends, axes and steps differ in length");
    }
    const size_t rank = x_shape.size();
    start.assign(rank, 0);
    step.assign(rank, 1);
    out = x_shape;
    for (size_t i = 0; i < starts.size(); ++i) {
      const size_t a =
          static_cast<size_t>(normalize_axis(axes[i], static_cast<int64_t>(x_shape.size()), where_));
      const int64_t len = x_shape[a], st = steps[i];
      if (st == 0) throw Error(where_ + ": step 0");
      auto clamp = [&](int64_t v, int64_t lo, int64_t hi) { return std::clamp(v < 0 ? v + len : v, lo, hi); };
      const int64_t b = st > 0 ? clamp(starts[i], 0, len) : clamp(starts[i], -1, len - 1);
      const int64_t e = st > 0 ? clamp(ends[i], 0, len) : clamp(ends[i], -1, len - 1);
      start[a] = b;
      step[a] = st;
      out[a] =
          st > 0 ? std::max<int64_t>(0, (e - b + st - 1) / st) : std::max<int64_t>(0, (b - e - st - 1) / -st);
    }
  }

 private:
  std::string where_;
  bool from_inputs_;
  std::vector<int64_t> starts_, ends_, axes_;
};

// Tile: the input repeated `repeats[d]` times along every axis d.
class TileOp : public Op {
 public:
  explicit TileOp(const OpSpec& spec) : where_(spec.where()) {}
  std::string_view type() const override { return "Tile"; }
  OpRole role(std::span<const bool>) const override { return OpRole::data_movement; }
  std::vector<Tensor> forward(std::span<const Tensor> inputs) const override {
    expect_inputs(inputs, 2, 2, where_);
    const Tensor& x = inputs[0];
    const Shape out = tiled_shape(x.shape(), inputs[1]);
    Tensor y = Tensor::uninitialized(out);
    const std::vector<int64_t> xs = strides_of(x.shape());
    for (int64_t i = 0; i < y.size(); ++i) y[i] = x[source(i, out, x.shape(), xs)];
    return {y};
  }
  // Every copy's gradient summed back into the element it copies.
  std::vector<Tensor> vjp(const VjpArgs& a) const override {
    std::vector<Tensor> grads(2);
    const Tensor& g = a.grad_outputs[0];
    if (g.empty() || !a.wanted[0]) return grads;
    const Shape& shape = a.input_shapes[0];
    const std::vector<int64_t> xs = strides_of(shape);
    std::vector<double> acc(static_cast<size_t>(element_count(shape)), 0.0);
    for (int64_t i = 0; i < g.size(); ++i) acc[static_cast<size_t>(source(i, g.shape(), shape, xs))] += g[i];
    Tensor gx = Tensor::uninitialized(shape);
    for (int64_t i = 0; i < gx.size(); ++i) gx[i] = static_cast<float>(acc[static_cast<size_t>(i)]);
    grads[0] = std::move(gx);
    return grads;
  }
  VjpReads vjp_reads(size_t, size_t) const override { return {{false, false}, {false}}; }

 private:
  Shape tiled_shape(const Shape& x, const Tensor& repeats_tensor) const {
    const std::vector<int64_t> repeats = to_ints(repeats_tensor);
    if (repeats.size() != x.size())
      throw Error(where_ + ": " + std::to_string(repeats.size()) + " repeats for an input of rank " +
                  std::to_string(x.size()));
    Shape out(x.size());
    for (size_t d = 0; d < x.size(); ++d) {
      if (repeats[d] < 0) throw Error(where_ + ": negative repeat " + std::to_string(repeats[d]));
      out[d] = x[d] * repeats[d];
    }
    checked_element_count(out, where_);
    return out;
  }
  // The offset in x of output element i.
  static int64_t source(int64_t i, const Shape& out, const Shape& x, const std::vector<int64_t>& xs) {
    int64_t rem = i, off = 0;
    for (size_t d = out.size(); d-- > 0;) {
      off += (rem % out[d]) % x[d] * xs[d];
      rem /= out[d];
    }
    return off;
  }
  std::string where_;
};

// Split into consecutive pieces along an axis: sizes from the `split` attribute (before opset 13) or
// input, else equal parts (from opset 18 `num_outputs` of them, the last one smaller when they do not
// divide evenly).
class SplitOp : public Op {
 public:
  explicit SplitOp(const OpSpec& spec)
      : where_(spec.where()),
        axis_(spec.attributes.get_int("axis", 0)),
        outputs_(spec.num_outputs),
        split_from_input_(spec.opset >= 13),
        uneven_last_(spec.opset >= 18) {
    sizes_ = spec.attributes.get_ints("split");
    if (split_from_input_ && !sizes_.empty()) spec.fail("'split' is an input from opset 13 on");
    if (spec.attributes.has("num_outputs") &&
        spec.attributes.get_int("num_outputs", 0) != static_cast<int64_t>(outputs_))
      spec.fail("num_outputs differs from the node's number of outputs");
    if (outputs_ == 0) spec.fail("no outputs");
  }
  std::string_view type() const override { return "Split"; }
  OpRole role(std::span<const bool>) const override { return OpRole::data_movement; }
  std::vector<Tensor> forward(std::span<const Tensor> inputs) const override {
    expect_inputs(inputs, 1, 2, where_);
    const Tensor& x = inputs[0];
    const int64_t axis = normalize_axis(axis_, x.rank(), where_);
    const std::vector<int64_t> sizes = piece_sizes(inputs, x.shape(), axis);
    int64_t outer = 1;
    for (int64_t d = 0; d < axis; ++d) outer *= x.dim(d);
    const int64_t row = outer == 0 ? 0 : x.size() / outer, inner = x.dim(axis) == 0 ? 0 : row / x.dim(axis);
    std::vector<Tensor> pieces;
    int64_t offset = 0;
    for (int64_t size : sizes) {
      Shape shape = x.shape();
      shape[static_cast<size_t>(axis)] = size;
      Tensor piece = Tensor::uninitialized(shape);
      const int64_t piece_row = size * inner;
      for (int64_t o = 0; o < outer; ++o)
        std::copy(x.data() + o * row + offset, x.data() + o * row + offset + piece_row,
                  piece.data() + o * piece_row);
      offset += piece_row;
      pieces.push_back(std::move(piece));
    }
    return pieces;
  }
  // The pieces' gradients side by side (zeros for pieces no gradient reached).
  std::vector<Tensor> vjp(const VjpArgs& a) const override {
    std::vector<Tensor> grads(a.inputs.size());
    if (!a.wanted[0]) return grads;
    const Shape& xs = a.input_shapes[0];
    const int64_t axis = normalize_axis(axis_, static_cast<int64_t>(xs.size()), where_);
    const std::vector<int64_t> sizes = piece_sizes(a.inputs, xs, axis);
    Tensor gx(xs);
    int64_t outer = 1;
    for (int64_t d = 0; d < axis; ++d) outer *= xs[static_cast<size_t>(d)];
    const int64_t row = outer == 0 ? 0 : gx.size() / outer;
    const int64_t inner = xs[static_cast<size_t>(axis)] == 0 ? 0 : row / xs[static_cast<size_t>(axis)];
    int64_t offset = 0;
    for (size_t k = 0; k < sizes.size(); ++k) {
      const int64_t piece_row = sizes[k] * inner;
      const Tensor& g = a.grad_outputs[k];
      if (!g.empty()) {
        for (int64_t o = 0; o < outer; ++o)
          std::copy(g.data() + o * piece_row, g.data() + (o + 1) * piece_row, gx.data() + o * row + offset);
      }
      offset += piece_row;
    }
    grads[0] = std::move(gx);
    return grads;
  }
  VjpReads vjp_reads(size_t n, size_t m) const override {
    std::vector<bool> reads(n, true);  // the split sizes
    reads[0] = false;
    return {reads, std::vector<bool>(m, false)};
  }

 private:
  std::vector<int64_t> piece_sizes(std::span<const Tensor> inputs, const Shape& xs, int64_t axis) const {
    std::vector<int64_t> sizes = sizes_;
    if (split_from_input_ && inputs.size() > 1 && !inputs[1].empty()) sizes = to_ints(inputs[1]);
    const int64_t len = xs[static_cast<size_t>(axis)], n = static_cast<int64_t>(outputs_);
    if (sizes.empty()) {
      const int64_t part = uneven_last_ ? (len + n - 1) / n : len / n;
      if (!uneven_last_ && len % n != 0)
        throw Error(where_ + ": axis of size " + std::to_string(len) + " does not split into " +
                    std::to_string(n) + " equal parts");
      for (int64_t k = 0; k < n; ++k) sizes.push_back(std::min(part, len - k * part));
    }
    int64_t total = 0;
    for (int64_t s : sizes) {
      if (s < 0) throw Error(where_ + ": negative split size " + std::to_string(s));
      total += s;
    }
    if (total != len || sizes.size() != outputs_)
      throw Error(where_ + ": split sizes " + to_string(sizes) + " do not divide an axis of size " +
                  std::to_string(len) + " into " + std::to_string(outputs_) + " outputs");
    return sizes;
  }
  std::string where_;
  int64_t axis_;
  size_t outputs_;
  bool split_from_input_, uneven_last_;
  std::vector<int64_t> sizes_;
};

class RangeOp : public Op {
 public:
  RangeOp(const OpSpec& spec) : where_(spec.where()) {}
  std::string_view type() const override { return "Range"; }
  OpRole role(std::span<const bool>) const override { return OpRole::shape_only; }
  std::vector<Tensor> forward(std::span<const Tensor> inputs) const override {
    expect_inputs(inputs, 3, 3, where_);
    const double start = inputs[0][0], limit = inputs[1][0], delta = inputs[2][0];
    if (delta == 0.0) throw Error(where_ + ": delta is 0");
    const int64_t n = std::max<int64_t>(0, static_cast<int64_t>(std::ceil((limit - start) / delta)));
    checked_element_count({n}, where_);
    Tensor y = Tensor::uninitialized({n});
    for (int64_t i = 0; i < n; ++i) y[i] = static_cast<float>(start + static_cast<double>(i) * delta);
    return {y};
  }

  // The output depends on shapes or constants only: no gradient flows back.
  std::vector<Tensor> vjp(const VjpArgs& a) const override { return std::vector<Tensor>(a.inputs.size()); }
  VjpReads vjp_reads(size_t n, size_t m) const override {
    return {std::vector<bool>(n, false), std::vector<bool>(m, false)};
  }

 private:
  std::string where_;
};

}  // namespace

std::unique_ptr<Op> make_flatten(const OpSpec& spec) {
  return std::make_unique<FlattenOp>(spec);
}
std::unique_ptr<Op> make_reshape(const OpSpec& spec) {
  return std::make_unique<ReshapeOp>(spec);
}
std::unique_ptr<Op> make_transpose(const OpSpec& spec) {
  return std::make_unique<TransposeOp>(spec);
}
std::unique_ptr<Op> make_concat(const OpSpec& spec) {
  return std::make_unique<ConcatOp>(spec);
}
std::unique_ptr<Op> make_squeeze(const OpSpec& spec) {
  return std::make_unique<SqueezeOp>(spec);
}
std::unique_ptr<Op> make_pad(const OpSpec& spec) {
  return std::make_unique<PadOp>(spec);
}
std::unique_ptr<Op> make_identity(const OpSpec& spec) {
  return std::make_unique<IdentityOp>(spec);
}
std::unique_ptr<Op> make_shape(const OpSpec& spec) {
  return std::make_unique<ShapeOp>(spec);
}
std::unique_ptr<Op> make_gather(const OpSpec& spec) {
  return std::make_unique<GatherOp>(spec);
}
std::unique_ptr<Op> make_cast(const OpSpec& spec) {
  return std::make_unique<CastOp>(spec);
}
std::unique_ptr<Op> make_constant_of_shape(const OpSpec& spec) {
  return std::make_unique<ConstantOfShapeOp>(spec);
}
std::unique_ptr<Op> make_slice(const OpSpec& spec) {
  return std::make_unique<SliceOp>(spec);
}
std::unique_ptr<Op> make_tile(const OpSpec& spec) {
  return std::make_unique<TileOp>(spec);
}
std::unique_ptr<Op> make_split(const OpSpec& spec) {
  return std::make_unique<SplitOp>(spec);
}
std::unique_ptr<Op> make_range(const OpSpec& spec) {
  return std::make_unique<RangeOp>(spec);
}

}  // namespace sieve::ops
