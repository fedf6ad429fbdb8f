// The relevance treatments of recent architectures against their per-neuron formulas, written out with
// explicit loops in double precision (docs/methods.md, "Transformers, gates and normalization"), with
// stab(z) = z + 1e-6·sign(z), sign(0) = +1, the stabilizer of every proportional split:
//   LN rule:      y_j = γ_j (x_j − μ)/σ + β_j with σ held:  R_i = x_i Σ_j γ_j/σ (δ_ij − 1/n) R_j / stab(y_j)
//   AttnLRP:      s = softmax(x):  R_i = x_i Σ_j s_j (δ_ij − s_i) R_j / stab(s_j)   (= x_i (R_i − s_i ΣR))
//   CP-LRP:       z = P V with P = softmax(·) held:  R_V[k,j] = Σ_i P[i,k] V[k,j] R[i,j] / stab(z[i,j]), P
//   gets 0 gates:        z = x · σ(g):  signal-take-all R_x = x σ(g) R / stab(z), the gate 0; gate=half: ½
//   each activations:  identity R_in = R_out; activation=gradient R_in = x f'(x) R / stab(f(x))

#include <gtest/gtest.h>

#include <cmath>
#include <numbers>
#include <random>

#include "rules/treatments.hpp"
#include "sieve/error.hpp"
#include "sieve/graph.hpp"
#include "sieve/op_spec.hpp"

namespace sieve {
namespace {

using rules::ActivationTreatment;
using rules::AttentionTreatment;
using rules::GateTreatment;
using rules::NormalizationTreatment;
using rules::RelevanceOptions;

double stab(double z) {
  return z + (z >= 0.0 ? 1e-6 : -1e-6);
}

Tensor random_tensor(const Shape& shape, std::mt19937& rng, float low = -1.0f, float high = 1.0f) {
  Tensor t = Tensor::uninitialized(shape);
  std::uniform_real_distribution<float> uniform(low, high);
  for (float& v : t.values()) v = uniform(rng);
  return t;
}

// A graph built node by node; every value without a constant is an input that varies.
struct TestGraph {
  Graph graph;
  std::vector<Tensor> values;  // forward values, by id

  ValueId input(const Tensor& t) {
    const ValueId id = graph.add_value({"v" + std::to_string(values.size()), t.shape(), true, {}});
    graph.inputs.push_back(id);
    values.push_back(t);
    return id;
  }
  ValueId constant(const Tensor& t) {
    const ValueId id = graph.add_value({"c" + std::to_string(values.size()), t.shape(), true, t});
    values.push_back(t);
    return id;
  }
  // Adds a node, runs it and returns its output's id.
  ValueId node(const std::string& type, std::vector<ValueId> inputs, const Attributes& attributes = {}) {
    Node n;
    n.name = type + std::to_string(graph.nodes().size());
    n.spec.op_type = type;
    n.spec.name = n.name;
    n.spec.opset = 17;
    n.spec.num_inputs = inputs.size();
    n.spec.num_outputs = 1;
    n.spec.input_present.assign(inputs.size(), true);
    n.spec.attributes = attributes;
    n.op = create_op(n.spec);
    std::vector<Tensor> in;
    for (ValueId v : inputs) in.push_back(values[static_cast<size_t>(v)]);
    const Tensor out = n.op->forward(in).at(0);
    const ValueId id = graph.add_value({n.name + "_out", out.shape(), true, {}});
    values.push_back(out);
    n.inputs = std::move(inputs);
    n.outputs = {id};
    graph.add_node(std::move(n));
    return id;
  }
  const Node& producer(ValueId v) const {
    return graph.nodes()[static_cast<size_t>(graph.producers()[static_cast<size_t>(v)])];
  }

