// Properties of the relevance analyzers (lrp.*, deep_taylor*) that follow from the theory (METHODS.md §1):
// LRP-0 = Gradient × Input on ReLU nets, conservation on bias-free ReLU nets (in total and per layer),
// linearity in the relevance arriving from above, robustness on a residual network with folded
// BatchNormalization, the max-pool and log-odds options, and the composite grammar.

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "sieve/analyzer.hpp"
#include "sieve/error.hpp"
#include "sieve/io/npy.hpp"
#include "sieve/lrp.hpp"
#include "sieve/methods.hpp"
#include "support/rounding.hpp"

namespace sieve {
namespace {

const std::string kData = std::string(SIEVE_TEST_DATA);
const std::string kShared = kData + "/shared/models/";
const std::string kLow = "-0.8101983002832861", kHigh = "2.0226628895184136";
const InputRange kRange{{-0.8101983002832861f}, {2.0226628895184136f}};

Model load_shared(const std::string& name) {
  return Model::load(kShared + name + "_dynbatch.onnx");
}

// Samples [first, first + n) of a stored batch.
Tensor samples(const std::string& path, int64_t first, int64_t n) {
  const Tensor all = read_npy(path);
  const int64_t per = all.size() / all.dim(0);
  Shape s = all.shape();
  s[0] = n;
  return Tensor(s, std::span<const float>(all.data() + first * per, static_cast<size_t>(n * per)));
}
Tensor shared_inputs(const std::string& model, int64_t first, int64_t n) {
  return samples(kShared + model + "_inputs.npy", first, n);
}

std::vector<double> sample_sums(const Tensor& t) {
  const int64_t n = t.dim(0), per = t.size() / n;
  std::vector<double> s(static_cast<size_t>(n), 0.0);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < per; ++j) s[static_cast<size_t>(i)] += t[i * per + j];
  }
  return s;
}

double max_abs(const Tensor& t) {
  double m = 0.0;
  for (float v : t.values()) m = std::max(m, static_cast<double>(std::abs(v)));
  return m;
}

bool all_finite(const Tensor& t) {
  for (float v : t.values()) {
    if (!std::isfinite(v)) return false;
  }
  return true;
}

std::unique_ptr<Analyzer> analyzer(const std::string& method, const AnalyzerContext& context = {}) {
  return create_analyzer(MethodSpec::parse(method), context);
}

const RelevanceAnalyzer& relevance(const std::unique_ptr<Analyzer>& a) {
  const auto* r = dynamic_cast<const RelevanceAnalyzer*>(a.get());
  if (r == nullptr) throw Error("not a relevance analyzer");
  return *r;
}

Tensor explain(const Model& model, const Analyzer& a, const Tensor& x, const std::vector<int64_t>& targets) {
  const ForwardPass pass(model, x, a.trace_values(model));
  return a.explain(pass, targets);
}

std::vector<int64_t> predicted(const Model& model, const Tensor& x) {
  return TargetSelection().resolve(model.run({x}).at(0)).at(0);
}

// Sets every bias of the Conv / ConvTranspose / Gemm nodes (input 2, a constant) to zero, including the
// shifts of BatchNormalization folded into them; returns how many were zeroed.
int zero_biases(Model& model) {
  Graph& g = model.graph();
  int zeroed = 0;
  for (const Node& node : g.nodes()) {
    const std::string& t = node.spec.op_type;
    if (t != "Conv" && t != "ConvTranspose" && t != "Gemm") continue;
    if (node.inputs.size() < 3 || node.inputs[2] < 0) continue;
    Value& bias = g.value(node.inputs[2]);
    if (!bias.is_constant()) throw Error("bias of " + node.name + " is not a constant");
    bias.constant = Tensor(bias.constant.shape());  // new storage, all zero
    ++zeroed;
  }
  return zeroed;
}

int count_nodes(const Model& model, const std::string& type) {
  int n = 0;
  for (const Node& node : model.graph().nodes()) n += node.spec.op_type == type;
  return n;
}

// ------------------------------------------------------------------------------------------------
// (a) Uniform LRP-0 equals Gradient × Input on ReLU networks, biases included (METHODS.md §1.2): exactly
// without a stabilizer (R_k / z_k = ∂f/∂a_k); with LRP-0's stabilizer ε = 1e-6 up to the ε effect at
// neurons with tiny z, which on the cnn reaches 1e-3 in the float64 references themselves (Zennit ε = 1e-6
// vs Captum), so that difference, per input, is added to the tolerance there.

// Per input: max|a − b| / max|b|.
std::vector<double> relative_differences(const Tensor& a, const Tensor& b) {
  const int64_t n = b.dim(0), per = b.size() / n;
  std::vector<double> d;
  for (int64_t i = 0; i < n; ++i) {
    double scale = 0.0, diff = 0.0;
    for (int64_t j = i * per; j < (i + 1) * per; ++j) {
      scale = std::max(scale, static_cast<double>(std::abs(b[j])));
      diff = std::max(diff, static_cast<double>(std::abs(a[j] - b[j])));
    }
    d.push_back(scale > 0.0 ? diff / scale : INFINITY);
  }
  return d;
}

