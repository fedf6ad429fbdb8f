// LSTM, GRU and RNN: the forward pass against a direct transcription of the ONNX equations in double
// (one row and one direction at a time, scalar loops), and the vector-Jacobian product for every
// differentiable input against central finite differences of ⟨Y, ȳ⟩ + ⟨Y_h, ȳ_h⟩ + ⟨Y_c, ȳ_c⟩, over
// directions, layouts, initial states, peepholes, clipping, input_forget, linear_before_reset,
// sequence_lens and the activation functions.

#include "ops/recurrent.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <random>
#include <set>

#include "sieve/error.hpp"
#include "sieve/op.hpp"
#include "sieve/op_spec.hpp"
#include "support/errors.hpp"
#include "support/op_specs.hpp"

namespace sieve {
namespace {

struct Config {
  std::string label = {}, type = {};
  int64_t steps = 3, batch = 2, input_size = 3, hidden = 2;
  std::string direction = "forward";
  int64_t layout = 0;
  std::vector<std::string> activations = {};  // empty: the defaults
  std::vector<float> alphas = {}, betas = {};
  float clip = 0.0f;
  bool input_forget = false, linear_before_reset = false;
  std::vector<int64_t> lengths = {};  // empty: no sequence_lens
  bool bias = true, initial_h = false, initial_c = false, peepholes = false;
  double step = 1e-2;  // finite-difference step; 2e-3 where a kink (Relu, HardSigmoid, clip) is near

