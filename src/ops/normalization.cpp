// LayerNormalization and InstanceNormalization: each group of elements is centred and divided by its
// standard deviation, then scaled and shifted per element (LayerNorm) or per channel (InstanceNorm).
// Means and variances accumulate in double.

#include <cmath>

#include "ops/common.hpp"
#include "ops/elementwise_kernels.hpp"
#include "ops/factories.hpp"

namespace sieve::ops {
namespace {

// x̂ = (x − μ)·r per group of `length` consecutive elements, r = 1/√(σ² + ε) with the biased variance.
struct Normalized {
  Tensor x_hat;
  std::vector<float> mean, inverse_std;
};

Normalized normalize_groups(const Tensor& x, int64_t groups, int64_t length, float epsilon) {
  Normalized n{Tensor::uninitialized(x.shape()), std::vector<float>(static_cast<size_t>(groups)),
               std::vector<float>(static_cast<size_t>(groups))};
#pragma omp parallel for if (x.size() > kParallelThreshold)
  for (int64_t g = 0; g < groups; ++g) {
    const float* px = x.data() + g * length;
    double sum = 0.0;
    for (int64_t k = 0; k < length; ++k) sum += px[k];
    const double mean = length > 0 ? sum / static_cast<double>(length) : 0.0;
    double squares = 0.0;
    for (int64_t k = 0; k < length; ++k) squares += (px[k] - mean) * (px[k] - mean);
    const double variance = length > 0 ? squares / static_cast<double>(length) : 0.0;
    const double r = 1.0 / std::sqrt(variance + static_cast<double>(epsilon));
    float* ph = n.x_hat.data() + g * length;
    for (int64_t k = 0; k < length; ++k) ph[k] = static_cast<float>((px[k] - mean) * r);
    n.mean[static_cast<size_t>(g)] = static_cast<float>(mean);
    n.inverse_std[static_cast<size_t>(g)] = static_cast<float>(r);
  }
  return n;
}

// x̄ = r·(ḡ − mean(ḡ) − x̂·mean(ḡ ⊙ x̂)) per group, where ḡ = ȳ ⊙ γ is the gradient at x̂.
Tensor normalization_input_gradient(const Normalized& n, const Tensor& grad_x_hat, int64_t groups,
                                    int64_t length) {
  Tensor gx = Tensor::uninitialized(grad_x_hat.shape());
#pragma omp parallel for if (gx.size() > kParallelThreshold)
  for (int64_t g = 0; g < groups; ++g) {
    const float* pg = grad_x_hat.data() + g * length;
    const float* ph = n.x_hat.data() + g * length;
    double sum = 0.0, dot = 0.0;
    for (int64_t k = 0; k < length; ++k) {
      sum += pg[k];
      dot += static_cast<double>(pg[k]) * ph[k];
    }
    const double mean_g = sum / static_cast<double>(length), mean_gh = dot / static_cast<double>(length);
    const double r = n.inverse_std[static_cast<size_t>(g)];
    float* px = gx.data() + g * length;
    for (int64_t k = 0; k < length; ++k) px[k] = static_cast<float>(r * (pg[k] - mean_g - ph[k] * mean_gh));
  }
  return gx;
}

// x̄ = r·(ḡ − mean(ḡ)) per group: the input gradient with r = 1/σ held at its forward value, so only
// the centring is differentiated (the LN rule of relevance, Ali et al. 2022).
Tensor centred_input_gradient(const Normalized& n, const Tensor& grad_x_hat, int64_t groups, int64_t length) {
  Tensor gx = Tensor::uninitialized(grad_x_hat.shape());
#pragma omp parallel for if (gx.size() > kParallelThreshold)
  for (int64_t g = 0; g < groups; ++g) {
    const float* pg = grad_x_hat.data() + g * length;
    double sum = 0.0;
    for (int64_t k = 0; k < length; ++k) sum += pg[k];
    const double mean_g = sum / static_cast<double>(length), r = n.inverse_std[static_cast<size_t>(g)];
    float* px = gx.data() + g * length;
    for (int64_t k = 0; k < length; ++k) px[k] = static_cast<float>(r * (pg[k] - mean_g));
  }
  return gx;
}

// LayerNormalization (opset 17): normalizes over the axes from `axis` on; Scale and B broadcast to those
// axes. The optional outputs Mean and InvStdDev have the normalized axes kept as 1.
class LayerNormalizationOp : public Op {
 public:
  explicit LayerNormalizationOp(const OpSpec& spec)
      : where_(spec.where()),
        axis_(spec.attributes.get_int("axis", -1)),
        epsilon_(spec.attributes.get_float("epsilon", 1e-5f)),
        outputs_(spec.num_outputs) {
    if (spec.attributes.get_int("stash_type", 1) != 1)
      spec.fail("stash_type other than float is not supported");
  }
  std::string_view type() const override { return "LayerNormalization"; }
  OpRole role(std::span<const bool>) const override { return OpRole::normalization; }
  std::vector<Tensor> forward(std::span<const Tensor> inputs) const override {
    expect_inputs(inputs, 2, 3, where_);
    const Tensor& x = inputs[0];
    const Layout l = layout(x.shape());
    const Normalized n = normalize_groups(x, l.groups, l.length, epsilon_);
    const Tensor scale = expanded(inputs[1], l.normalized, "Scale");
    const Tensor& b = optional_input(inputs, 2);
    const Tensor bias = b.empty() ? Tensor(l.normalized) : expanded(b, l.normalized, "B");
    Tensor y = Tensor::uninitialized(x.shape());
    for (int64_t g = 0; g < l.groups; ++g)
      for (int64_t k = 0; k < l.length; ++k)
        y[g * l.length + k] = n.x_hat[g * l.length + k] * scale[k] + bias[k];
    std::vector<Tensor> out{y};
    if (outputs_ > 1) {
      Shape stats = x.shape();
      for (size_t d = static_cast<size_t>(l.axis); d < stats.size(); ++d) stats[d] = 1;
      out.emplace_back(stats, n.mean);
      if (outputs_ > 2) out.emplace_back(stats, n.inverse_std);
    }
    return out;
  }
  std::vector<Tensor> vjp(const VjpArgs& a) const override {
    std::vector<Tensor> grads(a.inputs.size());
    const Tensor& gy = a.grad_outputs[0];
    for (size_t k = 1; k < a.grad_outputs.size(); ++k)
      if (!a.grad_outputs[k].empty())
        throw Error(where_ + ": gradients through the Mean and InvStdDev outputs are not supported");
    if (gy.empty()) return grads;
    const Tensor& x = a.inputs[0];
    const Layout l = layout(x.shape());
    const Normalized n = normalize_groups(x, l.groups, l.length, epsilon_);
    if (a.wanted[0]) grads[0] = normalization_input_gradient(n, gradient_at_x_hat(a, l), l.groups, l.length);
    if (a.wanted[1]) {
      const Tensor products = zip(gy, n.x_hat, std::multiplies<float>());
      grads[1] = reduce_to_shape(products, a.input_shapes[1], where_);
    }
    if (a.wanted.size() > 2 && a.wanted[2]) grads[2] = reduce_to_shape(gy, a.input_shapes[2], where_);
    return grads;
  }
  std::vector<Tensor> vjp_fixed_divisor(const VjpArgs& a) const override {
    std::vector<Tensor> grads(a.inputs.size());
    if (a.grad_outputs[0].empty() || !a.wanted[0]) return grads;
    const Layout l = layout(a.inputs[0].shape());
    const Normalized n = normalize_groups(a.inputs[0], l.groups, l.length, epsilon_);
    grads[0] = centred_input_gradient(n, gradient_at_x_hat(a, l), l.groups, l.length);
    return grads;
  }
  VjpReads vjp_reads(size_t n, size_t m) const override {
    std::vector<bool> reads(n, true);
    if (n > 2) reads[2] = false;
    return {reads, std::vector<bool>(m, false)};
  }