TEST(RelevanceProperties, UniformZRuleIsGradientTimesInput) {
  for (const std::string m : {"mlp", "cnn"}) {
    const Model model = load_shared(m);
    const int64_t n = 8;
    const Tensor x = shared_inputs(m, 0, n);
    const std::vector<int64_t> targets = predicted(model, x);
    const Tensor g = explain(model, *analyzer("input_x_gradient"), x, targets);
    const Tensor exact = explain(model, *analyzer("lrp.epsilon:epsilon=0"), x, targets);
    const Tensor z = explain(model, *analyzer("lrp.z"), x, targets);
    EXPECT_TRUE(all_finite(exact)) << m;
    const std::string refs = kData + "/shared/refs/" + m + "/";
    const std::vector<double> epsilon_effect = relative_differences(
        samples(refs + "lrp_epsilon_1e-6.npy", 0, n), samples(refs + "input_x_gradient.npy", 0, n));
    const std::vector<double> d_exact = relative_differences(exact, g), d_z = relative_differences(z, g);
    // Two float32 reverse passes over the same forward values, whose dot products run over the fan-outs:
    // 394 terms in all for the mlp, 714 for the cnn, so each within 714·u = 4.3e-5 of the magnitudes
    // (R_k / z_k uses the forward's own z_k: a few u per layer); they differ by at most 8.6e-5 ≤ 1e-4.
    for (int64_t i = 0; i < n; ++i) {
      EXPECT_LE(d_exact[i], 1e-4) << m << " input " << i;
      EXPECT_LE(d_z[i], 1e-4 + 2.0 * epsilon_effect[i]) << m << " input " << i;
    }
  }
}

// ------------------------------------------------------------------------------------------------
// (b) Conservation Σ_i R_i = f(x) on bias-free ReLU networks for rule chains that conserve exactly
// (z⁺ on ReLU inputs, w², flat, z^B on inputs within the bounds, ε on layers whose relevant neurons have
// z > 0), in total and layer by layer in the analyzer's conservation report.

TEST(RelevanceProperties, ConservationOnBiasFreeNetworks) {
  const std::vector<std::string> methods{"lrp.z_plus",
                                         "deep_taylor",
                                         "deep_taylor.bounded:low=" + kLow + ",high=" + kHigh,
                                         "lrp.epsilon_plus_flat",
                                         "lrp.epsilon_plus",
                                         "lrp.w_square",
                                         "lrp.flat",
                                         "lrp.z"};
  for (const std::string m : {"mlp", "cnn"}) {
    Model model = load_shared(m);
    const int layers = count_nodes(model, "Gemm") + count_nodes(model, "Conv");
    ASSERT_EQ(zero_biases(model), layers) << m;
    const Tensor x = shared_inputs(m, 0, 6);
    const Tensor logits = model.run({x}).at(0);
    const std::vector<int64_t> targets = predicted(model, x);
    const int64_t classes = logits.dim(1);
    // Each layer passes on what it receives through a float32 quotient of sums over its fan-in and sums
    // over its fan-out: it conserves to (fan-in + fan-out)·u, and the layers together to
    // u·Σ (fan-in + fan-out) ≤ 2τ, the fan-outs adding up to less than the fan-ins here (rounding.hpp).
    const double tol = 2.0 * forward_rounding_bound(model);
    for (const std::string& method : methods) {
      SCOPED_TRACE(m + " " + method);
      const auto a = analyzer(method);
      const ForwardPass pass(model, x, a->trace_values(model));
      std::vector<LayerRelevance> report;
      const Tensor r = relevance(a).explain(pass, targets, &report);
      const std::vector<double> sums = sample_sums(r);
      int checked = 0;
      for (size_t i = 0; i < targets.size(); ++i) {
        const double f = logits[static_cast<int64_t>(i) * classes + targets[i]];
        if (f <= 0.0) continue;
        ++checked;
        EXPECT_NEAR(sums[i], f, tol * f) << "input " << i;
      }
      EXPECT_GE(checked, 4);
      // Every linear layer appears once, and conserves what it receives.
      EXPECT_EQ(report.size(), static_cast<size_t>(layers));
      for (const LayerRelevance& l : report) {
        ASSERT_EQ(l.input_sum.size(), targets.size()) << l.name;
        ASSERT_EQ(l.output_sum.size(), targets.size()) << l.name;
        for (size_t i = 0; i < targets.size(); ++i) {
          const double f = logits[static_cast<int64_t>(i) * classes + targets[i]];
          if (f <= 0.0) continue;
          EXPECT_NEAR(l.input_sum[i], l.output_sum[i], tol * std::max(std::abs(l.output_sum[i]), f))
              << l.name << " (" << l.op_type << ") input " << i;
        }
      }
    }
  }
}

