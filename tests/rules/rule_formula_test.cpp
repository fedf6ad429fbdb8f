// Every LRP rule of the generic linear mapping (rules::apply_linear_rule with rules::modify_parameters)
// against the rule's per-neuron formula, written out with explicit loops over output neurons k and the
// inputs j they read (for Conv: over output positions and kernel taps), in double precision, from
// METHODS.md §1 and the conventions of tests/data/shared/README.md ("Biases (Zennit defaults)"):
//   stabilize(z) = z + ε·sign(z), sign(0) = +1; ε is the rule's epsilon for z/ε, 1e-6 for all others.
//   z / ε:   z_k = Σ_j a_j w_jk + b_k,  R_j = Σ_k a_j w_jk / stab(z_k) · R_k
//            (epsilon_mode=std: ε = epsilon × the population std of the sample's z)
//   γ:       positive branch for true z_k > 0, negative branch for z_k < 0, nothing for z_k = 0
//   α/β:     R_j = Σ_k α (a_j w_jk)⁺ / stab(Σ(a w)⁺ + b⁺) R_k − β (a_j w_jk)⁻ / stab(Σ(a w)⁻ + b⁻) R_k
//   z⁺:      α = 1, β = 0
//   z^B:     (a_j w_jk − l_j w⁺_jk − h_j w⁻_jk) / Σ_j(…) (biases cancel; padded taps contribute 0)
//   w²:      w²_jk / (Σ_j w²_jk + b_k²)          flat: 1 / (number of taps of k)  (bias zeroed)
//   ignore_bias=1: every bias term is dropped.

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <random>

#include "rules/linear_rule.hpp"
#include "sieve/error.hpp"
#include "sieve/lrp.hpp"
#include "sieve/op.hpp"
#include "sieve/op_spec.hpp"
#include "support/op_specs.hpp"
#include "support/rounding.hpp"