 private:
  struct Layout {
    int64_t axis, groups, length;
    Shape normalized;
  };
  // ḡ = ȳ ⊙ γ, the gradient arriving at x̂.
  Tensor gradient_at_x_hat(const VjpArgs& a, const Layout& l) const {
    const Tensor scale = expanded(a.inputs[1], l.normalized, "Scale");
    const Tensor& gy = a.grad_outputs[0];
    Tensor gh = Tensor::uninitialized(gy.shape());
    for (int64_t i = 0; i < gy.size(); ++i) gh[i] = gy[i] * scale[i % l.length];
    return gh;
  }
  Layout layout(const Shape& s) const {
    Layout l{normalize_axis(axis_, static_cast<int64_t>(s.size()), where_), 1, 1, {}};
    for (size_t d = 0; d < s.size(); ++d) {
      if (static_cast<int64_t>(d) < l.axis) {
        l.groups *= s[d];
      } else {
        l.length *= s[d];
        l.normalized.push_back(s[d]);
      }
    }
    return l;
  }
  // A parameter broadcast to the normalized axes.
  Tensor expanded(const Tensor& p, const Shape& normalized, const char* name) const {
    const Tensor e = broadcast_binary(Tensor(normalized), p, where_, [](float, float v) { return v; });
    if (e.shape() != normalized)
      throw Error(where_ + ": " + name + " of shape " + to_string(p.shape()) +
                  " does not broadcast to the normalized axes " + to_string(normalized));
    return e;
  }
  std::string where_;
  int64_t axis_;
  float epsilon_;
  size_t outputs_;
};

// InstanceNormalization: X [N, C, ...] normalized over the spatial axes of each sample and channel, then
// scale[c]·x̂ + B[c].
class InstanceNormalizationOp : public Op {
 public:
  explicit InstanceNormalizationOp(const OpSpec& spec)
      : where_(spec.where()), epsilon_(spec.attributes.get_float("epsilon", 1e-5f)) {}
  std::string_view type() const override { return "InstanceNormalization"; }
  OpRole role(std::span<const bool>) const override { return OpRole::normalization; }
  std::vector<Tensor> forward(std::span<const Tensor> inputs) const override {
    expect_inputs(inputs, 3, 3, where_);
    const Tensor& x = inputs[0];
    const Layout l = layout(x.shape(), inputs[1].shape(), inputs[2].shape());
    const Normalized n = normalize_groups(x, l.groups, l.length, epsilon_);
    Tensor y = Tensor::uninitialized(x.shape());
    const Tensor &scale = inputs[1], &bias = inputs[2];
    for (int64_t g = 0; g < l.groups; ++g) {
      const int64_t c = g % l.channels;
      for (int64_t k = 0; k < l.length; ++k)
        y[g * l.length + k] = n.x_hat[g * l.length + k] * scale[c] + bias[c];
    }
    return {y};
  }
  std::vector<Tensor> vjp(const VjpArgs& a) const override {
    std::vector<Tensor> grads(3);
    const Tensor& gy = a.grad_outputs[0];
    if (gy.empty()) return grads;
    const Tensor& x = a.inputs[0];
    const Layout l = layout(x.shape(), a.input_shapes[1], a.input_shapes[2]);
    const Normalized n = normalize_groups(x, l.groups, l.length, epsilon_);
    if (a.wanted[0]) grads[0] = normalization_input_gradient(n, gradient_at_x_hat(a, l), l.groups, l.length);
    if (a.wanted[1] || a.wanted[2]) {
      std::vector<double> gs(static_cast<size_t>(l.channels), 0.0), gb(static_cast<size_t>(l.channels), 0.0);
      for (int64_t g = 0; g < l.groups; ++g) {
        const size_t c = static_cast<size_t>(g % l.channels);
        for (int64_t k = 0; k < l.length; ++k) {
          gs[c] += static_cast<double>(gy[g * l.length + k]) * n.x_hat[g * l.length + k];
          gb[c] += gy[g * l.length + k];
        }
      }
      auto as_tensor = [&](const std::vector<double>& v) {
        Tensor t = Tensor::uninitialized({l.channels});
        for (int64_t c = 0; c < l.channels; ++c) t[c] = static_cast<float>(v[static_cast<size_t>(c)]);
        return t;
      };
      if (a.wanted[1]) grads[1] = as_tensor(gs);
      if (a.wanted[2]) grads[2] = as_tensor(gb);
    }
    return grads;
  }
  std::vector<Tensor> vjp_fixed_divisor(const VjpArgs& a) const override {
    std::vector<Tensor> grads(3);
    if (a.grad_outputs[0].empty() || !a.wanted[0]) return grads;
    const Layout l = layout(a.inputs[0].shape(), a.input_shapes[1], a.input_shapes[2]);
    const Normalized n = normalize_groups(a.inputs[0], l.groups, l.length, epsilon_);
    grads[0] = centred_input_gradient(n, gradient_at_x_hat(a, l), l.groups, l.length);
    return grads;
  }
  VjpReads vjp_reads(size_t, size_t) const override { return {{true, true, false}, {false}}; }