// The report is not a copy of one number: with biases and ε = 0.25 layers lose relevance; the top
// layer receives the logit, and the first layer's input sum is the explanation's sum.
TEST(RelevanceProperties, ConservationReportShowsLosses) {
  const Model model = load_shared("cnn");
  const Tensor x = shared_inputs("cnn", 0, 3);
  const Tensor logits = model.run({x}).at(0);
  const std::vector<int64_t> targets = predicted(model, x);
  const auto a = analyzer("lrp.epsilon:epsilon=0.25");
  const ForwardPass pass(model, x, a->trace_values(model));
  std::vector<LayerRelevance> report;
  const Tensor r = relevance(a).explain(pass, targets, &report);
  ASSERT_EQ(report.size(), 5u);
  const std::vector<double> sums = sample_sums(r);
  const auto& nodes = model.graph().nodes();
  // The reverse pass visits the layers from the top.
  const LayerRelevance& top = report.front();
  const LayerRelevance& bottom = report.back();
  EXPECT_EQ(nodes[top.node].spec.op_type, "Gemm");
  EXPECT_EQ(nodes[bottom.node].spec.op_type, "Conv");
  double largest_loss = 0.0;
  for (size_t i = 0; i < targets.size(); ++i) {
    const double f = logits[static_cast<int64_t>(i) * logits.dim(1) + targets[i]];
    // The seed is the logit of the same float32 forward computation; the first layer's input is the
    // explanation itself, summed in float64 both times: both equal up to float64 rounding.
    EXPECT_NEAR(top.output_sum[i], f, 1e-5 * std::abs(f));
    EXPECT_NEAR(bottom.input_sum[i], sums[i], 1e-4 * std::abs(f));
    for (const LayerRelevance& l : report)
      largest_loss = std::max(largest_loss, std::abs(l.output_sum[i] - l.input_sum[i]) / std::abs(f));
  }
  EXPECT_GT(largest_loss, 1e-2);  // an effect, far above any rounding (≤ 2τ ≈ 2.4e-4)
}

// ------------------------------------------------------------------------------------------------
// (c) Relevance is linear in the relevance arriving from above. Replace class c's row of the top layer by
// α·row a + β·row b (weights and bias) and put the z rule on the top layer: R at the top layer's input
// is a ⊙ w_t for any class t (the seed f_t cancels z_t), so the lower layers, whatever their rules,
// must give E'(c) = α·E(a) + β·E(b).

Model with_mixed_row(const std::string& m, int64_t a, int64_t b, int64_t c, float alpha, float beta) {
  Model model = load_shared(m);
  Graph& g = model.graph();
  const int producer = g.producers()[static_cast<size_t>(g.outputs.at(0))];
  if (producer < 0) throw Error("no producer");
  const Node& top = g.nodes()[static_cast<size_t>(producer)];
  if (top.spec.op_type != "Gemm" || top.spec.attributes.get_float("alpha", 1.0f) != 1.0f ||
      top.spec.attributes.get_float("beta", 1.0f) != 1.0f || top.spec.attributes.get_int("transA", 0) != 0)
    throw Error("expected a plain Gemm on top");
  const bool trans_b = top.spec.attributes.get_int("transB", 0) != 0;
  Value& wv = g.value(top.inputs.at(1));
  Value& bv = g.value(top.inputs.at(2));
  Tensor w = wv.constant.clone(), bias = bv.constant.clone();
  const int64_t classes = trans_b ? w.dim(0) : w.dim(1), inner = trans_b ? w.dim(1) : w.dim(0);
  auto at = [&](int64_t cls, int64_t j) -> float& {
    return trans_b ? w[cls * inner + j] : w[j * classes + cls];
  };
  for (int64_t j = 0; j < inner; ++j) at(c, j) = alpha * at(a, j) + beta * at(b, j);
  bias[c] = alpha * bias[a] + beta * bias[b];
  wv.constant = w;
  bv.constant = bias;
  return model;
}