  // The relevance the treatment of `v`'s producer sends to its inputs when R arrives at `v`.
  std::vector<Tensor> relevance(ValueId v, const Tensor& r, const RelevanceOptions& options,
                                std::string* description = nullptr) const {
    const Node& n = producer(v);
    const std::optional<InputRange> no_range;
    const auto factory = rules::relevance_treatments().at(graph.role(n));
    const std::unique_ptr<rules::Treatment> treatment = factory({graph, n, nullptr, options, no_range});
    if (description != nullptr) *description = treatment->describe();
    std::vector<Tensor> inputs;
    std::vector<Shape> shapes;
    for (ValueId in : n.inputs) {
      inputs.push_back(values[static_cast<size_t>(in)]);
      shapes.push_back(inputs.back().shape());
    }
    const std::vector<Tensor> outputs{values[static_cast<size_t>(v)]}, grads{r};
    const std::unique_ptr<bool[]> wanted(new bool[n.inputs.size()]);
    for (size_t i = 0; i < n.inputs.size(); ++i) wanted[i] = !graph.value(n.inputs[i]).is_constant();
    const Target target{0};
    const BackwardMapping mapping = treatment->mapping({target});
    const VjpArgs args{inputs, shapes, outputs, grads, std::span<const bool>(wanted.get(), n.inputs.size())};
    return mapping ? mapping(n, args) : n.op->vjp(args);
  }
};

// Each element within float32 rounding of its formula: the treatments compute in float32 over sums of
// at most a dozen terms whose magnitudes are bounded by `scale`; 64 u·scale covers their rounding.
void expect_near_formula(const Tensor& got, const std::vector<double>& expected, double scale,
                         const std::string& what) {
  ASSERT_EQ(got.size(), static_cast<int64_t>(expected.size())) << what;
  const double tolerance = 64.0 * 0x1p-24 * scale;
  for (int64_t i = 0; i < got.size(); ++i)
    EXPECT_NEAR(got[i], expected[static_cast<size_t>(i)], tolerance) << what << " element " << i;
}

double max_abs(const std::vector<double>& v) {
  double m = 0.0;
  for (double x : v) m = std::max(m, std::abs(x));
  return m;
}

TEST(TransformerTreatments, LayerNormRuleHoldsTheStandardDeviation) {
  std::mt19937 rng(3);
  const int64_t rows = 3, n = 6;
  const Tensor x = random_tensor({rows, n}, rng, -2.0f, 2.0f), gamma = random_tensor({n}, rng, 0.5f, 1.5f);
  for (const bool with_shift : {true, false}) {
    SCOPED_TRACE(with_shift ? "with shift" : "without shift");
    const Tensor beta = with_shift ? random_tensor({n}, rng) : Tensor({n});
    TestGraph t;
    const ValueId xi = t.input(x);
    const ValueId y = t.node("LayerNormalization", {xi, t.constant(gamma), t.constant(beta)});
    const Tensor r = random_tensor({rows, n}, rng);
    const Tensor& yv = t.values[static_cast<size_t>(y)];
    std::vector<double> expected(static_cast<size_t>(rows * n));
    double in_sum = 0.0, out_sum = 0.0;
    for (int64_t row = 0; row < rows; ++row) {
      double mean = 0.0, var = 0.0;
      for (int64_t k = 0; k < n; ++k) mean += x[row * n + k] / static_cast<double>(n);
      for (int64_t k = 0; k < n; ++k) var += std::pow(x[row * n + k] - mean, 2) / static_cast<double>(n);
      const double sigma = std::sqrt(var + 1e-5);
      for (int64_t i = 0; i < n; ++i) {
        double sum = 0.0;
        for (int64_t j = 0; j < n; ++j)
          sum += gamma[j] / sigma * ((i == j ? 1.0 : 0.0) - 1.0 / static_cast<double>(n)) * r[row * n + j] /
                 stab(yv[row * n + j]);
        expected[static_cast<size_t>(row * n + i)] = x[row * n + i] * sum;
        in_sum += expected[static_cast<size_t>(row * n + i)];
        out_sum += r[row * n + i];
      }
    }
    std::string description;
    const std::vector<Tensor> back = t.relevance(y, r, {}, &description);
    EXPECT_EQ(description, "LN rule: divisor held constant, proportional split");
    expect_near_formula(back.at(0), expected, max_abs(expected) * n, "LN rule");
    EXPECT_TRUE(back.at(1).empty() && back.at(2).empty());
    // Without the shift the map x → y is linear (σ held), so the rule conserves up to the stabilizer.
    if (!with_shift) {
      EXPECT_NEAR(in_sum, out_sum, 1e-5 * std::abs(out_sum) + 1e-4);
    }
    RelevanceOptions gradient;
    gradient.normalization = NormalizationTreatment::gradient;
    t.relevance(y, r, gradient, &description);
    EXPECT_EQ(description, "gradient (norm=gradient)");
  }
}

// Scores → softmax → P·V, the attention of one head: [t, t] probabilities times [t, d] values.
struct Attention {
  TestGraph t;
  ValueId scores, p, z;
  Tensor r;
  int64_t tokens = 4, dim = 3;
  explicit Attention(std::mt19937& rng) {
    scores = t.input(random_tensor({tokens, tokens}, rng, -2.0f, 2.0f));
    const ValueId v = t.input(random_tensor({tokens, dim}, rng));
    Attributes axis;
    axis.set("axis", int64_t{-1});
    p = t.node("Softmax", {scores}, axis);
    z = t.node("MatMul", {p, v});
    r = random_tensor({tokens, dim}, rng);
  }
  const Tensor& value(ValueId id) const { return t.values[static_cast<size_t>(id)]; }
};

TEST(TransformerTreatments, CpHoldsTheProbabilitiesAndGivesTheValuesEverything) {
  std::mt19937 rng(5);
  Attention a(rng);
  const Tensor &P = a.value(a.p), &V = a.value(a.t.producer(a.z).inputs[1]), &Z = a.value(a.z);
  std::vector<double> expected(static_cast<size_t>(a.tokens * a.dim), 0.0);
  for (int64_t k = 0; k < a.tokens; ++k)
    for (int64_t j = 0; j < a.dim; ++j)
      for (int64_t i = 0; i < a.tokens; ++i)
        expected[static_cast<size_t>(k * a.dim + j)] +=
            P[i * a.tokens + k] * V[k * a.dim + j] * a.r[i * a.dim + j] / stab(Z[i * a.dim + j]);
  std::string description;
  const std::vector<Tensor> back = a.t.relevance(a.z, a.r, {}, &description);
  EXPECT_EQ(description, "signal-take-all: the gate is held constant");
  EXPECT_TRUE(back.at(0).empty()) << "the probabilities got relevance";
  expect_near_formula(back.at(1), expected, max_abs(expected) * a.tokens, "CP-LRP values");
  const std::vector<Tensor> into_scores =
      a.t.relevance(a.p, random_tensor({a.tokens, a.tokens}, rng), {}, &description);
  EXPECT_EQ(description, "held constant (CP-LRP)");
  EXPECT_TRUE(into_scores.at(0).empty());
}

TEST(TransformerTreatments, AttnLrpSplitsProductsInHalvesAndUsesItsSoftmaxRule) {
  std::mt19937 rng(7);
  Attention a(rng);
  RelevanceOptions attnlrp;
  attnlrp.attention = AttentionTreatment::attnlrp;
  const Tensor &P = a.value(a.p), &V = a.value(a.t.producer(a.z).inputs[1]), &Z = a.value(a.z);
  std::vector<double> to_p(static_cast<size_t>(a.tokens * a.tokens), 0.0),
      to_v(static_cast<size_t>(a.tokens * a.dim), 0.0);
  for (int64_t i = 0; i < a.tokens; ++i)
    for (int64_t k = 0; k < a.tokens; ++k)
      for (int64_t j = 0; j < a.dim; ++j) {
        const double share =
            0.5 * P[i * a.tokens + k] * V[k * a.dim + j] * a.r[i * a.dim + j] / stab(Z[i * a.dim + j]);
        to_p[static_cast<size_t>(i * a.tokens + k)] += share;
        to_v[static_cast<size_t>(k * a.dim + j)] += share;
      }
  std::string description;
  const std::vector<Tensor> back = a.t.relevance(a.z, a.r, attnlrp, &description);
  EXPECT_EQ(description, "proportional split, halved between the two factors");
  expect_near_formula(back.at(0), to_p, max_abs(to_p) * a.dim, "AttnLRP probabilities");
  expect_near_formula(back.at(1), to_v, max_abs(to_v) * a.tokens, "AttnLRP values");

  const Tensor r = random_tensor({a.tokens, a.tokens}, rng);
  const Tensor& x = a.value(a.scores);
  std::vector<double> expected(static_cast<size_t>(a.tokens * a.tokens));
  for (int64_t row = 0; row < a.tokens; ++row)
    for (int64_t i = 0; i < a.tokens; ++i) {
      double sum = 0.0;
      for (int64_t j = 0; j < a.tokens; ++j) {
        const double s_j = P[row * a.tokens + j], s_i = P[row * a.tokens + i];
        sum += s_j * ((i == j ? 1.0 : 0.0) - s_i) * r[row * a.tokens + j] / stab(s_j);
      }
      expected[static_cast<size_t>(row * a.tokens + i)] = x[row * a.tokens + i] * sum;
    }
  const std::vector<Tensor> into_scores = a.t.relevance(a.p, r, attnlrp, &description);
  EXPECT_EQ(description, "AttnLRP: x ⊙ (R − s ΣR)");
  expect_near_formula(into_scores.at(0), expected, max_abs(expected) * a.tokens, "AttnLRP softmax");

  RelevanceOptions gradient;
  gradient.attention = AttentionTreatment::gradient;
  a.t.relevance(a.p, r, gradient, &description);
  EXPECT_EQ(description, "gradient (attention=gradient)");
}

TEST(TransformerTreatments, CpRefusesASoftmaxThatIsNotAnAttentionWeight) {
  std::mt19937 rng(9);
  TestGraph t;
  const ValueId p = t.node("Softmax", {t.input(random_tensor({2, 5}, rng))});
  std::string message;
  try {
    t.relevance(p, random_tensor({2, 5}, rng), {});
  } catch (const Error& e) {
    message = e.what();
  }
  EXPECT_NE(message.find("attention=cp"), std::string::npos) << message;
  EXPECT_NE(message.find(":gradient"), std::string::npos) << message;
  RelevanceOptions attnlrp;
  attnlrp.attention = AttentionTreatment::attnlrp;
  EXPECT_NO_THROW(t.relevance(p, random_tensor({2, 5}, rng), attnlrp));
}

TEST(TransformerTreatments, SigmoidGatesGetNoRelevanceUnlessHalved) {
  for (const std::string gate_type : {"Sigmoid", "HardSigmoid"}) {
    SCOPED_TRACE(gate_type);
    std::mt19937 rng(11);
    TestGraph t;
    const ValueId x = t.input(random_tensor({2, 6}, rng, -2.0f, 2.0f));
    const ValueId gate = t.node(gate_type, {t.input(random_tensor({2, 6}, rng, -3.0f, 3.0f))});
    // The gate reaches the product through a reshape, as squeeze-excitation blocks' gates do.
    const ValueId shaped = t.node("Reshape", {gate, t.constant(Tensor({2}, std::vector<float>{2.0f, 6.0f}))});
    const ValueId z = t.node("Mul", {x, shaped});
    const Tensor r = random_tensor({2, 6}, rng);
    const Tensor &xv = t.values[static_cast<size_t>(x)], &gv = t.values[static_cast<size_t>(gate)],
                 &zv = t.values[static_cast<size_t>(z)];
    std::vector<double> all(12), half(12);
    for (int64_t i = 0; i < 12; ++i) {
      all[static_cast<size_t>(i)] = xv[i] * gv[i] * r[i] / stab(zv[i]);
      half[static_cast<size_t>(i)] = 0.5 * all[static_cast<size_t>(i)];
    }
    std::string description;
    std::vector<Tensor> back = t.relevance(z, r, {}, &description);
    EXPECT_EQ(description, "signal-take-all: the gate is held constant");
    expect_near_formula(back.at(0), all, max_abs(all), "signal");
    EXPECT_TRUE(back.at(1).empty()) << "the gate got relevance";
    RelevanceOptions halved;
    halved.gate = GateTreatment::half;
    back = t.relevance(z, r, halved, &description);
    EXPECT_EQ(description, "proportional split, halved between the two factors");
    expect_near_formula(back.at(0), half, max_abs(half), "half, signal");
    expect_near_formula(back.at(1), half, max_abs(half), "half, gate");
  }
}

// f'(x) in closed form.
double derivative(const std::string& type, double x) {
  const double sigmoid = 1.0 / (1.0 + std::exp(-x));
  if (type == "Gelu")
    return 0.5 * (1.0 + std::erf(x / std::sqrt(2.0))) +
           x * std::exp(-x * x / 2.0) / std::sqrt(2.0 * std::numbers::pi);
  if (type == "SiLU") return sigmoid * (1.0 + x * (1.0 - sigmoid));
  if (type == "HardSwish") return x < -3.0 ? 0.0 : x > 3.0 ? 1.0 : x / 3.0 + 0.5;
  if (type == "Tanh") return 1.0 - std::tanh(x) * std::tanh(x);
  return sigmoid * (1.0 - sigmoid);
}

TEST(TransformerTreatments, ActivationsPassRelevanceOrTakeTheLocalGradientTimesInput) {
  std::mt19937 rng(13);
  for (const std::string type : {"Gelu", "SiLU", "HardSwish", "Tanh", "Sigmoid"}) {
    SCOPED_TRACE(type);
    TestGraph t;
    const ValueId x = t.input(random_tensor({2, 7}, rng, -3.0f, 3.0f));
    const ValueId y = t.node(type, {x});
    const Tensor r = random_tensor({2, 7}, rng);
    std::string description;
    const std::vector<Tensor> passed = t.relevance(y, r, {}, &description);
    EXPECT_EQ(description, "pass");
    ASSERT_EQ(passed.at(0).shape(), r.shape());
    for (int64_t i = 0; i < r.size(); ++i) EXPECT_EQ(passed.at(0)[i], r[i]);

    RelevanceOptions gradient;
    gradient.activation = ActivationTreatment::gradient;
    const std::vector<Tensor> back = t.relevance(y, r, gradient, &description);
    EXPECT_EQ(description, "local gradient × input");
    const Tensor &xv = t.values[static_cast<size_t>(x)], &yv = t.values[static_cast<size_t>(y)];
    std::vector<double> expected(static_cast<size_t>(r.size()));
    for (int64_t i = 0; i < r.size(); ++i)
      expected[static_cast<size_t>(i)] = xv[i] * derivative(type, xv[i]) * r[i] / stab(yv[i]);
    expect_near_formula(back.at(0), expected, max_abs(expected), "local gradient × input");
  }
}

}  // namespace
}  // namespace sieve