namespace sieve {
namespace {

// ------------------------------------------------------------------------------------------------
// The layers, as explicit lists of connections (output neuron k, input j, weight index w) per sample.

struct Link {
  int64_t k, j, w;
};

struct Layer {
  std::string label;
  OpSpec spec;
  Tensor x, weight, bias;  // x: [N, ...]; bias [out channels]
  int64_t in_per = 0, out_per = 0;
  std::vector<Link> links;       // within one sample
  std::vector<int64_t> bias_of;  // per output element of a sample: index into bias
};

Tensor normal_tensor(const Shape& shape, std::mt19937& rng) {
  Tensor t = Tensor::uninitialized(shape);
  std::normal_distribution<float> normal;
  for (float& v : t.values()) v = normal(rng);
  return t;
}

Layer gemm_layer(const std::string& label, bool trans_b, int64_t m, int64_t kdim, int64_t n,
                 std::mt19937& rng) {
  Layer l;
  l.label = label;
  l.spec = op_spec("Gemm", 3);
  l.spec.attributes.set("transB", int64_t{trans_b ? 1 : 0});
  l.x = normal_tensor({m, kdim}, rng);
  l.weight = normal_tensor(trans_b ? Shape{n, kdim} : Shape{kdim, n}, rng);
  l.bias = normal_tensor({n}, rng);
  l.in_per = kdim;
  l.out_per = n;
  for (int64_t k = 0; k < n; ++k) {
    l.bias_of.push_back(k);
    for (int64_t j = 0; j < kdim; ++j) l.links.push_back({k, j, trans_b ? k * kdim + j : j * n + k});
  }
  return l;
}

struct ConvGeometry {
  std::string label;
  Shape x, w;  // [N, C, (H,) W], [M, C/group, (KH,) KW]
  std::vector<int64_t> strides, pads, dilations;
  int64_t group;
};

// 1-D convolutions are enumerated as 2-D ones of height 1.
Layer conv_layer(const ConvGeometry& g, std::mt19937& rng) {
  Layer l;
  l.label = g.label;
  l.spec = op_spec("Conv", 3);
  l.spec.attributes.set("strides", g.strides);
  l.spec.attributes.set("pads", g.pads);
  l.spec.attributes.set("dilations", g.dilations);
  l.spec.attributes.set("group", g.group);
  l.x = normal_tensor(g.x, rng);
  l.weight = normal_tensor(g.w, rng);
  l.bias = normal_tensor({g.w[0]}, rng);
  const bool one_d = g.x.size() == 3;
  const int64_t channels = g.x[1], height = one_d ? 1 : g.x[2], width = g.x.back();
  const int64_t maps = g.w[0], per_group = g.w[1], kh = one_d ? 1 : g.w[2], kw = g.w.back();
  const int64_t sh = one_d ? 1 : g.strides[0], sw = g.strides.back();
  const int64_t dh = one_d ? 1 : g.dilations[0], dw = g.dilations.back();
  const int64_t top = one_d ? 0 : g.pads[0], left = one_d ? g.pads[0] : g.pads[1];
  const int64_t bottom = one_d ? 0 : g.pads[2], right = one_d ? g.pads[1] : g.pads[3];
  const int64_t oh = (height + top + bottom - dh * (kh - 1) - 1) / sh + 1;
  const int64_t ow = (width + left + right - dw * (kw - 1) - 1) / sw + 1;
  const int64_t maps_per_group = maps / g.group;
  l.in_per = channels * height * width;
  l.out_per = maps * oh * ow;
  for (int64_t m = 0; m < maps; ++m) {
    const int64_t group = m / maps_per_group;
    for (int64_t y = 0; y < oh; ++y) {
      for (int64_t x = 0; x < ow; ++x) {
        const int64_t k = (m * oh + y) * ow + x;
        l.bias_of.push_back(m);
        for (int64_t cl = 0; cl < per_group; ++cl) {
          const int64_t c = group * per_group + cl;
          for (int64_t ty = 0; ty < kh; ++ty) {
            for (int64_t tx = 0; tx < kw; ++tx) {
              const int64_t iy = y * sh - top + ty * dh, ix = x * sw - left + tx * dw;
              if (iy < 0 || iy >= height || ix < 0 || ix >= width) continue;  // padding: no term
              l.links.push_back(
                  {k, (c * height + iy) * width + ix, ((m * per_group + cl) * kh + ty) * kw + tx});
            }
          }
        }
      }
    }
  }
  return l;
}

// Gemm where output 0 has z = 0 exactly with non-zero terms (w = +½, −½ on two equal inputs, bias 0),
// output 1 has all-zero weights and bias, and one input is exactly 0.
Layer degenerate_gemm(std::mt19937& rng) {
  Layer l = gemm_layer("gemm_zero_z", false, 3, 6, 4, rng);
  const int64_t n = 4;
  for (int64_t j = 0; j < 6; ++j) {
    l.weight[j * n + 0] = 0.0f;
    l.weight[j * n + 1] = 0.0f;
  }
  l.weight[0 * n + 0] = 0.5f;
  l.weight[1 * n + 0] = -0.5f;
  l.bias[0] = 0.0f;
  l.bias[1] = 0.0f;
  for (int64_t s = 0; s < 3; ++s) {
    l.x[s * 6 + 1] = l.x[s * 6 + 0];
    l.x[s * 6 + 5] = 0.0f;
  }
  return l;
}

std::vector<Layer> layers() {
  std::mt19937 rng(2024);
  std::vector<Layer> v;
  v.push_back(gemm_layer("gemm_transB0", false, 3, 7, 5, rng));
  v.push_back(gemm_layer("gemm_transB1", true, 3, 7, 5, rng));
  v.push_back(degenerate_gemm(rng));
  const std::vector<ConvGeometry> convs{
      {"conv2d_pad", {2, 3, 6, 5}, {4, 3, 3, 3}, {1, 1}, {1, 1, 1, 1}, {1, 1}, 1},
      {"conv2d_stride_asymmetric_pad", {2, 2, 7, 6}, {3, 2, 3, 2}, {2, 3}, {1, 0, 2, 1}, {1, 1}, 1},
      {"conv2d_dilation", {1, 2, 8, 7}, {3, 2, 3, 3}, {1, 2}, {2, 1, 2, 2}, {2, 3}, 1},
      {"conv2d_groups", {2, 4, 5, 5}, {6, 2, 3, 3}, {1, 1}, {1, 1, 1, 1}, {1, 1}, 2},
      {"conv2d_depthwise_stride", {1, 3, 6, 6}, {3, 1, 3, 3}, {2, 2}, {1, 1, 1, 1}, {1, 1}, 3},
      {"conv1d", {2, 3, 11}, {4, 3, 3}, {2}, {1, 2}, {2}, 1},
  };
  for (const ConvGeometry& g : convs) v.push_back(conv_layer(g, rng));
  return v;
}

// ------------------------------------------------------------------------------------------------
// The naive reference.

struct NaiveRule {
  enum class Kind { z, epsilon, gamma, alpha_beta, z_box, w_square, flat } kind;
  double epsilon = 1e-6;  // z rule and every non-ε rule: the stabilizer 1e-6
  bool std_mode = false;
  double gamma = 0.0, alpha = 1.0, beta = 0.0;
  bool ignore_bias = false;
};

double pos(double v) {
  return v > 0.0 ? v : 0.0;
}
double neg(double v) {
  return v < 0.0 ? v : 0.0;
}
double stab(double z, double eps) {
  return z + (z >= 0.0 ? eps : -eps);
}

struct Reference {
  std::vector<double> r;      // relevance at the input, [N, in_per]
  std::vector<double> slack;  // per element: a bound on float32 rounding (ill-conditioned denominators)
};

// One "term family": every output neuron k with open(k) sends λ · num(j,k) / stab(Σ_j num(j,k) + bias(k))
// · R_k to every input j it reads.
struct Term {
  double lambda;
  std::function<double(double a, double w, double low, double high)> num;
  std::function<double(double b)> bias;
  std::function<bool(double true_z)> open;
};

Reference naive(const Layer& l, const NaiveRule& rule, const Tensor& relevance, const Tensor& low,
                const Tensor& high) {
  const int64_t n = l.x.dim(0);
  Reference ref{std::vector<double>(static_cast<size_t>(n * l.in_per), 0.0),
                std::vector<double>(static_cast<size_t>(n * l.in_per), 0.0)};
  const bool use_bias = !rule.ignore_bias;
  const auto always = [](double) { return true; };
  const auto no_bias = [](double) { return 0.0; };
  std::vector<Term> terms;
  switch (rule.kind) {
    case NaiveRule::Kind::z:
    case NaiveRule::Kind::epsilon:
      terms.push_back({1.0, [](double a, double w, double, double) { return a * w; },
                       [use_bias](double b) { return use_bias ? b : 0.0; }, always});
      break;
    case NaiveRule::Kind::gamma: {
      const double g = rule.gamma;
      // Positive branch (W+γW⁺)a⁺ + (W+γW⁻)a⁻ + (b+γb⁺) where the true z > 0; negative branch
      // (W+γW⁻)a⁺ + (W+γW⁺)a⁻ + (b+γb⁻) where it is < 0.
      terms.push_back({1.0,
                       [g](double a, double w, double, double) {
                         return pos(a) * (w + g * pos(w)) + neg(a) * (w + g * neg(w));
                       },
                       [g, use_bias](double b) { return use_bias ? b + g * pos(b) : 0.0; },
                       [](double z) { return z > 0.0; }});
      terms.push_back({1.0,
                       [g](double a, double w, double, double) {
                         return pos(a) * (w + g * neg(w)) + neg(a) * (w + g * pos(w));
                       },
                       [g, use_bias](double b) { return use_bias ? b + g * neg(b) : 0.0; },
                       [](double z) { return z < 0.0; }});
      break;
    }
    case NaiveRule::Kind::alpha_beta:
      terms.push_back({rule.alpha, [](double a, double w, double, double) { return pos(a * w); },
                       [use_bias](double b) { return use_bias ? pos(b) : 0.0; }, always});
      if (rule.beta != 0.0)
        terms.push_back({-rule.beta, [](double a, double w, double, double) { return neg(a * w); },
                         [use_bias](double b) { return use_bias ? neg(b) : 0.0; }, always});
      break;
    case NaiveRule::Kind::z_box:
      terms.push_back(
          {1.0, [](double a, double w, double lo, double hi) { return a * w - lo * pos(w) - hi * neg(w); },
           no_bias, always});
      break;
    case NaiveRule::Kind::w_square:
      terms.push_back({1.0, [](double, double w, double, double) { return w * w; },
                       [use_bias](double b) { return use_bias ? b * b : 0.0; }, always});
      break;
    case NaiveRule::Kind::flat:
      terms.push_back({1.0, [](double, double, double, double) { return 1.0; }, no_bias, always});
      break;
  }

  for (int64_t s = 0; s < n; ++s) {
    const float* a = l.x.data() + s * l.in_per;
    const float* lo = low.empty() ? nullptr : low.data() + s * l.in_per;
    const float* hi = high.empty() ? nullptr : high.data() + s * l.in_per;
    const float* r_out = relevance.data() + s * l.out_per;
    // The true z (with the bias) selects the γ branch.
    std::vector<double> true_z(static_cast<size_t>(l.out_per), 0.0);
    for (int64_t k = 0; k < l.out_per; ++k) true_z[k] = l.bias[l.bias_of[k]];
    for (const Link& c : l.links) true_z[c.k] += static_cast<double>(a[c.j]) * l.weight[c.w];
    for (const Term& t : terms) {
      std::vector<double> z(static_cast<size_t>(l.out_per), 0.0), magnitude(z.size(), 0.0);
      for (int64_t k = 0; k < l.out_per; ++k) {
        z[k] = t.bias(l.bias[l.bias_of[k]]);
        magnitude[k] = std::abs(z[k]);
      }
      for (const Link& c : l.links) {
        const double v = t.num(a[c.j], l.weight[c.w], lo ? lo[c.j] : 0.0, hi ? hi[c.j] : 0.0);
        z[c.k] += v;
        magnitude[c.k] += std::abs(v);
      }
      double eps = rule.epsilon;
      if (rule.std_mode) {
        double mean = 0.0, var = 0.0;
        for (double v : z) mean += v;
        mean /= static_cast<double>(z.size());
        for (double v : z) var += (v - mean) * (v - mean);
        eps = rule.epsilon * std::sqrt(var / static_cast<double>(z.size()));
      }
      for (const Link& c : l.links) {
        if (!t.open(true_z[c.k])) continue;
        const double v = t.num(a[c.j], l.weight[c.w], lo ? lo[c.j] : 0.0, hi ? hi[c.j] : 0.0);
        const double d = stab(z[c.k], eps);
        const double contribution = t.lambda * v / d * r_out[c.k];
        ref.r[s * l.in_per + c.j] += contribution;
        // float32 evaluates z as dot products of at most in_per terms (three of them for z^B), off by
        // γ ≈ (3·in_per + 2)·u of the terms' magnitude, which the quotient carries into the contribution;
        // the product, the quotient and the float32 sum over at most out_per neurons k add (out_per + 3)·u.
        const double u = kFloat32UnitRoundoff;
        ref.slack[s * l.in_per + c.j] +=
            std::abs(contribution) *
            (u * (3.0 * static_cast<double>(l.in_per) + 2.0) * (magnitude[c.k] + eps) / std::abs(d) +
             u * (static_cast<double>(l.out_per) + 3.0));
      }
    }
  }
  return ref;
}

// ------------------------------------------------------------------------------------------------

struct RuleCase {
  std::string text;
  NaiveRule naive;
};

std::vector<RuleCase> rule_cases() {
  using K = NaiveRule::Kind;
  auto rule = [](K kind) {
    NaiveRule r{kind};
    return r;
  };
  auto eps = [&](double e, bool std_mode, bool ignore) {
    NaiveRule r = rule(K::epsilon);
    r.epsilon = e;
    r.std_mode = std_mode;
    r.ignore_bias = ignore;
    return r;
  };
  auto gamma = [&](double g, bool ignore) {
    NaiveRule r = rule(K::gamma);
    r.gamma = g;
    r.ignore_bias = ignore;
    return r;
  };
  auto ab = [&](double a, double b, bool ignore) {
    NaiveRule r = rule(K::alpha_beta);
    r.alpha = a;
    r.beta = b;
    r.ignore_bias = ignore;
    return r;
  };
  auto ignoring = [&](K kind) {
    NaiveRule r = rule(kind);
    r.ignore_bias = true;
    return r;
  };
  return {
      {"z", rule(K::z)},
      {"z:ignore_bias=1", ignoring(K::z)},
      {"epsilon:epsilon=0.5", eps(0.5, false, false)},
      {"epsilon", eps(0.25, false, false)},
      {"epsilon:epsilon=0.1,ignore_bias=1", eps(0.1, false, true)},
      {"epsilon:epsilon=0.25,epsilon_mode=std", eps(0.25, true, false)},
      {"epsilon:epsilon=0.5,epsilon_mode=std,ignore_bias=1", eps(0.5, true, true)},
      {"gamma:gamma=0.25", gamma(0.25, false)},
      {"gamma:gamma=2", gamma(2.0, false)},
      {"gamma:gamma=0.5,ignore_bias=1", gamma(0.5, true)},
      {"alpha_beta", ab(2.0, 1.0, false)},
      {"alpha_beta:alpha=2,beta=1,ignore_bias=1", ab(2.0, 1.0, true)},
      {"alpha_beta:alpha=1.5,beta=0.5", ab(1.5, 0.5, false)},
      {"z_plus", ab(1.0, 0.0, false)},
      {"z_plus:ignore_bias=1", ab(1.0, 0.0, true)},
      {"z_box", rule(K::z_box)},
      {"z_box:ignore_bias=1", ignoring(K::z_box)},
      {"w_square", rule(K::w_square)},
      {"w_square:ignore_bias=1", ignoring(K::w_square)},
      {"flat", rule(K::flat)},
      {"flat:ignore_bias=1", ignoring(K::flat)},
  };
}

// z^B bounds around the input: per element l ≤ a ≤ h (so the z^B terms are all ≥ 0), with margins drawn
// at random so that l and h differ from a and from each other everywhere.
void draw_bounds(const Tensor& x, std::mt19937& rng, Tensor& low, Tensor& high) {
  std::uniform_real_distribution<float> margin(0.05f, 1.5f);
  low = Tensor::uninitialized(x.shape());
  high = Tensor::uninitialized(x.shape());
  for (int64_t i = 0; i < x.size(); ++i) {
    low[i] = x[i] - margin(rng);
    high[i] = x[i] + margin(rng);
  }
}

TEST(RuleFormula, GenericMappingMatchesPerNeuronFormula) {
  std::mt19937 rng(7);
  int checked = 0;
  for (const Layer& l : layers()) {
    const auto op = create_op(l.spec);
    const LinearOp* linear = op->as_linear();
    ASSERT_NE(linear, nullptr) << l.label;
    const std::vector<Tensor> inputs{l.x, l.weight, l.bias};
    const Tensor output = op->forward(inputs)[0];
    ASSERT_EQ(output.size(), l.x.dim(0) * l.out_per) << l.label;
    const Tensor relevance = normal_tensor(output.shape(), rng);
    Tensor low, high;
    draw_bounds(l.x, rng, low, high);
    for (const RuleCase& rc : rule_cases()) {
      const LinearRule rule = parse_rule(rc.text);
      const bool box = rc.naive.kind == NaiveRule::Kind::z_box;
      const Tensor none;
      const Reference ref = naive(l, rc.naive, relevance, box ? low : none, box ? high : none);
      double max_ref = 0.0;
      for (double v : ref.r) max_ref = std::max(max_ref, std::abs(v));
      ASSERT_GT(max_ref, 0.0) << l.label << " " << rc.text;
      const rules::ModifiedParameters params = rules::modify_parameters(rule, l.weight, l.bias);
      // Once with the forward output given (as in a reverse pass), once without (the rule computes z).
      for (const bool with_output : {true, false}) {
        SCOPED_TRACE(l.label + " " + rc.text + (with_output ? " (output given)" : " (no output)"));
        const rules::LinearRuleInputs in{
            *linear,          l.x, l.weight, l.bias, with_output ? output : none, relevance, box ? low : none,
            box ? high : none};
        const Tensor r = rules::apply_linear_rule(rule, params, in);
        ASSERT_EQ(r.shape(), l.x.shape());
        // Each element within its float32 rounding (ref.slack) plus 1e-4 of the largest |R|, far above
        // the (in_per + out_per)·u ≤ 1.3e-5 of unamplified O(1) terms.
        double worst = 0.0;
        int64_t worst_at = -1;
        for (int64_t i = 0; i < r.size(); ++i) {
          const double excess = std::abs(r[i] - ref.r[i]) - (1e-4 * max_ref + ref.slack[i]);
          if (excess > worst || (worst_at < 0 && excess > 0.0)) {
            worst = excess;
            worst_at = i;
          }
        }
        EXPECT_LT(worst_at, 0) << "element " << worst_at << ": sieve " << r[std::max<int64_t>(worst_at, 0)]
                               << ", formula " << ref.r[static_cast<size_t>(std::max<int64_t>(worst_at, 0))]
                               << ", max |R| " << max_ref;
        ++checked;
      }
    }
  }
  EXPECT_EQ(checked, 9 * 21 * 2);
}

// The γ rule gives nothing to a neuron whose true z is exactly 0, even though its branch sums are not
// 0; ε and z give its terms R_k / ε; z⁺ spreads it over the positive terms.
TEST(RuleFormula, ZeroTrueZ) {
  std::mt19937 rng(3);
  const Layer l = degenerate_gemm(rng);
  const auto op = create_op(l.spec);
  const std::vector<Tensor> inputs{l.x, l.weight, l.bias};
  const Tensor output = op->forward(inputs)[0];
  for (int64_t s = 0; s < 3; ++s) ASSERT_EQ(output[s * 4 + 0], 0.0f);
  // Relevance only at the neuron with z = 0.
  Tensor relevance(output.shape());
  for (int64_t s = 0; s < 3; ++s) relevance[s * 4 + 0] = 1.0f + static_cast<float>(s);
  const Tensor none;
  auto run = [&](const std::string& text) {
    const LinearRule rule = parse_rule(text);
    return rules::apply_linear_rule(rule, rules::modify_parameters(rule, l.weight, l.bias),
                                    {*op->as_linear(), l.x, l.weight, l.bias, output, relevance, none, none});
  };
  const Tensor gamma = run("gamma:gamma=0.25");
  for (float v : gamma.values()) EXPECT_EQ(v, 0.0f);
  const Tensor plus = run("z_plus");
  for (int64_t s = 0; s < 3; ++s) {
    // z⁺ = (a w)⁺ of the two taps = ½|a_0|, all of R_k goes to the positive one.
    double sum = 0.0;
    for (int64_t j = 0; j < 6; ++j) sum += plus[s * 6 + j];
    // Sums and quotients of two float32 terms: a few u ≈ 6e-8 of R_k.
    EXPECT_NEAR(sum, relevance[s * 4], 1e-5 * relevance[s * 4]);
  }
  const Tensor eps = run("epsilon:epsilon=0.5");
  for (int64_t s = 0; s < 3; ++s) {
    const double a0 = l.x[s * 6 + 0];
    // a_0·w·R_k / ε in float32: a few roundings, u ≈ 6e-8 each, of |a_0|·R_k.
    EXPECT_NEAR(eps[s * 6 + 0], a0 * 0.5 / 0.5 * relevance[s * 4],
                1e-5 * std::abs(a0) * relevance[s * 4] + 1e-7);
    EXPECT_NEAR(eps[s * 6 + 1], -a0 * 0.5 / 0.5 * relevance[s * 4],
                1e-5 * std::abs(a0) * relevance[s * 4] + 1e-7);
  }
}

// The z^B bounds as a tensor shaped like the layer input: per channel along axis 1, per channel of a
// flattened [N, C·rest] input, or one value everywhere.
TEST(RuleFormula, BoundsLikeTheInput) {
  const Tensor image = rules::bounds_like({2, 3, 2, 2}, {-1.0f, -2.0f, -3.0f}, "test");
  ASSERT_EQ(image.shape(), (Shape{2, 3, 2, 2}));
  for (int64_t i = 0; i < image.size(); ++i)
    EXPECT_EQ(image[i], -1.0f - static_cast<float>((i / 4) % 3)) << i;
  const Tensor flat = rules::bounds_like({2, 6}, {1.0f, 2.0f, 3.0f}, "test");
  for (int64_t i = 0; i < flat.size(); ++i) EXPECT_EQ(flat[i], 1.0f + static_cast<float>((i % 6) / 2)) << i;
  const Tensor one = rules::bounds_like({2, 5}, {0.5f}, "test");
  for (float v : one.values()) EXPECT_EQ(v, 0.5f);
  EXPECT_THROW(rules::bounds_like({2, 5}, {1.0f, 2.0f}, "test"), Error);
  EXPECT_THROW(rules::bounds_like({2, 5}, {}, "test"), Error);
}

}  // namespace
}  // namespace sieve