TEST(RelevanceProperties, LinearInTheRelevanceFromAbove) {
  const float alpha = 0.7f, beta = -0.4f;
  const std::vector<std::string> methods{"lrp.z_plus",
                                         "lrp.epsilon:epsilon=0.25",
                                         "lrp.epsilon:epsilon=0.5,epsilon_mode=std",
                                         "lrp.gamma",
                                         "lrp.alpha_2_beta_1",
                                         "lrp.w_square",
                                         "lrp.epsilon_gamma_box:low=" + kLow + ",high=" + kHigh,
                                         "lrp.epsilon_plus_flat"};
  AnalyzerContext context;
  context.rules = {"last:z"};
  for (const std::string m : {"mlp", "cnn"}) {
    const Model model = load_shared(m);
    for (const int64_t s : {3}) {
      const Tensor x = shared_inputs(m, s, 1);
      const Tensor logits = model.run({x}).at(0);
      const int64_t classes = logits.dim(1);
      int64_t a = 0, b = 0;
      for (int64_t k = 1; k < classes; ++k) {
        if (logits[k] > logits[a]) a = k;
        if (logits[k] < logits[b]) b = k;
      }
      int64_t c = 0;
      while (c == a || c == b) ++c;
      const Model mixed = with_mixed_row(m, a, b, c, alpha, beta);
      for (const std::string& method : methods) {
        SCOPED_TRACE(m + " sample " + std::to_string(s) + " " + method);
        const auto an = analyzer(method, context);
        // The user's rule replaced the preset's on the top layer.
        const std::vector<RuleAssignment> rules = relevance(an).assignment(model);
        ASSERT_FALSE(rules.empty());
        EXPECT_EQ(rules.back().rule, "z");
        const ForwardPass pass(model, x, an->trace_values(model));
        const Tensor ea = an->explain(pass, {a}), eb = an->explain(pass, {b});
        const Tensor ec = explain(mixed, *an, x, {c});
        double scale = 0.0, diff = 0.0;
        for (int64_t i = 0; i < x.size(); ++i) {
          const double expected = alpha * static_cast<double>(ea[i]) + beta * static_cast<double>(eb[i]);
          scale = std::max(scale, std::abs(alpha * static_cast<double>(ea[i])) +
                                      std::abs(beta * static_cast<double>(eb[i])));
          diff = std::max(diff, std::abs(ec[i] - expected));
        }
        EXPECT_GT(scale, 0.0);
        // Three float32 relevance passes below the same forward values (the z rule on top cancels the
        // mixed row's z_c): each within its fan-outs' rounding, Σ fan-out·u ≤ τ, of its magnitude, taken
        // as the largest |α·ea| + |β·eb|: ec against α·ea + β·eb within 2τ of it.
        EXPECT_LE(diff, 2.0 * forward_rounding_bound(model) * scale);
      }
    }
  }
}

// ------------------------------------------------------------------------------------------------
// (d) A residual network with BatchNormalization (folded into the convolutions), a residual Add and
// average pooling: every relevance method runs and gives finite values; without biases, z⁺ conserves.

TEST(RelevanceProperties, ResidualNetworkEveryMethod) {
  const Model model = Model::load(kData + "/models/resnet_small.onnx");
  ASSERT_EQ(count_nodes(model, "BatchNormalization"), 0);
  ASSERT_GE(count_nodes(model, "Add"), 1);
  const Tensor x = samples(kData + "/models/resnet_small_input.npy", 0, 1);
  double lo = 0.0, hi = 0.0;
  for (float v : x.values()) {
    lo = std::min(lo, static_cast<double>(v));
    hi = std::max(hi, static_cast<double>(v));
  }
  AnalyzerContext context;
  context.input_range = InputRange{{static_cast<float>(lo - 0.1)}, {static_cast<float>(hi + 0.1)}};
  const std::vector<int64_t> targets = predicted(model, x);
  int methods = 0;
  for (const MethodInfo& info : available_methods()) {
    if (info.name.rfind("lrp", 0) != 0 && info.name.rfind("deep_taylor", 0) != 0) continue;
    SCOPED_TRACE(info.name);
    const auto a = analyzer(info.name, context);
    const ForwardPass pass(model, x, a->trace_values(model));
    const Tensor r = a->explain(pass, targets);
    ASSERT_EQ(r.shape(), x.shape());
    EXPECT_TRUE(all_finite(r));
    EXPECT_GT(max_abs(r), 0.0);
    ++methods;
  }
  EXPECT_GE(methods, 17);
}

