// Reductions: ReduceSum/Mean/Max/Min/L2 over axes of one tensor, and the variadic Sum/Mean/Max/Min over
// several broadcast tensors. Sums accumulate in double.

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <map>

#include "ops/common.hpp"
#include "ops/elementwise_kernels.hpp"
#include "ops/factories.hpp"

namespace sieve::ops {
namespace {

// Calls f(i, o) for every element i of a tensor of shape `s` in C order, with o = Σ_d index_d·to[d]: the
// offset of the element it maps to in a tensor with strides `to` (0 along the axes that map together).
template <class F>
void walk(const Shape& s, const std::vector<int64_t>& to, F f) {
  const size_t rank = s.size();
  const int64_t n = element_count(s);
  std::vector<int64_t> index(rank, 0);
  int64_t o = 0;
  for (int64_t i = 0; i < n; ++i) {
    f(i, o);
    for (size_t d = rank; d-- > 0;) {
      o += to[d];
      if (++index[d] < s[d]) break;
      o -= to[d] * s[d];
      index[d] = 0;
    }
  }
}

enum class Reduction { sum, mean, max, min, l2 };

class ReduceOp : public Op {
 public:
  explicit ReduceOp(const OpSpec& spec) : where_(spec.where()), type_(spec.op_type) {
    static const std::map<std::string, Reduction> kinds{{"ReduceSum", Reduction::sum},
                                                        {"ReduceMean", Reduction::mean},
                                                        {"ReduceMax", Reduction::max},
                                                        {"ReduceMin", Reduction::min},
                                                        {"ReduceL2", Reduction::l2}};
    kind_ = kinds.at(type_);
    // Axes became an input in opset 13 for ReduceSum and in opset 18 for the others.
    axes_from_input_ = spec.opset >= (kind_ == Reduction::sum ? 13 : 18);
    if (axes_from_input_ && spec.attributes.has("axes"))
      spec.fail("axes are an input from this opset on, not an attribute");
    axes_ = spec.attributes.get_ints("axes");
    keep_dims_ = spec.attributes.get_int("keepdims", 1) != 0;
    noop_with_empty_axes_ = spec.attributes.get_int("noop_with_empty_axes", 0) != 0;
  }
  std::string_view type() const override { return type_; }
  OpRole role(std::span<const bool>) const override {
    switch (kind_) {
      case Reduction::sum:
      case Reduction::mean:
        return OpRole::proportional;
      case Reduction::max:
      case Reduction::min:
        return OpRole::max_selection;
      case Reduction::l2:
        return OpRole::normalization;
    }
    return OpRole::normalization;
  }
  std::vector<Tensor> forward(std::span<const Tensor> inputs) const override {
    expect_inputs(inputs, 1, axes_from_input_ ? 2 : 1, where_);
    const Tensor& x = inputs[0];
    const Plan p = plan(inputs, x.shape());
    if (p.identity) return {x};
    Tensor y = Tensor::uninitialized(p.out);
    const int64_t m = y.size();
    if (kind_ == Reduction::max || kind_ == Reduction::min) {
      const bool max = kind_ == Reduction::max;
      std::fill(y.data(), y.data() + m,
                max ? -std::numeric_limits<float>::infinity() : std::numeric_limits<float>::infinity());
      walk(x.shape(), p.to, [&](int64_t i, int64_t o) {
        const float v = x[i];
        // NaN propagates, as in numpy.
        if (std::isnan(v) || (max ? v > y[o] : v < y[o])) y[o] = v;
      });
      return {y};
    }
    std::vector<double> acc(static_cast<size_t>(m), 0.0);
    if (kind_ == Reduction::l2)
      walk(x.shape(), p.to,
           [&](int64_t i, int64_t o) { acc[static_cast<size_t>(o)] += double(x[i]) * x[i]; });
    else
      walk(x.shape(), p.to, [&](int64_t i, int64_t o) { acc[static_cast<size_t>(o)] += x[i]; });
    for (int64_t o = 0; o < m; ++o) {
      const double s = acc[static_cast<size_t>(o)];
      y[o] = static_cast<float>(kind_ == Reduction::l2     ? std::sqrt(s)
                                : kind_ == Reduction::mean ? s / static_cast<double>(p.count)
                                                           : s);
    }
    return {y};
  }
  // Sum: ȳ broadcast back; Mean: ȳ/count; Max/Min: ȳ to the first extreme element; L2: ȳ·x/y.
  std::vector<Tensor> vjp(const VjpArgs& args) const override {
    std::vector<Tensor> grads(args.inputs.size());
    const Tensor& g = args.grad_outputs[0];
    if (g.empty() || !args.wanted[0]) return grads;
    const Shape& xs = args.input_shapes[0];
    const Plan p = plan(args.inputs, xs);
    if (p.identity) {
      grads[0] = g;
      return grads;
    }
    Tensor gx = Tensor::uninitialized(xs);
    switch (kind_) {
      case Reduction::sum:
      case Reduction::mean: {
        const float scale = kind_ == Reduction::mean ? 1.0f / static_cast<float>(p.count) : 1.0f;
        walk(xs, p.to, [&](int64_t i, int64_t o) { gx[i] = g[o] * scale; });
        break;
      }
      case Reduction::max:
      case Reduction::min: {
        const Tensor &x = args.inputs[0], &y = args.outputs[0];
        std::vector<bool> taken(static_cast<size_t>(y.size()), false);
        walk(xs, p.to, [&](int64_t i, int64_t o) {
          const bool first = !taken[static_cast<size_t>(o)] && x[i] == y[o];
          if (first) taken[static_cast<size_t>(o)] = true;
          gx[i] = first ? g[o] : 0.0f;
        });
        break;
      }
      case Reduction::l2: {
        const Tensor &x = args.inputs[0], &y = args.outputs[0];
        walk(xs, p.to, [&](int64_t i, int64_t o) { gx[i] = y[o] == 0.0f ? 0.0f : g[o] * x[i] / y[o]; });
        break;
      }
    }
    grads[0] = std::move(gx);
    return grads;
  }
  VjpReads vjp_reads(size_t n, size_t) const override {
    std::vector<bool> reads(n, true);  // the axes input
    const bool reads_values = kind_ != Reduction::sum && kind_ != Reduction::mean;
    reads[0] = reads_values;
    return {reads, {reads_values}};
  }