 private:
  struct Layout {
    int64_t groups, length, channels;
  };
  // ḡ = ȳ ⊙ scale[c], the gradient arriving at x̂.
  static Tensor gradient_at_x_hat(const VjpArgs& a, const Layout& l) {
    const Tensor& gy = a.grad_outputs[0];
    Tensor gh = Tensor::uninitialized(gy.shape());
    for (int64_t g = 0; g < l.groups; ++g)
      for (int64_t k = 0; k < l.length; ++k)
        gh[g * l.length + k] = gy[g * l.length + k] * a.inputs[1][g % l.channels];
    return gh;
  }
  Layout layout(const Shape& s, const Shape& scale, const Shape& bias) const {
    if (s.size() < 3) throw Error(where_ + ": input of shape " + to_string(s) + " has no spatial axes");
    const int64_t channels = s[1];
    if (scale != Shape{channels} || bias != Shape{channels})
      throw Error(where_ + ": scale " + to_string(scale) + " and B " + to_string(bias) + " must be [" +
                  std::to_string(channels) + "]");
    int64_t length = 1;
    for (size_t d = 2; d < s.size(); ++d) length *= s[d];
    return {s[0] * channels, length, channels};
  }
  std::string where_;
  float epsilon_;
};

}  // namespace

std::unique_ptr<Op> make_layer_normalization(const OpSpec& spec) {
  return std::make_unique<LayerNormalizationOp>(spec);
}
std::unique_ptr<Op> make_instance_normalization(const OpSpec& spec) {
  return std::make_unique<InstanceNormalizationOp>(spec);
}

}  // namespace sieve::ops