// Without biases, LRP-0, w², flat and z⁺ conserve through convolutions, the residual Adds (split in
// proportion to the operands) and the average pooling. z⁺ has one exception: the Add gives a branch
// negative relevance where that branch's z < 0, and a neuron with z⁺ = 0 (every input behind a positive
// weight is 0, which happens on the 1×1 downsample convolution) cannot pass it on, so z⁺ loses only
// negative relevance: Σ R ≥ f(x), with equality once that convolution gets LRP-0.
TEST(RelevanceProperties, ResidualNetworkBiasFreeConservation) {
  Model model = Model::load(kData + "/models/resnet_small.onnx");
  const int layers = count_nodes(model, "Conv") + count_nodes(model, "Gemm");
  EXPECT_EQ(zero_biases(model), layers);  // every conv has the bias its BatchNormalization left
  std::string downsample;
  for (const Node& node : model.graph().nodes()) {
    if (node.spec.op_type == "Conv" &&
        node.spec.attributes.get_ints("kernel_shape") == std::vector<int64_t>{1, 1})
      downsample = node.name;
  }
  ASSERT_FALSE(downsample.empty());
  const Tensor x = samples(kData + "/models/resnet_small_input.npy", 0, 1);
  const Tensor logits = model.run({x}).at(0);
  AnalyzerContext z_on_downsample;
  z_on_downsample.rules = {"name=" + downsample + ":z"};
  struct Run {
    std::string method;
    AnalyzerContext context;
    bool exact;
  };
  const std::vector<Run> runs{{"lrp.z", {}, true},
                              {"lrp.z_plus", z_on_downsample, true},
                              {"lrp.alpha_2_beta_1", z_on_downsample, true},
                              {"lrp.z_plus", {}, false}};
  int checked = 0;
  for (const Run& run : runs) {
    const auto a = analyzer(run.method, run.context);
    const ForwardPass pass(model, x, a->trace_values(model));
    for (int64_t c = 0; c < logits.dim(1); ++c) {
      const double f = logits[c];
      if (f <= 0.0) continue;
      SCOPED_TRACE(run.method + (run.context.rules.empty() ? "" : " with " + run.context.rules[0]) +
                   " class " + std::to_string(c));
      ++checked;
      std::vector<LayerRelevance> report;
      const Tensor r = relevance(a).explain(pass, {c}, &report);
      EXPECT_TRUE(all_finite(r));
      const double sum = sample_sums(r)[0];
      EXPECT_GE(report.size(), static_cast<size_t>(layers));
      // As on the bias-free mlp and cnn: u·Σ (fan-in + fan-out) = (411 + 530)·u = 5.6e-5 ≤ 1e-4.
      if (run.exact) {
        EXPECT_NEAR(sum, f, 1e-4 * f);
        for (const LayerRelevance& l : report)
          EXPECT_NEAR(l.input_sum[0], l.output_sum[0], 1e-4 * f) << l.name;
      } else {
        EXPECT_GE(sum, f * (1.0 - 1e-4));
        for (const LayerRelevance& l : report) {
          EXPECT_GE(l.input_sum[0], l.output_sum[0] - 1e-4 * f) << l.name;
          if (l.name != downsample) {
            EXPECT_NEAR(l.input_sum[0], l.output_sum[0], 1e-4 * f) << l.name;
          }
        }
      }
    }
  }
  EXPECT_GE(checked, 4);
}

// ------------------------------------------------------------------------------------------------
// (e) Options: max-pooling as average pooling; the log-odds top layer.

TEST(RelevanceProperties, MaxPoolAsAverage) {
  const Model model = load_shared("cnn");
  const Tensor x = shared_inputs("cnn", 0, 3);
  const std::vector<int64_t> targets = predicted(model, x);
  for (const std::string method : {"lrp.epsilon_plus", "lrp.z_plus"}) {
    const auto wta = analyzer(method), avg = analyzer(method + ":maxpool=avg");
    const Tensor r_wta = explain(model, *wta, x, targets), r_avg = explain(model, *avg, x, targets);
    EXPECT_TRUE(all_finite(r_avg)) << method;
    double diff = 0.0;
    for (int64_t i = 0; i < r_avg.size(); ++i)
      diff = std::max(diff, static_cast<double>(std::abs(r_avg[i] - r_wta[i])));
    EXPECT_GT(diff, 1e-2 * max_abs(r_wta)) << method;  // an effect, far above rounding
    int pools = 0;
    for (const RuleAssignment& ra : relevance(avg).assignment(model)) {
      if (ra.op_type != "MaxPool") continue;
      ++pools;
      EXPECT_NE(ra.rule, "winner-take-all");
    }
    EXPECT_EQ(pools, 2);
    for (const RuleAssignment& ra : relevance(wta).assignment(model)) {
      if (ra.op_type == "MaxPool") {
        EXPECT_EQ(ra.rule, "winner-take-all");
      }
    }
  }
  // Average pooling is linear and gets LRP-0: on the bias-free cnn z⁺ still conserves with it.
  Model bias_free = load_shared("cnn");
  zero_biases(bias_free);
  const Tensor logits = bias_free.run({x}).at(0);
  const std::vector<int64_t> t = predicted(bias_free, x);
  const Tensor r = explain(bias_free, *analyzer("lrp.z_plus:maxpool=avg"), x, t);
  const std::vector<double> sums = sample_sums(r);
  for (size_t i = 0; i < t.size(); ++i) {
    const double f = logits[static_cast<int64_t>(i) * logits.dim(1) + t[i]];
    if (f > 0.0) {
      // Conserved to u·Σ (fan-in + fan-out) ≤ 2τ, as in ConservationOnBiasFreeNetworks.
      EXPECT_NEAR(sums[i], f, 2.0 * forward_rounding_bound(bias_free) * f) << "input " << i;
    }
  }
}