 private:
  struct Plan {
    bool identity = false;
    Shape out;                // the output shape
    std::vector<int64_t> to;  // per input axis, the output stride it maps to (0 on reduced axes)
    int64_t count = 1;        // elements per output element
  };
  Plan plan(std::span<const Tensor> inputs, const Shape& xs) const {
    std::vector<int64_t> axes = axes_;
    if (axes_from_input_ && inputs.size() > 1 && !inputs[1].empty()) axes = to_ints(inputs[1]);
    Plan p;
    const int64_t rank = static_cast<int64_t>(xs.size());
    if (axes.empty() && noop_with_empty_axes_) {
      p.identity = true;
      return p;
    }
    std::vector<bool> reduced(xs.size(), axes.empty());
    for (int64_t a : axes) reduced[static_cast<size_t>(normalize_axis(a, rank, where_))] = true;
    Shape kept;
    for (size_t d = 0; d < xs.size(); ++d) {
      kept.push_back(reduced[d] ? 1 : xs[d]);
      if (reduced[d]) p.count *= xs[d];
      if (!reduced[d] || keep_dims_) p.out.push_back(reduced[d] ? 1 : xs[d]);
    }
    p.to = strides_of(kept);
    for (size_t d = 0; d < xs.size(); ++d)
      if (reduced[d]) p.to[d] = 0;
    return p;
  }
  std::string where_, type_;
  Reduction kind_;
  bool axes_from_input_, keep_dims_, noop_with_empty_axes_;
  std::vector<int64_t> axes_;
};

// Sum, Mean, Max, Min of any number of inputs with numpy broadcasting.
class VariadicOp : public Op {
 public:
  explicit VariadicOp(const OpSpec& spec) : where_(spec.where()), type_(spec.op_type) {
    static const std::map<std::string, Reduction> kinds{
        {"Sum", Reduction::sum}, {"Mean", Reduction::mean}, {"Max", Reduction::max}, {"Min", Reduction::min}};
    kind_ = kinds.at(type_);
  }
  std::string_view type() const override { return type_; }
  OpRole role(std::span<const bool> varying) const override {
    if (kind_ == Reduction::sum || kind_ == Reduction::mean) return OpRole::proportional;
    // The maximum of one varying tensor and fixed ones is a rectifier (max(x, 0) is Relu).
    return std::count(varying.begin(), varying.end(), true) > 1 ? OpRole::max_selection
                                                                : OpRole::monotone_activation;
  }
  std::vector<Tensor> forward(std::span<const Tensor> inputs) const override {
    expect_inputs(inputs, 1, std::numeric_limits<size_t>::max(), where_);
    for (const Tensor& t : inputs)
      if (t.empty()) throw Error(where_ + ": an input is missing");
    Tensor y = inputs[0];
    for (size_t i = 1; i < inputs.size(); ++i) {
      switch (kind_) {
        case Reduction::sum:
        case Reduction::mean:
          y = broadcast_binary(y, inputs[i], where_, std::plus<float>());
          break;
        case Reduction::max:
          y = broadcast_binary(y, inputs[i], where_,
                               [](float a, float b) { return std::isnan(a) || a >= b ? a : b; });
          break;
        default:
          y = broadcast_binary(y, inputs[i], where_,
                               [](float a, float b) { return std::isnan(a) || a <= b ? a : b; });
          break;
      }
    }
    if (kind_ == Reduction::mean) {
      const float scale = 1.0f / static_cast<float>(inputs.size());
      y = map_unary(y, [scale](float v) { return v * scale; });
    }
    return {y};
  }
  // Sum and Mean pass ȳ (÷ count) to every input; Max and Min to the first input holding the extreme.
  std::vector<Tensor> vjp(const VjpArgs& args) const override {
    std::vector<Tensor> grads(args.inputs.size());
    const Tensor& g = args.grad_outputs[0];
    if (g.empty()) return grads;
    if (kind_ == Reduction::sum || kind_ == Reduction::mean) {
      const float scale = kind_ == Reduction::mean ? 1.0f / static_cast<float>(args.inputs.size()) : 1.0f;
      const Tensor share = map_unary(g, [scale](float v) { return v * scale; });
      for (size_t i = 0; i < grads.size(); ++i)
        if (args.wanted[i]) grads[i] = reduce_to_shape(share, args.input_shapes[i], where_);
      return grads;
    }
    const Tensor& y = args.outputs[0];
    Tensor remaining = g;  // what no earlier input has taken
    for (size_t i = 0; i < grads.size(); ++i) {
      const Tensor hit =
          broadcast_binary(args.inputs[i], y, where_, [](float x, float m) { return x == m ? 1.0f : 0.0f; });
      const Tensor taken = zip(remaining, hit, [](float r, float h) { return h != 0.0f ? r : 0.0f; });
      if (args.wanted[i]) grads[i] = reduce_to_shape(taken, args.input_shapes[i], where_);
      remaining = zip(remaining, hit, [](float r, float h) { return h != 0.0f ? 0.0f : r; });
    }
    return grads;
  }
  VjpReads vjp_reads(size_t n, size_t) const override {
    const bool selects = kind_ == Reduction::max || kind_ == Reduction::min;
    return {std::vector<bool>(n, selects), {selects}};
  }

 private:
  std::string where_, type_;
  Reduction kind_;
};

}  // namespace

std::unique_ptr<Op> make_reduce(const OpSpec& spec) {
  return std::make_unique<ReduceOp>(spec);
}
std::unique_ptr<Op> make_variadic(const OpSpec& spec) {
  return std::make_unique<VariadicOp>(spec);
}

}  // namespace sieve::ops