  int64_t gates() const { return type == "LSTM" ? 4 : type == "GRU" ? 3 : 1; }
  int64_t directions() const { return direction == "bidirectional" ? 2 : 1; }
  size_t max_inputs() const { return type == "LSTM" ? 8 : 6; }
};

OpSpec spec_of(const Config& c) {
  OpSpec s = op_spec(c.type, c.max_inputs(), c.layout != 0 ? 14 : 7, c.type == "LSTM" ? 3 : 2);
  s.attributes.set("hidden_size", c.hidden);
  s.attributes.set("direction", c.direction);
  if (c.layout != 0) s.attributes.set("layout", c.layout);
  if (!c.activations.empty()) s.attributes.set("activations", c.activations);
  if (!c.alphas.empty()) s.attributes.set("activation_alpha", c.alphas);
  if (!c.betas.empty()) s.attributes.set("activation_beta", c.betas);
  if (c.clip > 0.0f) s.attributes.set("clip", c.clip);
  if (c.input_forget) s.attributes.set("input_forget", int64_t{1});
  if (c.linear_before_reset) s.attributes.set("linear_before_reset", int64_t{1});
  return s;
}

Tensor random_tensor(const Shape& shape, std::mt19937& rng, float scale) {
  Tensor t = Tensor::uninitialized(shape);
  std::normal_distribution<float> normal(0.0f, scale);
  for (float& v : t.values()) v = normal(rng);
  return t;
}

// X, W, R, B, sequence_lens, initial_h[, initial_c, P] (empty tensors for the absent ones).
std::vector<Tensor> inputs_of(const Config& c, std::mt19937& rng) {
  const int64_t D = c.directions(), gh = c.gates() * c.hidden;
  const Shape sequence =
      c.layout == 0 ? Shape{c.steps, c.batch, c.input_size} : Shape{c.batch, c.steps, c.input_size};
  const Shape state = c.layout == 0 ? Shape{D, c.batch, c.hidden} : Shape{c.batch, D, c.hidden};
  std::vector<Tensor> in(c.max_inputs());
  in[0] = random_tensor(sequence, rng, 1.0f);
  in[1] = random_tensor({D, gh, c.input_size}, rng, 0.5f);
  in[2] = random_tensor({D, gh, c.hidden}, rng, 0.5f);
  if (c.bias) in[3] = random_tensor({D, 2 * gh}, rng, 0.5f);
  if (!c.lengths.empty()) {
    in[4] = Tensor::uninitialized({c.batch});
    for (int64_t n = 0; n < c.batch; ++n) in[4][n] = static_cast<float>(c.lengths[static_cast<size_t>(n)]);
  }
  if (c.initial_h) in[5] = random_tensor(state, rng, 0.5f);
  if (c.initial_c) in[6] = random_tensor(state, rng, 0.5f);
  if (c.peepholes) in[7] = random_tensor({D, 3 * c.hidden}, rng, 0.5f);
  return in;
}

// The ONNX activation functions in double, with the alphas and betas consumed in list order.
struct Activation {
  std::string name;
  double alpha = 0.0, beta = 0.0;
  double operator()(double x) const {
    if (name == "Sigmoid") return 1.0 / (1.0 + std::exp(-x));
    if (name == "Tanh") return std::tanh(x);
    if (name == "Relu") return std::max(x, 0.0);
    if (name == "Affine") return alpha * x + beta;
    if (name == "LeakyRelu") return x >= 0 ? x : alpha * x;
    if (name == "ThresholdedRelu") return x >= alpha ? x : 0.0;
    if (name == "ScaledTanh") return alpha * std::tanh(beta * x);
    if (name == "HardSigmoid") return std::min(std::max(alpha * x + beta, 0.0), 1.0);
    if (name == "Elu") return x >= 0 ? x : alpha * (std::exp(x) - 1.0);
    if (name == "Softsign") return x / (1.0 + std::abs(x));
    if (name == "Softplus") return std::log(1.0 + std::exp(x));
    throw Error("no reference for " + name);
  }
};

std::vector<Activation> activations_of(const Config& c) {
  std::vector<std::string> names = c.activations;
  if (names.empty()) {
    const std::vector<std::string> defaults = c.type == "LSTM"
                                                  ? std::vector<std::string>{"Sigmoid", "Tanh", "Tanh"}
                                              : c.type == "GRU" ? std::vector<std::string>{"Sigmoid", "Tanh"}
                                                                : std::vector<std::string>{"Tanh"};
    for (int64_t d = 0; d < c.directions(); ++d) names.insert(names.end(), defaults.begin(), defaults.end());
  }
  const std::map<std::string, std::pair<double, double>> defaults{
      {"Affine", {1.0, 0.0}},     {"LeakyRelu", {0.01, 0.0}},  {"ThresholdedRelu", {1.0, 0.0}},
      {"ScaledTanh", {1.0, 1.0}}, {"HardSigmoid", {0.2, 0.5}}, {"Elu", {1.0, 0.0}}};
  const std::set<std::string> with_beta{"Affine", "ScaledTanh", "HardSigmoid"};
  std::vector<Activation> out;
  size_t next_alpha = 0, next_beta = 0;
  for (const std::string& name : names) {
    Activation a{name};
    if (const auto it = defaults.find(name); it != defaults.end()) {
      a.alpha = next_alpha < c.alphas.size() ? c.alphas[next_alpha++] : it->second.first;
      if (with_beta.count(name))
        a.beta = next_beta < c.betas.size() ? c.betas[next_beta++] : it->second.second;
    }
    out.push_back(a);
  }
  return out;
}

// Y, Y_h (and Y_c for LSTM) in the node's layout, from the ONNX equations.
std::vector<std::vector<double>> reference(const Config& c, const std::vector<Tensor>& in) {
  const int64_t T = c.steps, N = c.batch, I = c.input_size, H = c.hidden, D = c.directions(), G = c.gates();
  const std::vector<Activation> acts = activations_of(c);
  const size_t per_direction = acts.size() / static_cast<size_t>(D);
  std::vector<double> y(static_cast<size_t>(T * D * N * H), 0.0), y_h(static_cast<size_t>(D * N * H)),
      y_c(static_cast<size_t>(D * N * H));
  const auto x = [&](int64_t t, int64_t n, int64_t i) {
    return static_cast<double>(in[0][c.layout == 0 ? (t * N + n) * I + i : (n * T + t) * I + i]);
  };
  const auto state_index = [&](int64_t d, int64_t n, int64_t j) {
    return c.layout == 0 ? (d * N + n) * H + j : (n * D + d) * H + j;
  };
  const auto y_index = [&](int64_t t, int64_t d, int64_t n, int64_t j) {
    return c.layout == 0 ? ((t * D + d) * N + n) * H + j : ((n * T + t) * D + d) * H + j;
  };
  const auto clipped = [&](double z) {
    return c.clip > 0 ? std::clamp(z, -double{c.clip}, double{c.clip}) : z;
  };
  for (int64_t d = 0; d < D; ++d) {
    const Activation* f = &acts[static_cast<size_t>(d) * per_direction];
    const bool reverse = c.direction == "reverse" || d == 1;
    // Gate k's pre-activation from x_t (with Wb) and from a hidden vector (with Rb).
    const auto from_x = [&](int64_t k, int64_t j, int64_t t, int64_t n) {
      double s = in[3].empty() ? 0.0 : in[3][d * 2 * G * H + k * H + j];
      for (int64_t i = 0; i < I; ++i) s += in[1][(d * G * H + k * H + j) * I + i] * x(t, n, i);
      return s;
    };
    const auto from_h = [&](int64_t k, int64_t j, const std::vector<double>& h) {
      double s = in[3].empty() ? 0.0 : in[3][d * 2 * G * H + G * H + k * H + j];
      for (int64_t m = 0; m < H; ++m) s += in[2][(d * G * H + k * H + j) * H + m] * h[static_cast<size_t>(m)];
      return s;
    };
    for (int64_t n = 0; n < N; ++n) {
      const int64_t length = c.lengths.empty() ? T : c.lengths[static_cast<size_t>(n)];
      std::vector<double> h(static_cast<size_t>(H)), cell(static_cast<size_t>(H));
      for (int64_t j = 0; j < H; ++j) {
        if (!in[5].empty()) h[static_cast<size_t>(j)] = in[5][state_index(d, n, j)];
        if (in.size() > 6 && !in[6].empty()) cell[static_cast<size_t>(j)] = in[6][state_index(d, n, j)];
      }
      for (int64_t s = 0; s < length; ++s) {
        const int64_t t = reverse ? length - 1 - s : s;
        std::vector<double> next(static_cast<size_t>(H)), next_cell(static_cast<size_t>(H));
        for (int64_t j = 0; j < H; ++j) {
          const size_t u = static_cast<size_t>(j);
          const auto p = [&](int64_t k) {
            return in[7].empty() ? 0.0 : double{in[7][d * 3 * H + k * H + j]};
          };
          if (c.type == "LSTM") {  // gates i, o, f, c; peepholes i, o, f
            const double i_gate = f[0](clipped(from_x(0, j, t, n) + from_h(0, j, h) + p(0) * cell[u]));
            const double f_gate = c.input_forget
                                      ? 1.0 - i_gate
                                      : f[0](clipped(from_x(2, j, t, n) + from_h(2, j, h) + p(2) * cell[u]));
            const double candidate = f[1](clipped(from_x(3, j, t, n) + from_h(3, j, h)));
            next_cell[u] = f_gate * cell[u] + i_gate * candidate;
            const double o_gate = f[0](clipped(from_x(1, j, t, n) + from_h(1, j, h) + p(1) * next_cell[u]));
            next[u] = o_gate * f[2](next_cell[u]);
          } else if (c.type == "GRU") {  // gates z, r, h
            const double z = f[0](clipped(from_x(0, j, t, n) + from_h(0, j, h)));
            double h_input;
            if (c.linear_before_reset) {
              const double r = f[0](clipped(from_x(1, j, t, n) + from_h(1, j, h)));
              h_input = from_x(2, j, t, n) + r * from_h(2, j, h);
            } else {
              std::vector<double> reset(static_cast<size_t>(H));
              for (int64_t m = 0; m < H; ++m)
                reset[static_cast<size_t>(m)] =
                    f[0](clipped(from_x(1, m, t, n) + from_h(1, m, h))) * h[static_cast<size_t>(m)];
              h_input = from_x(2, j, t, n) + from_h(2, j, reset);
            }
            next[u] = (1.0 - z) * f[1](clipped(h_input)) + z * h[u];
          } else {
            next[u] = f[0](clipped(from_x(0, j, t, n) + from_h(0, j, h)));
          }
        }
        h = next;
        cell = next_cell;
        for (int64_t j = 0; j < H; ++j)
          y[static_cast<size_t>(y_index(t, d, n, j))] = h[static_cast<size_t>(j)];
      }
      for (int64_t j = 0; j < H; ++j) {
        y_h[static_cast<size_t>(state_index(d, n, j))] = h[static_cast<size_t>(j)];
        y_c[static_cast<size_t>(state_index(d, n, j))] = cell[static_cast<size_t>(j)];
      }
    }
  }
  std::vector<std::vector<double>> out{y, y_h};
  if (c.type == "LSTM") out.push_back(y_c);
  return out;
}

std::vector<Config> configs() {
  std::vector<Config> v;
  v.push_back({.label = "lstm_forward", .type = "LSTM"});
  v.push_back({.label = "lstm_bidirectional_states_peepholes_lengths",
               .type = "LSTM",
               .batch = 3,
               .direction = "bidirectional",
               .lengths = {3, 1, 2},
               .initial_h = true,
               .initial_c = true,
               .peepholes = true});
  v.push_back({.label = "lstm_layout1_reverse_lengths",
               .type = "LSTM",
               .direction = "reverse",
               .layout = 1,
               .lengths = {2, 3},
               .initial_h = true,
               .initial_c = true,
               .peepholes = true});
  v.push_back({.label = "lstm_clip_input_forget",
               .type = "LSTM",
               .clip = 0.7f,
               .input_forget = true,
               .initial_c = true,
               .step = 2e-3});
  v.push_back({.label = "lstm_activations",
               .type = "LSTM",
               .direction = "bidirectional",
               .layout = 1,
               .activations = {"HardSigmoid", "ScaledTanh", "Softsign", "Sigmoid", "Elu", "Affine"},
               .alphas = {0.3f, 0.9f, 0.8f, 1.1f},
               .betas = {0.4f, 1.2f, -0.2f},
               .step = 2e-3});
  v.push_back({.label = "gru_forward", .type = "GRU"});
  v.push_back({.label = "gru_linear_before_reset_bidirectional_lengths",
               .type = "GRU",
               .batch = 3,
               .direction = "bidirectional",
               .linear_before_reset = true,
               .lengths = {1, 3, 2},
               .initial_h = true});
  v.push_back({.label = "gru_layout1_reverse_clip",
               .type = "GRU",
               .direction = "reverse",
               .layout = 1,
               .clip = 0.8f,
               .initial_h = true,
               .step = 2e-3});
  v.push_back({.label = "gru_linear_before_reset_layout1_activations",
               .type = "GRU",
               .layout = 1,
               .activations = {"Sigmoid", "Softplus"},
               .linear_before_reset = true,
               .lengths = {3, 2}});
  v.push_back({.label = "rnn_forward_initial_h", .type = "RNN", .initial_h = true});
  v.push_back({.label = "rnn_bidirectional_relu_layout1_lengths",
               .type = "RNN",
               .direction = "bidirectional",
               .layout = 1,
               .activations = {"Relu", "LeakyRelu"},
               .alphas = {0.2f},
               .lengths = {3, 2},
               .step = 2e-3});
  v.push_back({.label = "rnn_reverse_thresholded_relu_clip_no_bias",
               .type = "RNN",
               .direction = "reverse",
               .activations = {"ThresholdedRelu"},
               .alphas = {0.1f},
               .clip = 1.5f,
               .bias = false,
               .initial_h = true,
               .step = 2e-3});
  return v;
}

TEST(Recurrent, ForwardMatchesTheOnnxEquations) {
  std::mt19937 rng(3);
  for (const Config& c : configs()) {
    SCOPED_TRACE(c.label);
    const std::vector<Tensor> in = inputs_of(c, rng);
    const std::vector<Tensor> out = create_op(spec_of(c))->forward(in);
    const std::vector<std::vector<double>> expected = reference(c, in);
    ASSERT_EQ(out.size(), expected.size());
    for (size_t k = 0; k < out.size(); ++k) {
      ASSERT_EQ(static_cast<size_t>(out[k].size()), expected[k].size()) << "output " << k;
      // A pre-activation sums n = I + H + 2 ≤ 7 terms of O(1) (weights of scale 0.5, |h| ≤ 1): off by
      // γ_7·Σ|terms| ≲ 7u·5 ≈ 2e-6 in float32, plus an ulp from each activation. A step passes its input's
      // error on scaled by at most Σ_m |R_jm|·max slope ≈ 2·0.5·1.2 < 2 per step, so three steps stay
      // below 2e-6·(1 + 2 + 4) ≈ 1.5e-5 of O(1) values.
      for (size_t i = 0; i < expected[k].size(); ++i)
        EXPECT_NEAR(out[k][static_cast<int64_t>(i)], expected[k][i], 2e-5 * (1.0 + std::abs(expected[k][i])))
            << "output " << k << " element " << i;
    }
  }
}

double dot(const Tensor& a, const Tensor& b) {
  double s = 0.0;
  for (int64_t i = 0; i < a.size(); ++i) s += static_cast<double>(a[i]) * b[i];
  return s;
}

TEST(Recurrent, VjpMatchesFiniteDifferences) {
  std::mt19937 rng(5);
  for (const Config& c : configs()) {
    SCOPED_TRACE(c.label);
    const std::unique_ptr<Op> op = create_op(spec_of(c));
    const std::vector<Tensor> in = inputs_of(c, rng);
    const std::vector<Tensor> out = op->forward(in);
    std::vector<Tensor> seeds;
    for (const Tensor& o : out) seeds.push_back(random_tensor(o.shape(), rng, 1.0f));
    const auto objective = [&](const std::vector<Tensor>& values) {
      const std::vector<Tensor> moved = op->forward(values);
      double s = 0.0;
      for (size_t k = 0; k < moved.size(); ++k) s += dot(moved[k], seeds[k]);
      return s;
    };
    std::vector<Shape> shapes;
    for (const Tensor& t : in) shapes.push_back(t.shape());
    // Every present input but sequence_lens.
    std::unique_ptr<bool[]> wanted(new bool[in.size()]);
    for (size_t i = 0; i < in.size(); ++i) wanted[i] = !in[i].empty() && i != 4;
    const VjpArgs args{in, shapes, out, seeds, std::span<const bool>(wanted.get(), in.size())};
    const std::vector<Tensor> grads = op->vjp(args);
    ASSERT_EQ(grads.size(), in.size());
    for (size_t i = 0; i < in.size(); ++i) {
      if (!wanted[i]) continue;
      ASSERT_EQ(grads[i].shape(), in[i].shape()) << "input " << i;
      const Tensor d = random_tensor(in[i].shape(), rng, 1.0f);
      const auto shifted = [&](double steps) {
        std::vector<Tensor> moved = in;
        moved[i] = in[i].clone();
        for (int64_t j = 0; j < d.size(); ++j) moved[i][j] += static_cast<float>(steps * c.step) * d[j];
        return objective(moved);
      };
      // The five-point central difference: its truncation error is h⁴/30·|∂⁵⟨outputs, ȳ⟩|, under 1e-8 of
      // O(1) values at h ≤ 1e-2, where three steps through the gates compound the three-point rule's
      // h²/6·|∂³| to several 1e-4 for directions in W.
      const double numeric =
          (8.0 * (shifted(1.0) - shifted(-1.0)) - (shifted(2.0) - shifted(-2.0))) / (12.0 * c.step);
      const double analytic = dot(grads[i], d);
      // What remains is the float32 rounding of the four objectives, weighted (8 + 8 + 1 + 1)/12h = 1.5/h.
      // The objective sums at most T·D·N·H + 2·D·N·H = 54 outputs, each off by ≲ 1.5e-5 in the worst
      // case (the forward test's bound) but by √n·u per step with independently rounded terms (≈ 3e-7
      // over three steps); over random ȳ that is √54·3e-7 ≈ 2e-6, so 3e-4 at h = 1e-2 and 1.5e-3 at
      // h = 2e-3 (near kinks), of O(1) values: under 2e-3·(1 + |numeric|).
      EXPECT_NEAR(analytic, numeric, 2e-3 * (std::abs(numeric) + 1.0)) << "input " << i;
    }
  }
}

TEST(Recurrent, TraceHoldsTheLstmInternals) {
  std::mt19937 rng(9);
  const Config c = configs()[1];  // bidirectional with peepholes, initial states and sequence lengths
  const std::unique_ptr<Op> op = create_op(spec_of(c));
  const std::vector<Tensor> in = inputs_of(c, rng);
  const ops::LstmTrace trace = ops::lstm_trace(*op, in);
  ASSERT_EQ(trace.directions.size(), 2u);
  const int64_t H = c.hidden, N = c.batch;
  const std::vector<Tensor> out = op->forward(in);
  for (size_t k = 0; k < out.size(); ++k)
    for (int64_t i = 0; i < out[k].size(); ++i) EXPECT_EQ(trace.outputs[k][i], out[k][i]);
  for (const ops::LstmDirectionTrace& d : trace.directions) {
    for (int64_t n = 0; n < N; ++n) {
      for (int64_t t = 0; t < trace.sequence_lengths[static_cast<size_t>(n)]; ++t) {
        const int64_t previous = d.reverse ? t + 1 : t - 1;
        const bool first = previous < 0 || previous >= trace.sequence_lengths[static_cast<size_t>(n)];
        for (int64_t j = 0; j < H; ++j) {
          const int64_t row = (t * N + n) * 4 * H;
          const float i_gate = d.gates[row + j], o_gate = d.gates[row + H + j];
          const float f_gate = d.gates[row + 2 * H + j], candidate = d.gates[row + 3 * H + j];
          const float c_prev = first ? d.initial_cell[n * H + j] : d.cell[(previous * N + n) * H + j];
          const float cell = d.cell[(t * N + n) * H + j];
          // The recurrences the trace documents, each one float32 operation away.
          EXPECT_NEAR(cell, f_gate * c_prev + i_gate * candidate, 1e-6f * (1.0f + std::abs(cell)));
          EXPECT_NEAR(d.hidden[(t * N + n) * H + j], o_gate * std::tanh(cell), 1e-6f);
          EXPECT_NEAR(i_gate, 1.0f / (1.0f + std::exp(-d.gate_inputs[row + j])), 1e-6f);
        }
      }
    }
  }
  EXPECT_THROW(ops::lstm_trace(*create_op(op_spec("Relu", 1)), in), Error);
}

// The error `f` throws names every one of `parts`.
template <class F>
void expect_error(F f, const std::vector<std::string>& parts) {
  const std::string message = error_of(f);
  for (const std::string& part : parts) EXPECT_NE(message.find(part), std::string::npos) << message;
}

TEST(Recurrent, BadNodesAreRefusedNamingNodeAndOp) {
  OpSpec s = spec_of({.label = "", .type = "LSTM"});
  s.attributes.set("activations", std::vector<std::string>{"Sigmoid", "Cosh", "Tanh"});
  expect_error([&] { create_op(s); }, {"LSTM", "unsupported activation 'Cosh'"});
  s = spec_of({.label = "", .type = "GRU"});
  s.attributes.set("direction", std::string("sideways"));
  expect_error([&] { create_op(s); }, {"GRU", "unknown direction 'sideways'"});
  s = spec_of({.label = "", .type = "RNN"});
  s.attributes.set("activations", std::vector<std::string>{"Tanh", "Tanh", "Tanh"});
  expect_error([&] { create_op(s); }, {"RNN", "activations lists 3 functions, expected 1"});

  std::mt19937 rng(1);
  const Config c{.label = "", .type = "LSTM"};
  std::vector<Tensor> in = inputs_of(c, rng);
  OpSpec wrong_hidden = spec_of(c);
  wrong_hidden.attributes.set("hidden_size", int64_t{3});
  expect_error([&] { create_op(wrong_hidden)->forward(in); },
               {"node 'LSTM' (LSTM", "W of shape [1,8,3] does not match", "hidden_size 3"});
  in[3] = Tensor(Shape{1, 7});
  expect_error([&] { create_op(spec_of(c))->forward(in); }, {"LSTM", "B of shape [1,7]"});
  in[3] = Tensor();
  in[4] = Tensor(Shape{2}, std::vector<float>{3, 4});
  expect_error([&] { create_op(spec_of(c))->forward(in); }, {"LSTM", "sequence_lens holds 4"});
  in[4] = Tensor();
  in[5] = Tensor(Shape{2, 1, 2});  // layout 1's shape under layout 0
  expect_error(
      [&] { create_op(spec_of(c))->forward(in); },
      {"LSTM", "initial_h of shape [2,1,2] does not match [num_directions, batch, hidden_size] = [1,2,2]"});
  in[5] = Tensor();
  in[0] = Tensor(Shape{3, 3});
  expect_error([&] { create_op(spec_of(c))->forward(in); }, {"LSTM", "X of shape [3,3] must have rank 3"});
}

}  // namespace
}  // namespace sieve