TEST(RelevanceProperties, LogOdds) {
  const Tensor x = shared_inputs("mlp", 0, 6);
  {
    const Model model = load_shared("mlp");
    const std::vector<int64_t> targets = predicted(model, x);
    const Tensor plain = explain(model, *analyzer("lrp.epsilon"), x, targets);
    const Tensor odds = explain(model, *analyzer("lrp.epsilon:logodds=1"), x, targets);
    EXPECT_TRUE(all_finite(odds));
    double diff = 0.0;
    for (int64_t i = 0; i < odds.size(); ++i)
      diff = std::max(diff, static_cast<double>(std::abs(odds[i] - plain[i])));
    EXPECT_GT(diff, 1e-2 * max_abs(plain));  // an effect, far above rounding
    // The log-odds top layer needs the z or ε rule there.
    const auto gamma = analyzer("lrp.gamma:logodds=1");
    EXPECT_THROW(gamma->trace_values(model), Error);
  }
  // Bias-free with LRP-0 every layer below conserves, so Σ R is the soft-min-weighted mean of the
  // log-ratios z_c − z_c', Σ_{c'} (z_c − z_c') softmin_{c'}, which is ≥ η_c = −log Σ_{c'} exp(−(z_c − z_c')).
  Model model = load_shared("mlp");
  zero_biases(model);
  const Tensor logits = model.run({x}).at(0);
  const std::vector<int64_t> targets = predicted(model, x);
  const Tensor r = explain(model, *analyzer("lrp.z:logodds=1"), x, targets);
  EXPECT_TRUE(all_finite(r));
  const std::vector<double> sums = sample_sums(r);
  const int64_t classes = logits.dim(1);
  for (size_t i = 0; i < targets.size(); ++i) {
    const float* z = logits.data() + static_cast<int64_t>(i) * classes;
    const int64_t c = targets[i];
    double norm = 0.0, weighted = 0.0;
    for (int64_t k = 0; k < classes; ++k) {
      if (k == c) continue;
      const double d = static_cast<double>(z[c]) - z[k];
      norm += std::exp(-d);
      weighted += d * std::exp(-d);
    }
    const double mean = weighted / norm, eta = -std::log(norm);
    // Conserved through the mlp to u·Σ (fan-in + fan-out) = (1168 + 394)·u = 9.3e-5 ≤ 1e-4 of the
    // magnitudes; the reference is float64 from the float32 logits; 1e-6 absolute for a mean near 0.
    EXPECT_NEAR(sums[i], mean, 1e-4 * std::abs(mean) + 1e-6) << "input " << i;
    EXPECT_GE(sums[i], eta - 1e-4 * std::abs(eta)) << "input " << i;
  }
}

// ------------------------------------------------------------------------------------------------
// (f) The composite grammar.

TEST(CompositeGrammar, PredicatesParse) {
  using K = NodePredicate::Kind;
  NodePredicate p = NodePredicate::parse("Conv");
  EXPECT_EQ(p.kind, K::op_type);
  EXPECT_EQ(p.text, "Conv");
  EXPECT_EQ(NodePredicate::parse("any").kind, K::any);
  EXPECT_EQ(NodePredicate::parse("last").kind, K::last);
  p = NodePredicate::parse("first");
  EXPECT_EQ(p.kind, K::first);
  EXPECT_EQ(p.text, "");
  p = NodePredicate::parse("first=Conv");
  EXPECT_EQ(p.kind, K::first);
  EXPECT_EQ(p.text, "Conv");
  p = NodePredicate::parse("index=0-2");
  EXPECT_EQ(p.kind, K::index_range);
  EXPECT_EQ(p.low, 0);
  EXPECT_EQ(p.high, 2);
  p = NodePredicate::parse("index=3");
  EXPECT_EQ(p.kind, K::index_range);
  EXPECT_EQ(p.low, 3);
  EXPECT_EQ(p.high, 3);
  p = NodePredicate::parse("name=X");
  EXPECT_EQ(p.kind, K::name);
  EXPECT_EQ(p.text, "X");
  for (const char* bad : {"", "Dense", "conv", "first=Dense", "first=", "index=", "index=a", "index=2-1",
                          "index=-1", "index=1-x", "index=1.5"})
    EXPECT_THROW(NodePredicate::parse(bad), Error) << bad;
}

TEST(CompositeGrammar, EntriesParse) {
  CompositeEntry e = Composite::parse_entry("Conv:gamma:gamma=0.25");
  EXPECT_EQ(e.predicate.kind, NodePredicate::Kind::op_type);
  EXPECT_EQ(e.predicate.text, "Conv");
  EXPECT_EQ(e.rule.text, "gamma:gamma=0.25");
  EXPECT_FLOAT_EQ(e.rule.gamma, 0.25f);  // parsed from text: the nearest float, exactly
  e = Composite::parse_entry("first:z_box:low=-1,high=1");
  EXPECT_EQ(e.predicate.kind, NodePredicate::Kind::first);
  ASSERT_EQ(e.rule.low.size(), 1u);
  ASSERT_EQ(e.rule.high.size(), 1u);
  EXPECT_EQ(e.rule.low[0], -1.0f);
  EXPECT_EQ(e.rule.high[0], 1.0f);
  EXPECT_TRUE(e.rule.uses_bounds());
  e = Composite::parse_entry("first:z_box:low=-1;-2;-3,high=1;2;3");
  EXPECT_EQ(e.rule.low, (std::vector<float>{-1.0f, -2.0f, -3.0f}));
  EXPECT_EQ(e.rule.high, (std::vector<float>{1.0f, 2.0f, 3.0f}));
  e = Composite::parse_entry("index=0-2:epsilon");
  EXPECT_EQ(e.predicate.kind, NodePredicate::Kind::index_range);
  EXPECT_EQ(e.predicate.high, 2);
  EXPECT_FLOAT_EQ(e.rule.epsilon, 0.25f);
  e = Composite::parse_entry("name=X:flat");
  EXPECT_EQ(e.predicate.kind, NodePredicate::Kind::name);
  EXPECT_EQ(e.predicate.text, "X");
  EXPECT_FALSE(e.rule.uses_bounds());
  e = Composite::parse_entry("first=Conv:z_box");
  EXPECT_EQ(e.predicate.kind, NodePredicate::Kind::first);
  EXPECT_EQ(e.predicate.text, "Conv");
  EXPECT_TRUE(e.rule.uses_bounds());
  EXPECT_TRUE(e.rule.low.empty());
  e = Composite::parse_entry("Gemm:alpha_beta:alpha=3,beta=2");
  EXPECT_FALSE(Composite::parse_entry("any:pass").rule.branches.size() > 0);
  EXPECT_TRUE(Composite::parse_entry("any:pass").rule.pass);
  for (const std::string& name : rule_names()) EXPECT_NO_THROW(Composite::parse_entry("any:" + name)) << name;

  for (const char* bad : {
           "Dense:z",                         // unknown predicate
           "Conv:foo",                        // unknown rule
           "Conv",                            // no rule
           "Conv:",                           // no rule
           "Conv:alpha_beta:alpha=3,beta=1",  // α − β ≠ 1
           "Conv:alpha_beta:alpha=1,beta=1",  // α − β ≠ 1
           "Conv:epsilon:epsilon=abc",        // bad number
           "Conv:epsilon:epsilon=-1",         // out of range
           "Conv:epsilon:epsilon_mode=rms",   // bad choice
           "Conv:gamma:gamma=0.2x",           // bad number
           "Conv:gamma:gama=1",               // unknown parameter
           "Conv:z_plus:ignore_bias=2",       // not 0/1
           "first:z_box:low=-1",              // low without high
           "first:z_box:low=a,high=1",        // bad number
           "first:z_box:low=-1;x,high=1;2",   // bad number in a list
           "first:z_box:low=-1;-2,high=1",    // different counts
           "index=2-1:z",                     // empty range
       })
    EXPECT_THROW(Composite::parse_entry(bad), Error) << bad;
}

std::string write_temp(const std::string& name, const std::string& text) {
  const std::string path = ::testing::TempDir() + "/sieve_rules_" + name;
  std::ofstream(path) << text;
  return path;
}

TEST(CompositeGrammar, ReadJson) {
  const std::string good = write_temp("good.json", R"({"rules": [
      {"match": "Conv", "rule": "gamma", "params": {"gamma": 0.25}},
      {"match": "first", "rule": "z_box", "params": {"low": [-1, -2], "high": [1, 2]}},
      {"match": "index=3-4", "rule": "epsilon", "params": {"epsilon": 1e-3, "epsilon_mode": "std"}},
      {"match": "any", "rule": "z_plus"}]})");
  const Composite c = Composite::read_json(good);
  ASSERT_EQ(c.entries.size(), 4u);
  EXPECT_EQ(c.entries[0].predicate.kind, NodePredicate::Kind::op_type);
  EXPECT_EQ(c.entries[0].predicate.text, "Conv");
  EXPECT_FLOAT_EQ(c.entries[0].rule.gamma, 0.25f);  // parsed from JSON: the nearest float, exactly
  EXPECT_EQ(c.entries[1].rule.low, (std::vector<float>{-1.0f, -2.0f}));
  EXPECT_EQ(c.entries[1].rule.high, (std::vector<float>{1.0f, 2.0f}));
  EXPECT_EQ(c.entries[2].predicate.low, 3);
  EXPECT_EQ(c.entries[2].predicate.high, 4);
  EXPECT_FLOAT_EQ(c.entries[2].rule.epsilon, 1e-3f);
  EXPECT_TRUE(c.entries[2].rule.epsilon_std);
  EXPECT_EQ(c.entries[3].predicate.kind, NodePredicate::Kind::any);
  std::filesystem::remove(good);

  const std::vector<std::pair<std::string, std::string>> bad{
      {"syntax", R"({"rules": [{"match": "Conv", "rule": "gamma"})"},
      {"not_object", R"([1, 2])"},
      {"no_rules", R"({"entries": []})"},
      {"rules_object", R"({"rules": {"match": "Conv"}})"},
      {"no_match", R"({"rules": [{"rule": "gamma"}]})"},
      {"match_number", R"({"rules": [{"match": 3, "rule": "gamma"}]})"},
      {"no_rule", R"({"rules": [{"match": "Conv"}]})"},
      {"params_list", R"({"rules": [{"match": "Conv", "rule": "gamma", "params": [0.25]}]})"},
      {"param_object", R"({"rules": [{"match": "Conv", "rule": "gamma", "params": {"gamma": {}}}]})"},
      {"param_bool", R"({"rules": [{"match": "Conv", "rule": "gamma", "params": {"gamma": true}}]})"},
      {"unknown_rule", R"({"rules": [{"match": "Conv", "rule": "gama"}]})"},
      {"unknown_predicate", R"({"rules": [{"match": "Dense", "rule": "z"}]})"},
      {"alpha_beta",
       R"({"rules": [{"match": "Conv", "rule": "alpha_beta", "params": {"alpha": 3, "beta": 1}}]})"},
      {"unknown_param", R"({"rules": [{"match": "Conv", "rule": "z", "params": {"gamma": 1}}]})"},
  };
  for (const auto& [name, text] : bad) {
    const std::string path = write_temp(name + ".json", text);
    EXPECT_THROW(Composite::read_json(path), Error) << name;
    std::filesystem::remove(path);
  }
  EXPECT_THROW(Composite::read_json(::testing::TempDir() + "/sieve_rules_does_not_exist.json"), Error);
}

// Which rule each node of the cnn (Conv×3, Gemm×2, in that order) gets.
std::vector<std::string> layer_rules(const std::unique_ptr<Analyzer>& a, const Model& model) {
  std::vector<std::string> v;
  for (const RuleAssignment& r : relevance(a).assignment(model)) {
    if (r.op_type == "Conv" || r.op_type == "Gemm") v.push_back(r.rule);
  }
  return v;
}

TEST(CompositeGrammar, UserRulesTakePrecedence) {
  const Model model = load_shared("cnn");
  using V = std::vector<std::string>;
  const std::string eps = "epsilon:epsilon=1e-6";
  EXPECT_EQ(layer_rules(analyzer("lrp.epsilon_plus"), model), (V{"z_plus", "z_plus", "z_plus", eps, eps}));
  EXPECT_EQ(layer_rules(analyzer("lrp.epsilon_plus_flat"), model), (V{"flat", "z_plus", "z_plus", eps, eps}));
  EXPECT_EQ(layer_rules(analyzer("deep_taylor"), model),
            (V{"w_square:ignore_bias=1", "z_plus:ignore_bias=1", "z_plus:ignore_bias=1",
               "z_plus:ignore_bias=1", "z_plus:ignore_bias=1"}));
  EXPECT_EQ(layer_rules(analyzer("lrp"), model), (V{"z", "z", "z", "z", "z"}));

  AnalyzerContext context;
  context.rules = {"Conv:gamma:gamma=0.5"};
  EXPECT_EQ(layer_rules(analyzer("lrp.epsilon_plus", context), model),
            (V{"gamma:gamma=0.5", "gamma:gamma=0.5", "gamma:gamma=0.5", eps, eps}));
  // The first matching entry wins: the user's entries in their order, then the file's, then the preset's.
  std::vector<std::string> convs;
  for (const Node& n : model.graph().nodes()) {
    if (n.spec.op_type == "Conv") convs.push_back(n.name);
  }
  ASSERT_EQ(convs.size(), 3u);
  const std::string second_conv = convs[1];
  context.rules = {"name=" + second_conv + ":flat", "index=0-1:w_square", "last:alpha_beta"};
  const std::string file = write_temp("precedence.json", R"({"rules": [
      {"match": "Conv", "rule": "gamma", "params": {"gamma": 0.25}},
      {"match": "last", "rule": "z"},
      {"match": "index=3", "rule": "epsilon", "params": {"epsilon": 0.5}}]})");
  context.composite_file = file;
  EXPECT_EQ(layer_rules(analyzer("lrp.z_plus", context), model),
            (V{"w_square", "flat", "gamma:gamma=0.25", "epsilon:epsilon=0.5", "alpha_beta"}));
  context.rules.clear();
  EXPECT_EQ(layer_rules(analyzer("lrp.z_plus", context), model),
            (V{"gamma:gamma=0.25", "gamma:gamma=0.25", "gamma:gamma=0.25", "epsilon:epsilon=0.5", "z"}));
  std::filesystem::remove(file);

  // first=Gemm is the first dense layer; z^B without bounds needs the input range.
  context = AnalyzerContext{};
  context.rules = {"first=Gemm:z_box"};
  EXPECT_THROW(analyzer("lrp.z", context), Error);
  context.input_range = kRange;
  EXPECT_EQ(layer_rules(analyzer("lrp.z", context), model), (V{"z", "z", "z", "z_box", "z"}));
  context.rules = {"Dense:z"};
  EXPECT_THROW(analyzer("lrp.z", context), Error);
}

}  // namespace
}  // namespace sieve
