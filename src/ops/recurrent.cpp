// LSTM, GRU and RNN. The input projection x_t·Wᵀ of all time steps is one matrix product; the recurrent
// one h_{t−1}·Rᵀ runs once per step for the whole batch. Gradients are backpropagation through time over
// a forward trace recomputed from the inputs (the op's outputs alone do not hold the gates).
//
// Everything runs in the canonical layout 0 ([T, N, ·] sequences, [D, N, H] states); layout 1 is
// transposed at the op's boundary.

#include "ops/recurrent.hpp"

#include <Eigen/Core>
#include <algorithm>
#include <cctype>
#include <cmath>
#include <map>

#include "ops/common.hpp"
#include "ops/factories.hpp"
#include "sieve/error.hpp"
#include "sieve/op_spec.hpp"

namespace sieve::ops {

float CellActivation::value(float x) const {
  switch (kind) {
    case Kind::relu:
      return x > 0.0f ? x : 0.0f;
    case Kind::tanh:
      return std::tanh(x);
    case Kind::sigmoid:
      return 1.0f / (1.0f + std::exp(-x));
    case Kind::affine:
      return alpha * x + beta;
    case Kind::leaky_relu:
      return x >= 0.0f ? x : alpha * x;
    case Kind::thresholded_relu:
      return x >= alpha ? x : 0.0f;
    case Kind::scaled_tanh:
      return alpha * std::tanh(beta * x);
    case Kind::hard_sigmoid:
      return std::clamp(alpha * x + beta, 0.0f, 1.0f);
    case Kind::elu:
      return x >= 0.0f ? x : alpha * std::expm1(x);
    case Kind::softsign:
      return x / (1.0f + std::abs(x));
    case Kind::softplus:
      return x > 0.0f ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x));
  }
  throw Error("unknown recurrent activation");
}

float CellActivation::derivative(float x) const {
  switch (kind) {
    case Kind::relu:
      return x > 0.0f ? 1.0f : 0.0f;
    case Kind::tanh: {
      const float t = std::tanh(x);
      return 1.0f - t * t;
    }
    case Kind::sigmoid:
    case Kind::softplus: {
      const float s = 1.0f / (1.0f + std::exp(-x));
      return kind == Kind::sigmoid ? s * (1.0f - s) : s;
    }
    case Kind::affine:
      return alpha;
    case Kind::leaky_relu:
      return x >= 0.0f ? 1.0f : alpha;
    case Kind::thresholded_relu:
      return x >= alpha ? 1.0f : 0.0f;
    case Kind::scaled_tanh: {
      const float t = std::tanh(beta * x);
      return alpha * beta * (1.0f - t * t);
    }
    case Kind::hard_sigmoid: {
      const float y = alpha * x + beta;
      return y > 0.0f && y < 1.0f ? alpha : 0.0f;
    }
    case Kind::elu:
      return x >= 0.0f ? 1.0f : alpha * std::exp(x);
    case Kind::softsign: {
      const float d = 1.0f + std::abs(x);
      return 1.0f / (d * d);
    }
  }
  throw Error("unknown recurrent activation");
}

namespace {

using Matrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using ConstMatrixMap = Eigen::Map<const Matrix>;
using RowVector = Eigen::Matrix<float, 1, Eigen::Dynamic>;

ConstMatrixMap matrix_of(const float* data, int64_t rows, int64_t cols) {
  return ConstMatrixMap(data, static_cast<Eigen::Index>(rows), static_cast<Eigen::Index>(cols));
}
ConstMatrixMap matrix_of(const Tensor& t, int64_t rows, int64_t cols) {
  return matrix_of(t.data(), rows, cols);
}
Tensor tensor_of(const Matrix& m, Shape shape) {
  return Tensor(std::move(shape), std::span<const float>(m.data(), static_cast<size_t>(m.size())));
}

// t viewed as [a, b, rest] with its two leading axes exchanged: [b, a, rest], given as `shape`.
Tensor swapped_leading_axes(const Tensor& t, int64_t a, int64_t b, Shape shape) {
  Tensor out = Tensor::uninitialized(std::move(shape));
  const int64_t rest = a * b == 0 ? 0 : t.size() / (a * b);
  for (int64_t i = 0; i < a; ++i)
    for (int64_t j = 0; j < b; ++j)
      std::copy_n(t.data() + (i * b + j) * rest, rest, out.data() + (j * a + i) * rest);
  return out;
}
// A rank-3 tensor [a, b, c] as [b, a, c]: layout 1 ↔ layout 0 for X and the states.
Tensor swapped_leading_axes(const Tensor& t) {
  return swapped_leading_axes(t, t.dim(0), t.dim(1), {t.dim(1), t.dim(0), t.dim(2)});
}

struct ActivationName {
  CellActivation::Kind kind;
  bool takes_alpha, takes_beta;
  float alpha, beta;
};

const std::map<std::string, ActivationName>& activation_names() {
  using K = CellActivation::Kind;
  static const std::map<std::string, ActivationName> names{
      {"relu", {K::relu, false, false, 0.0f, 0.0f}},
      {"tanh", {K::tanh, false, false, 0.0f, 0.0f}},
      {"sigmoid", {K::sigmoid, false, false, 0.0f, 0.0f}},
      {"affine", {K::affine, true, true, 1.0f, 0.0f}},
      {"leakyrelu", {K::leaky_relu, true, false, 0.01f, 0.0f}},
      {"thresholdedrelu", {K::thresholded_relu, true, false, 1.0f, 0.0f}},
      {"scaledtanh", {K::scaled_tanh, true, true, 1.0f, 1.0f}},
      {"hardsigmoid", {K::hard_sigmoid, true, true, 0.2f, 0.5f}},
      {"elu", {K::elu, true, false, 1.0f, 0.0f}},
      {"softsign", {K::softsign, false, false, 0.0f, 0.0f}},
      {"softplus", {K::softplus, false, false, 0.0f, 0.0f}},
  };
  return names;
}

// The inputs in layout 0, validated against the attributes.
struct Sequence {
  int64_t steps = 0, batch = 0, input_size = 0, hidden = 0, directions = 0;
  Tensor x;           // [T, N, I]
  Tensor w, r, b, p;  // as given ([D, G·H, I], [D, G·H, H], [D, 2·G·H] or empty, [D, 3H] or empty)
  Tensor initial_h, initial_c;   // [D, N, H] or empty
  std::vector<int64_t> lengths;  // per row
  int64_t longest = 0;

  // The time step row n processes at step s of a direction, or −1 once its sequence has ended.
  int64_t time_at(bool reverse, int64_t s, int64_t n) const {
    const int64_t length = lengths[static_cast<size_t>(n)];
    if (s >= length) return -1;
    return reverse ? length - 1 - s : s;
  }
  // The time step processed before t by row n, or −1 when t is its first.
  int64_t previous_time(bool reverse, int64_t t, int64_t n) const {
    return reverse ? (t + 1 < lengths[static_cast<size_t>(n)] ? t + 1 : -1) : t - 1;
  }
  // The time step whose state is the row's final one.
  int64_t last_time(bool reverse, int64_t n) const {
    return reverse ? 0 : lengths[static_cast<size_t>(n)] - 1;
  }
  // Block d of a [D, ...] parameter.
  static const float* block(const Tensor& t, int64_t d) { return t.data() + d * (t.size() / t.dim(0)); }
};

// What one direction's backward pass hands to the common part (parameter and input gradients).
struct DirectionGradient {
  Matrix d_projection;  // [T·N, G·H]: gradient at x_t·Wᵀ + Wb, per step and row (zero past the sequence)
  RowVector d_recurrent_bias;       // [G·H]
  Matrix d_r;                       // [G·H, H]
  Matrix d_initial_h, d_initial_c;  // [N, H]
  RowVector d_peephole;             // [3H] (LSTM)
};

// The gradients arriving at Y, Y_h, Y_c in layout 0 ([T, D, N, H], [D, N, H]); empty where none arrived.
struct OutputGradients {
  Tensor y, y_h, y_c;
  // ∂/∂h_t of Y for direction d, row n (nullptr without a gradient at Y).
  const float* at_y(const Sequence& q, int64_t t, int64_t d, int64_t n) const {
    return y.empty() ? nullptr : y.data() + ((t * q.directions + d) * q.batch + n) * q.hidden;
  }
  static Matrix state(const Tensor& g, const Sequence& q, int64_t d) {
    if (g.empty()) return Matrix::Zero(q.batch, q.hidden);
    return matrix_of(Sequence::block(g, d), q.batch, q.hidden);
  }
};

// What LSTM, GRU and RNN share: attributes, input validation, the layouts of inputs and outputs, the
// input projection and the parameter gradients that follow from the per-step gradients.
class RecurrentOp : public Op {
 public:
  RecurrentOp(const OpSpec& spec, int64_t gates, std::vector<std::string> default_activations,
              size_t max_inputs, size_t max_outputs)
      : where_(spec.where()),
        type_(spec.op_type),
        gates_(gates),
        max_inputs_(max_inputs),
        outputs_(spec.num_outputs) {
    const auto& a = spec.attributes;
    if (spec.num_inputs < 3 || spec.num_inputs > max_inputs)
      spec.fail("expected 3-" + std::to_string(max_inputs) + " inputs, got " +
                std::to_string(spec.num_inputs));
    if (spec.num_outputs > max_outputs)
      spec.fail("expected at most " + std::to_string(max_outputs) + " outputs, got " +
                std::to_string(spec.num_outputs));
    const std::string direction = a.get_string("direction", "forward");
    if (direction != "forward" && direction != "reverse" && direction != "bidirectional")
      spec.fail("unknown direction '" + direction + "' (forward, reverse or bidirectional)");
    directions_ = direction == "bidirectional" ? 2 : 1;
    reverse_only_ = direction == "reverse";
    hidden_size_ = a.get_int("hidden_size", 0);
    if (a.has("hidden_size") && hidden_size_ <= 0) spec.fail("hidden_size must be positive");
    if (a.has("clip")) {
      clip_ = a.get_float("clip", 0.0f);
      if (!(clip_ > 0.0f)) spec.fail("clip must be positive, got " + std::to_string(clip_));
    }
    layout_ = a.get_int("layout", 0);
    if (layout_ != 0 && layout_ != 1) spec.fail("layout must be 0 or 1, got " + std::to_string(layout_));
    read_activations(spec, default_activations);
  }

  std::string_view type() const override { return type_; }
  OpRole role(std::span<const bool>) const override { return OpRole::recurrent; }
  VjpReads vjp_reads(size_t n, size_t m) const override {
    return {std::vector<bool>(n, true), std::vector<bool>(m, false)};
  }

 protected:
  bool reverse(int64_t d) const { return reverse_only_ || d == 1; }
  const CellActivation& activation(int64_t d, size_t k) const {
    return activations_[static_cast<size_t>(d) * activations_per_direction_ + k];
  }
  float clip() const { return clip_; }
  float clipped(float z) const { return clip_ > 0.0f ? std::clamp(z, -clip_, clip_) : z; }
  // d act(clip(z)) / dz: zero where the clip cuts z off.
  float slope(const CellActivation& act, float z) const {
    return clip_ > 0.0f && std::abs(z) > clip_ ? 0.0f : act.derivative(z);
  }

  // Validates the inputs (X, W, R, B, sequence_lens, initial_h[, initial_c, P]) and brings them to layout 0.
  Sequence sequence(std::span<const Tensor> inputs) const {
    expect_inputs(inputs, 3, max_inputs_, where_);
    Sequence q;
    const Tensor &x = inputs[0], &w = inputs[1], &r = inputs[2];
    if (x.rank() != 3)
      fail("X of shape " + to_string(x.shape()) + " must have rank 3 ([seq_length, batch, input_size]" +
           (layout_ == 1 ? " transposed to [batch, seq_length, input_size] by layout 1)" : ")"));
    q.x = layout_ == 0 ? x : swapped_leading_axes(x);
    q.steps = q.x.dim(0);
    if (q.steps == 0) fail("X of shape " + to_string(x.shape()) + " has no time steps");
    q.batch = q.x.dim(1);
    q.input_size = q.x.dim(2);
    q.directions = directions_;
    if (r.rank() != 3) fail("R of shape " + to_string(r.shape()) + " must have rank 3");
    q.hidden = hidden_size_ > 0 ? hidden_size_ : r.dim(2);
    if (q.hidden <= 0) fail("hidden size must be positive");
    const int64_t gh = gates_ * q.hidden;
    const auto expect_shape = [&](const Tensor& t, const char* name, const Shape& shape,
                                  const char* meaning) {
      if (t.shape() != shape)
        fail(std::string(name) + " of shape " + to_string(t.shape()) + " does not match " + meaning + " = " +
             to_string(shape) + " (hidden_size " + std::to_string(q.hidden) + ", " +
             std::to_string(directions_) + " direction" + (directions_ > 1 ? "s" : "") + ")");
    };
    expect_shape(w, "W", {directions_, gh, q.input_size}, "[num_directions, gates·hidden_size, input_size]");
    expect_shape(r, "R", {directions_, gh, q.hidden}, "[num_directions, gates·hidden_size, hidden_size]");
    q.w = w;
    q.r = r;
    q.b = optional_input(inputs, 3);
    if (!q.b.empty()) expect_shape(q.b, "B", {directions_, 2 * gh}, "[num_directions, 2·gates·hidden_size]");
    const Tensor& lengths = optional_input(inputs, 4);
    q.lengths.assign(static_cast<size_t>(q.batch), q.steps);
    if (!lengths.empty()) {
      if (lengths.shape() != Shape{q.batch})
        fail("sequence_lens of shape " + to_string(lengths.shape()) + " must be [batch] = [" +
             std::to_string(q.batch) + "]");
      q.lengths = to_ints(lengths);
      for (int64_t length : q.lengths)
        if (length < 1 || length > q.steps)
          fail("sequence_lens holds " + std::to_string(length) +
               ", outside [1, seq_length = " + std::to_string(q.steps) + "]");
    }
    q.longest = q.batch == 0 ? 0 : *std::max_element(q.lengths.begin(), q.lengths.end());
    const Shape state_shape =
        layout_ == 0 ? Shape{directions_, q.batch, q.hidden} : Shape{q.batch, directions_, q.hidden};
    const char* state_meaning =
        layout_ == 0 ? "[num_directions, batch, hidden_size]" : "[batch, num_directions, hidden_size]";
    const auto state = [&](size_t i, const char* name) {
      const Tensor& s = optional_input(inputs, i);
      if (s.empty()) return s;
      expect_shape(s, name, state_shape, state_meaning);
      return layout_ == 0 ? s : swapped_leading_axes(s);
    };
    q.initial_h = state(5, "initial_h");
    if (max_inputs_ > 6) {  // LSTM
      q.initial_c = state(6, "initial_c");
      q.p = optional_input(inputs, 7);
      if (!q.p.empty())
        expect_shape(q.p, "P", {directions_, 3 * q.hidden}, "[num_directions, 3·hidden_size]");
    }
    return q;
  }

  // x_t·Wᵀ + bias for every step and row: [T·N, G·H].
  static Matrix projection(const Sequence& q, const Tensor& w, const RowVector& bias) {
    const int64_t gh = w.dim(0);
    Matrix p = matrix_of(q.x, q.steps * q.batch, q.input_size) * matrix_of(w, gh, q.input_size).transpose();
    p.rowwise() += bias;
    return p;
  }
  static RowVector bias_part(const Sequence& q, int64_t d, int64_t offset, int64_t length) {
    if (q.b.empty()) return RowVector::Zero(length);
    return Eigen::Map<const RowVector>(Sequence::block(q.b, d) + offset, length);
  }
  static Tensor direction_block(const Tensor& t, int64_t d, Shape shape) {
    return Tensor(std::move(shape),
                  std::span<const float>(Sequence::block(t, d), static_cast<size_t>(t.size() / t.dim(0))));
  }
  static Tensor initial_state(const Tensor& state, const Sequence& q, int64_t d) {
    return state.empty() ? Tensor(Shape{q.batch, q.hidden}) : direction_block(state, d, {q.batch, q.hidden});
  }

  // Y [T, D, N, H], Y_h and Y_c [D, N, H] from each direction's hidden (and cell) states [T, N, H],
  // in the node's layout, as many as the node has outputs.
  std::vector<Tensor> outputs(const Sequence& q, const std::vector<Tensor>& hidden,
                              const std::vector<Tensor>& cell) const {
    const int64_t T = q.steps, D = q.directions, N = q.batch, H = q.hidden;
    Tensor y({T, D, N, H});
    Tensor y_h({D, N, H}), y_c({D, N, H});
    for (int64_t d = 0; d < D; ++d) {
      for (int64_t n = 0; n < N; ++n) {
        for (int64_t t = 0; t < q.lengths[static_cast<size_t>(n)]; ++t)
          std::copy_n(hidden[static_cast<size_t>(d)].data() + (t * N + n) * H, H,
                      y.data() + ((t * D + d) * N + n) * H);
        const int64_t last = q.last_time(reverse(d), n);
        std::copy_n(hidden[static_cast<size_t>(d)].data() + (last * N + n) * H, H,
                    y_h.data() + (d * N + n) * H);
        if (!cell.empty())
          std::copy_n(cell[static_cast<size_t>(d)].data() + (last * N + n) * H, H,
                      y_c.data() + (d * N + n) * H);
      }
    }
    std::vector<Tensor> out;
    if (layout_ == 0) {
      out = {y, y_h, y_c};
    } else {
      out = {swapped_leading_axes(y, T * D, N, {N, T, D, H}), swapped_leading_axes(y_h),
             swapped_leading_axes(y_c)};
    }
    out.resize(std::max<size_t>(outputs_, 1));
    return out;
  }

  OutputGradients output_gradients(const VjpArgs& a, const Sequence& q) const {
    OutputGradients g;
    const auto at = [&](size_t k) { return k < a.grad_outputs.size() ? a.grad_outputs[k] : Tensor(); };
    const int64_t T = q.steps, D = q.directions, N = q.batch;
    g.y = at(0);
    g.y_h = at(1);
    g.y_c = at(2);
    if (layout_ == 1) {
      if (!g.y.empty()) g.y = swapped_leading_axes(g.y, N, T * D, {T, D, N, q.hidden});
      if (!g.y_h.empty()) g.y_h = swapped_leading_axes(g.y_h);
      if (!g.y_c.empty()) g.y_c = swapped_leading_axes(g.y_c);
    }
    return g;
  }

  // The input gradients from each direction's step gradients: X, W, R, B, initial_h, initial_c, P.
  std::vector<Tensor> input_gradients(const VjpArgs& a, const Sequence& q,
                                      const std::vector<DirectionGradient>& per_direction) const {
    const int64_t D = q.directions, N = q.batch, H = q.hidden, gh = gates_ * H;
    const auto wanted = [&](size_t i) { return i < a.wanted.size() && a.wanted[i]; };
    std::vector<Tensor> grads(a.inputs.size());
    if (wanted(0)) {
      Matrix dx = Matrix::Zero(q.steps * N, q.input_size);
      for (int64_t d = 0; d < D; ++d)
        dx += per_direction[static_cast<size_t>(d)].d_projection *
              matrix_of(Sequence::block(q.w, d), gh, q.input_size);
      const Tensor canonical = tensor_of(dx, {q.steps, N, q.input_size});
      grads[0] = layout_ == 0 ? canonical : swapped_leading_axes(canonical);
    }
    const auto stacked = [&](int64_t rows, int64_t cols, auto&& block) {
      Tensor t = Tensor::uninitialized({D, rows, cols});
      for (int64_t d = 0; d < D; ++d) {
        const Matrix m = block(per_direction[static_cast<size_t>(d)]);
        std::copy_n(m.data(), rows * cols, t.data() + d * rows * cols);
      }
      return t;
    };
    if (wanted(1))
      grads[1] = stacked(gh, q.input_size, [&](const DirectionGradient& g) {
        return Matrix(g.d_projection.transpose() * matrix_of(q.x, q.steps * N, q.input_size));
      });
    if (wanted(2)) grads[2] = stacked(gh, H, [](const DirectionGradient& g) { return g.d_r; });
    if (wanted(3) && !a.inputs[3].empty()) {
      grads[3] = stacked(1, 2 * gh, [&](const DirectionGradient& g) {
                   Matrix m(1, 2 * gh);
                   m << g.d_projection.colwise().sum(), g.d_recurrent_bias;
                   return m;
                 }).reshaped({D, 2 * gh});
    }
    const auto state_gradient = [&](size_t i, Matrix DirectionGradient::*member) {
      if (!wanted(i) || a.inputs[i].empty()) return;
      const Tensor canonical = stacked(N, H, [&](const DirectionGradient& g) { return g.*member; });
      grads[i] = layout_ == 0 ? canonical : swapped_leading_axes(canonical);
    };
    state_gradient(5, &DirectionGradient::d_initial_h);
    if (a.inputs.size() > 6) state_gradient(6, &DirectionGradient::d_initial_c);
    if (wanted(7) && a.inputs.size() > 7 && !a.inputs[7].empty())
      grads[7] = stacked(1, 3 * H, [](const DirectionGradient& g) {
                   return Matrix(g.d_peephole);
                 }).reshaped({D, 3 * H});
    return grads;
  }

  // A cell's outputs from its directions' hidden states; `Cell::run(q, d)` traces direction d.
  template <class Cell>
  std::vector<Tensor> hidden_outputs(const Cell& cell, std::span<const Tensor> inputs) const {
    const Sequence q = sequence(inputs);
    std::vector<Tensor> hidden;
    for (int64_t d = 0; d < q.directions; ++d) hidden.push_back(cell.run(q, d).hidden);
    return outputs(q, hidden, {});
  }
  // Backpropagation through time: `Cell::backward(q, trace, gradients, d)` runs direction d's steps in
  // reverse over its recomputed trace.
  template <class Cell>
  std::vector<Tensor> backpropagate(const Cell& cell, const VjpArgs& a) const {
    const Sequence q = sequence(a.inputs);
    const OutputGradients g = output_gradients(a, q);
    std::vector<DirectionGradient> per_direction;
    for (int64_t d = 0; d < q.directions; ++d)
      per_direction.push_back(cell.backward(q, cell.run(q, d), g, d));
    return input_gradients(a, q, per_direction);
  }

  [[noreturn]] void fail(const std::string& message) const { throw Error(where_ + ": " + message); }

  std::string where_;

 private:
  void read_activations(const OpSpec& spec, const std::vector<std::string>& defaults) {
    activations_per_direction_ = defaults.size();
    std::vector<std::string> names = spec.attributes.get_strings("activations");
    const size_t per_direction = defaults.size(), all = per_direction * static_cast<size_t>(directions_);
    if (names.empty()) {
      for (int64_t d = 0; d < directions_; ++d) names.insert(names.end(), defaults.begin(), defaults.end());
    } else if (names.size() == per_direction && directions_ == 2) {
      // One list for both directions.
      const std::vector<std::string> once = names;
      names.insert(names.end(), once.begin(), once.end());
    } else if (names.size() != all) {
      spec.fail("activations lists " + std::to_string(names.size()) + " functions, expected " +
                std::to_string(all) + " (" + std::to_string(per_direction) + " per direction)");
    }
    const std::vector<float> alphas = spec.attributes.get_floats("activation_alpha");
    const std::vector<float> betas = spec.attributes.get_floats("activation_beta");
    size_t next_alpha = 0, next_beta = 0;
    for (const std::string& name : names) {
      std::string key = name;
      std::transform(key.begin(), key.end(), key.begin(), [](unsigned char c) { return std::tolower(c); });
      const auto it = activation_names().find(key);
      if (it == activation_names().end())
        spec.fail("unsupported activation '" + name +
                  "' (Relu, Tanh, Sigmoid, Affine, LeakyRelu, ThresholdedRelu, ScaledTanh, HardSigmoid, Elu, "
                  "Softsign, Softplus)");
      const ActivationName& n = it->second;
      CellActivation act{n.kind, n.alpha, n.beta};
      // Alphas and betas are consumed in list order by the functions that take them.
      if (n.takes_alpha && next_alpha < alphas.size()) act.alpha = alphas[next_alpha++];
      if (n.takes_beta && next_beta < betas.size()) act.beta = betas[next_beta++];
      activations_.push_back(act);
    }
  }

  std::string type_;
  int64_t gates_;
  size_t max_inputs_, outputs_;
  int64_t directions_ = 1;
  bool reverse_only_ = false;
  int64_t hidden_size_ = 0;  // 0: taken from R
  float clip_ = 0.0f;        // 0: no clipping
  int64_t layout_ = 0;
  size_t activations_per_direction_ = 0;
  std::vector<CellActivation> activations_;
};

// Per-step matrices of one direction as [T, N, columns] tensors, indexed by time step.
float* step_row(Tensor& t, const Sequence& q, int64_t time, int64_t n) {
  return t.data() + (time * q.batch + n) * (t.size() / (q.steps * q.batch));
}
const float* step_row(const Tensor& t, const Sequence& q, int64_t time, int64_t n) {
  return t.data() + (time * q.batch + n) * (t.size() / (q.steps * q.batch));
}

// The state a row starts step `time` from: the state at the previous time step, or the initial one.
const float* previous_state(const Tensor& states, const Tensor& initial, const Sequence& q, bool reverse,
                            int64_t time, int64_t n) {
  const int64_t previous = q.previous_time(reverse, time, n);
  return previous < 0 ? initial.data() + n * q.hidden : step_row(states, q, previous, n);
}

// LSTM (opsets 7, 14): gates i, o, f, c; optional peepholes, input_forget (f = 1 − i) and Y_c.
class LstmOp : public RecurrentOp {
 public:
  explicit LstmOp(const OpSpec& spec)
      : RecurrentOp(spec, 4, {"Sigmoid", "Tanh", "Tanh"}, 8, 3),
        input_forget_(spec.attributes.get_int("input_forget", 0) != 0) {}

  std::vector<Tensor> forward(std::span<const Tensor> inputs) const override { return trace(inputs).outputs; }

  LstmTrace trace(std::span<const Tensor> inputs) const {
    const Sequence q = sequence(inputs);
    LstmTrace result;
    result.hidden_size = q.hidden;
    result.clip = clip();
    result.input_forget = input_forget_;
    result.x = q.x;
    result.sequence_lengths = q.lengths;
    std::vector<Tensor> hidden, cell;
    for (int64_t d = 0; d < q.directions; ++d) {
      result.directions.push_back(run(q, d));
      hidden.push_back(result.directions.back().hidden);
      cell.push_back(result.directions.back().cell);
    }
    result.outputs = outputs(q, hidden, cell);
    return result;
  }

  std::vector<Tensor> vjp(const VjpArgs& a) const override { return backpropagate(*this, a); }

 private:
  friend class RecurrentOp;
  LstmDirectionTrace run(const Sequence& q, int64_t d) const {
    const int64_t N = q.batch, H = q.hidden;
    LstmDirectionTrace tr;
    tr.reverse = reverse(d);
    tr.w = direction_block(q.w, d, {4 * H, q.input_size});
    tr.r = direction_block(q.r, d, {4 * H, H});
    const RowVector bias = bias_part(q, d, 0, 4 * H) + bias_part(q, d, 4 * H, 4 * H);
    tr.bias = tensor_of(bias, {4 * H});
    tr.peephole = q.p.empty() ? Tensor(Shape{3 * H}) : direction_block(q.p, d, {3 * H});
    tr.f = activation(d, 0);
    tr.g = activation(d, 1);
    tr.h = activation(d, 2);
    tr.initial_hidden = initial_state(q.initial_h, q, d);
    tr.initial_cell = initial_state(q.initial_c, q, d);
    tr.gate_inputs = Tensor({q.steps, N, 4 * H});
    tr.gates = Tensor({q.steps, N, 4 * H});
    tr.cell = Tensor({q.steps, N, H});
    tr.hidden = Tensor({q.steps, N, H});
    const Matrix projected = projection(q, tr.w, bias);
    const float *pi = tr.peephole.data(), *po = pi + H, *pf = pi + 2 * H;
    Matrix h = matrix_of(tr.initial_hidden, N, H);
    for (int64_t s = 0; s < q.longest; ++s) {
      const Matrix recurrent = h * matrix_of(tr.r, 4 * H, H).transpose();
      for (int64_t n = 0; n < N; ++n) {
        const int64_t t = q.time_at(tr.reverse, s, n);
        if (t < 0) continue;
        float* z = step_row(tr.gate_inputs, q, t, n);
        float* a = step_row(tr.gates, q, t, n);
        float* c = step_row(tr.cell, q, t, n);
        float* y = step_row(tr.hidden, q, t, n);
        const float* c_prev = previous_state(tr.cell, tr.initial_cell, q, tr.reverse, t, n);
        for (int64_t k = 0; k < 4 * H; ++k) z[k] = projected(t * N + n, k) + recurrent(n, k);
        for (int64_t j = 0; j < H; ++j) {
          z[j] += pi[j] * c_prev[j];
          z[2 * H + j] += pf[j] * c_prev[j];
          a[j] = tr.f.value(clipped(z[j]));
          a[2 * H + j] = input_forget_ ? 1.0f - a[j] : tr.f.value(clipped(z[2 * H + j]));
          a[3 * H + j] = tr.g.value(clipped(z[3 * H + j]));
          c[j] = a[2 * H + j] * c_prev[j] + a[j] * a[3 * H + j];
          z[H + j] += po[j] * c[j];
          a[H + j] = tr.f.value(clipped(z[H + j]));
          y[j] = a[H + j] * tr.h.value(c[j]);
          h(n, j) = y[j];
        }
      }
    }
    return tr;
  }

  DirectionGradient backward(const Sequence& q, const LstmDirectionTrace& tr, const OutputGradients& g,
                             int64_t d) const {
    const int64_t N = q.batch, H = q.hidden;
    const float *pi = tr.peephole.data(), *po = pi + H, *pf = pi + 2 * H;
    Matrix dh = OutputGradients::state(g.y_h, q, d), dc = OutputGradients::state(g.y_c, q, d);
    DirectionGradient out;
    out.d_projection = Matrix::Zero(q.steps * N, 4 * H);
    out.d_peephole = RowVector::Zero(3 * H);
    Matrix previous_hidden = Matrix::Zero(q.steps * N, H);
    for (int64_t s = q.longest; s-- > 0;) {
      Matrix step = Matrix::Zero(N, 4 * H);
      for (int64_t n = 0; n < N; ++n) {
        const int64_t t = q.time_at(tr.reverse, s, n);
        if (t < 0) continue;
        const float* z = step_row(tr.gate_inputs, q, t, n);
        const float* a = step_row(tr.gates, q, t, n);
        const float* c = step_row(tr.cell, q, t, n);
        const float* c_prev = previous_state(tr.cell, tr.initial_cell, q, tr.reverse, t, n);
        const float* h_prev = previous_state(tr.hidden, tr.initial_hidden, q, tr.reverse, t, n);
        const float* dy = g.at_y(q, t, d, n);
        std::copy_n(h_prev, H, previous_hidden.row(t * N + n).data());
        for (int64_t j = 0; j < H; ++j) {
          const float dh_t = dh(n, j) + (dy ? dy[j] : 0.0f);
          const float dz_o = dh_t * tr.h.value(c[j]) * slope(tr.f, z[H + j]);
          const float dc_t = dc(n, j) + dh_t * a[H + j] * tr.h.derivative(c[j]) + dz_o * po[j];
          const float d_forget = dc_t * c_prev[j];
          float d_input = dc_t * a[3 * H + j], dz_f = 0.0f;
          if (input_forget_)
            d_input -= d_forget;
          else
            dz_f = d_forget * slope(tr.f, z[2 * H + j]);
          const float dz_i = d_input * slope(tr.f, z[j]);
          const float dz_c = dc_t * a[j] * slope(tr.g, z[3 * H + j]);
          dc(n, j) = dc_t * a[2 * H + j] + dz_i * pi[j] + dz_f * pf[j];
          out.d_peephole[j] += dz_i * c_prev[j];
          out.d_peephole[H + j] += dz_o * c[j];
          out.d_peephole[2 * H + j] += dz_f * c_prev[j];
          step(n, j) = dz_i;
          step(n, H + j) = dz_o;
          step(n, 2 * H + j) = dz_f;
          step(n, 3 * H + j) = dz_c;
        }
        out.d_projection.row(t * N + n) = step.row(n);
      }
      const Matrix back = step * matrix_of(tr.r, 4 * H, H);
      for (int64_t n = 0; n < N; ++n)
        if (q.time_at(tr.reverse, s, n) >= 0) dh.row(n) = back.row(n);
    }
    // The recurrent product and its bias see the same pre-activation gradient as the input projection.
    out.d_recurrent_bias = out.d_projection.colwise().sum();
    out.d_r = out.d_projection.transpose() * previous_hidden;
    out.d_initial_h = dh;
    out.d_initial_c = dc;
    return out;
  }

  bool input_forget_;
};

// GRU (opsets 7, 14): gates z, r, h; linear_before_reset applies the reset gate after R_h.
class GruOp : public RecurrentOp {
 public:
  explicit GruOp(const OpSpec& spec)
      : RecurrentOp(spec, 3, {"Sigmoid", "Tanh"}, 6, 2),
        linear_before_reset_(spec.attributes.get_int("linear_before_reset", 0) != 0) {}

  std::vector<Tensor> forward(std::span<const Tensor> inputs) const override {
    return hidden_outputs(*this, inputs);
  }

  GruTrace trace(std::span<const Tensor> inputs) const {
    const Sequence q = sequence(inputs);
    GruTrace result{q.hidden, clip(), linear_before_reset_, q.x, q.lengths, {}};
    for (int64_t d = 0; d < q.directions; ++d) result.directions.push_back(run(q, d));
    return result;
  }

  std::vector<Tensor> vjp(const VjpArgs& a) const override { return backpropagate(*this, a); }

 private:
  friend class RecurrentOp;
  GruDirectionTrace run(const Sequence& q, int64_t d) const {
    const int64_t N = q.batch, H = q.hidden;
    const CellActivation &f = activation(d, 0), &g = activation(d, 1);
    GruDirectionTrace tr;
    tr.reverse = reverse(d);
    tr.f = f;
    tr.g = g;
    tr.w = direction_block(q.w, d, {3 * H, q.input_size});
    tr.r = direction_block(q.r, d, {3 * H, H});
    tr.initial_hidden = initial_state(q.initial_h, q, d);
    tr.gate_inputs = Tensor({q.steps, N, 3 * H});
    tr.gates = Tensor({q.steps, N, 3 * H});
    tr.recurrent_hidden = Tensor({q.steps, N, H});
    tr.hidden = Tensor({q.steps, N, H});
    // Wb for all gates; Rb of z and r, and of h unless the reset gate multiplies h_{t−1}·R_hᵀ + Rb_h.
    RowVector bias = bias_part(q, d, 0, 3 * H);
    const RowVector recurrent_bias = bias_part(q, d, 3 * H, 3 * H);
    bias.head(2 * H) += recurrent_bias.head(2 * H);
    if (!linear_before_reset_) bias.tail(H) += recurrent_bias.tail(H);
    const Matrix projected = projection(q, tr.w, bias);
    const ConstMatrixMap r_zr = matrix_of(tr.r, 2 * H, H), r_h = matrix_of(tr.r.data() + 2 * H * H, H, H);
    Matrix h = matrix_of(tr.initial_hidden, N, H);
    for (int64_t s = 0; s < q.longest; ++s) {
      const Matrix recurrent_zr = h * r_zr.transpose();
      Matrix reset_hidden = Matrix::Zero(N, H);  // r ⊙ h_{t−1}
      for (int64_t n = 0; n < N; ++n) {
        const int64_t t = q.time_at(tr.reverse, s, n);
        if (t < 0) continue;
        float* z = step_row(tr.gate_inputs, q, t, n);
        float* a = step_row(tr.gates, q, t, n);
        for (int64_t k = 0; k < 2 * H; ++k) {
          z[k] = projected(t * N + n, k) + recurrent_zr(n, k);
          a[k] = f.value(clipped(z[k]));
        }
        for (int64_t j = 0; j < H; ++j) reset_hidden(n, j) = a[H + j] * h(n, j);
      }
      Matrix recurrent_h(N, H);
      if (linear_before_reset_)
        recurrent_h = (h * r_h.transpose()).rowwise() + recurrent_bias.tail(H);
      else
        recurrent_h = reset_hidden * r_h.transpose();
      for (int64_t n = 0; n < N; ++n) {
        const int64_t t = q.time_at(tr.reverse, s, n);
        if (t < 0) continue;
        float* z = step_row(tr.gate_inputs, q, t, n);
        float* a = step_row(tr.gates, q, t, n);
        float* y = step_row(tr.hidden, q, t, n);
        float* rh = step_row(tr.recurrent_hidden, q, t, n);
        for (int64_t j = 0; j < H; ++j) {
          rh[j] = linear_before_reset_ ? recurrent_h(n, j) : 0.0f;
          z[2 * H + j] = projected(t * N + n, 2 * H + j) +
                         (linear_before_reset_ ? a[H + j] * recurrent_h(n, j) : recurrent_h(n, j));
          a[2 * H + j] = g.value(clipped(z[2 * H + j]));
          y[j] = (1.0f - a[j]) * a[2 * H + j] + a[j] * h(n, j);
        }
      }
      for (int64_t n = 0; n < N; ++n) {
        const int64_t t = q.time_at(tr.reverse, s, n);
        if (t >= 0) std::copy_n(step_row(tr.hidden, q, t, n), H, h.row(n).data());
      }
    }
    return tr;
  }

  DirectionGradient backward(const Sequence& q, const GruDirectionTrace& tr, const OutputGradients& og,
                             int64_t d) const {
    const int64_t N = q.batch, H = q.hidden;
    const CellActivation &f = activation(d, 0), &g = activation(d, 1);
    const ConstMatrixMap r_zr = matrix_of(tr.r, 2 * H, H), r_h = matrix_of(tr.r.data() + 2 * H * H, H, H);
    Matrix dh = OutputGradients::state(og.y_h, q, d);
    DirectionGradient out;
    out.d_projection = Matrix::Zero(q.steps * N, 3 * H);
    Matrix d_recurrent = Matrix::Zero(q.steps * N, 3 * H);   // at h_{t−1}·Rᵀ (+ Rb)
    Matrix previous_hidden = Matrix::Zero(q.steps * N, H);   // input of the z, r products
    Matrix previous_h_input = Matrix::Zero(q.steps * N, H);  // input of the h product
    for (int64_t s = q.longest; s-- > 0;) {
      Matrix direct = Matrix::Zero(N, H);       // ∂/∂h_{t−1} through z ⊙ h_{t−1}
      Matrix d_candidate = Matrix::Zero(N, H);  // ∂/∂ of the h gate's pre-activation
      for (int64_t n = 0; n < N; ++n) {
        const int64_t t = q.time_at(tr.reverse, s, n);
        if (t < 0) continue;
        const float* z = step_row(tr.gate_inputs, q, t, n);
        const float* a = step_row(tr.gates, q, t, n);
        const float* h_prev = previous_state(tr.hidden, tr.initial_hidden, q, tr.reverse, t, n);
        const float* dy = og.at_y(q, t, d, n);
        const int64_t row = t * N + n;
        std::copy_n(h_prev, H, previous_hidden.row(row).data());
        for (int64_t j = 0; j < H; ++j) {
          const float dh_t = dh(n, j) + (dy ? dy[j] : 0.0f);
          direct(n, j) = dh_t * a[j];
          out.d_projection(row, j) = dh_t * (h_prev[j] - a[2 * H + j]) * slope(f, z[j]);
          d_candidate(n, j) = dh_t * (1.0f - a[j]) * slope(g, z[2 * H + j]);
          out.d_projection(row, 2 * H + j) = d_candidate(n, j);
        }
      }
      // ∂/∂r per unit: through r ⊙ (h_{t−1}·R_hᵀ + Rb_h), or through (r ⊙ h_{t−1})·R_hᵀ.
      const Matrix d_reset_hidden = linear_before_reset_ ? Matrix() : Matrix(d_candidate * r_h);
      Matrix step_recurrent = Matrix::Zero(N, 3 * H);
      for (int64_t n = 0; n < N; ++n) {
        const int64_t t = q.time_at(tr.reverse, s, n);
        if (t < 0) continue;
        const float* z = step_row(tr.gate_inputs, q, t, n);
        const float* a = step_row(tr.gates, q, t, n);
        const float* rh = step_row(tr.recurrent_hidden, q, t, n);
        const int64_t row = t * N + n;
        for (int64_t j = 0; j < H; ++j) {
          const float h_prev = previous_hidden(row, j);
          float d_reset;
          if (linear_before_reset_) {
            d_reset = d_candidate(n, j) * rh[j];
            step_recurrent(n, 2 * H + j) = d_candidate(n, j) * a[H + j];
            previous_h_input(row, j) = h_prev;
          } else {
            d_reset = d_reset_hidden(n, j) * h_prev;
            direct(n, j) += d_reset_hidden(n, j) * a[H + j];
            step_recurrent(n, 2 * H + j) = d_candidate(n, j);
            previous_h_input(row, j) = a[H + j] * h_prev;
          }
          out.d_projection(row, H + j) = d_reset * slope(f, z[H + j]);
        }
        step_recurrent.row(n).head(2 * H) = out.d_projection.row(row).head(2 * H);
        d_recurrent.row(row) = step_recurrent.row(n);
      }
      Matrix back = direct + step_recurrent.leftCols(2 * H) * r_zr;
      if (linear_before_reset_) back += step_recurrent.rightCols(H) * r_h;
      for (int64_t n = 0; n < N; ++n)
        if (q.time_at(tr.reverse, s, n) >= 0) dh.row(n) = back.row(n);
    }
    out.d_recurrent_bias = d_recurrent.colwise().sum();
    out.d_r = Matrix(3 * H, H);
    out.d_r.topRows(2 * H) = d_recurrent.leftCols(2 * H).transpose() * previous_hidden;
    out.d_r.bottomRows(H) = d_recurrent.rightCols(H).transpose() * previous_h_input;
    out.d_initial_h = dh;
    return out;
  }

  bool linear_before_reset_;
};

// RNN (opsets 7, 14): h_t = f(x_t·Wᵀ + h_{t−1}·Rᵀ + Wb + Rb).
class RnnOp : public RecurrentOp {
 public:
  explicit RnnOp(const OpSpec& spec) : RecurrentOp(spec, 1, {"Tanh"}, 6, 2) {}

  std::vector<Tensor> forward(std::span<const Tensor> inputs) const override {
    return hidden_outputs(*this, inputs);
  }

  RnnTrace trace(std::span<const Tensor> inputs) const {
    const Sequence q = sequence(inputs);
    RnnTrace result{q.hidden, clip(), q.x, q.lengths, {}};
    for (int64_t d = 0; d < q.directions; ++d) result.directions.push_back(run(q, d));
    return result;
  }

  std::vector<Tensor> vjp(const VjpArgs& a) const override { return backpropagate(*this, a); }

 private:
  friend class RecurrentOp;
  RnnDirectionTrace run(const Sequence& q, int64_t d) const {
    const int64_t N = q.batch, H = q.hidden;
    const CellActivation& f = activation(d, 0);
    RnnDirectionTrace tr;
    tr.reverse = reverse(d);
    tr.f = f;
    tr.w = direction_block(q.w, d, {H, q.input_size});
    tr.r = direction_block(q.r, d, {H, H});
    tr.initial_hidden = initial_state(q.initial_h, q, d);
    tr.gate_inputs = Tensor({q.steps, N, H});
    tr.hidden = Tensor({q.steps, N, H});
    const Matrix projected = projection(q, tr.w, bias_part(q, d, 0, H) + bias_part(q, d, H, H));
    Matrix h = matrix_of(tr.initial_hidden, N, H);
    for (int64_t s = 0; s < q.longest; ++s) {
      const Matrix recurrent = h * matrix_of(tr.r, H, H).transpose();
      for (int64_t n = 0; n < N; ++n) {
        const int64_t t = q.time_at(tr.reverse, s, n);
        if (t < 0) continue;
        float* z = step_row(tr.gate_inputs, q, t, n);
        float* y = step_row(tr.hidden, q, t, n);
        for (int64_t j = 0; j < H; ++j) {
          z[j] = projected(t * N + n, j) + recurrent(n, j);
          y[j] = f.value(clipped(z[j]));
          h(n, j) = y[j];
        }
      }
    }
    return tr;
  }

  DirectionGradient backward(const Sequence& q, const RnnDirectionTrace& tr, const OutputGradients& g,
                             int64_t d) const {
    const int64_t N = q.batch, H = q.hidden;
    const CellActivation& f = activation(d, 0);
    Matrix dh = OutputGradients::state(g.y_h, q, d);
    DirectionGradient out;
    out.d_projection = Matrix::Zero(q.steps * N, H);
    Matrix previous_hidden = Matrix::Zero(q.steps * N, H);
    for (int64_t s = q.longest; s-- > 0;) {
      Matrix step = Matrix::Zero(N, H);
      for (int64_t n = 0; n < N; ++n) {
        const int64_t t = q.time_at(tr.reverse, s, n);
        if (t < 0) continue;
        const float* z = step_row(tr.gate_inputs, q, t, n);
        const float* dy = g.at_y(q, t, d, n);
        std::copy_n(previous_state(tr.hidden, tr.initial_hidden, q, tr.reverse, t, n), H,
                    previous_hidden.row(t * N + n).data());
        for (int64_t j = 0; j < H; ++j) step(n, j) = (dh(n, j) + (dy ? dy[j] : 0.0f)) * slope(f, z[j]);
        out.d_projection.row(t * N + n) = step.row(n);
      }
      const Matrix back = step * matrix_of(tr.r, H, H);
      for (int64_t n = 0; n < N; ++n)
        if (q.time_at(tr.reverse, s, n) >= 0) dh.row(n) = back.row(n);
    }
    out.d_recurrent_bias = out.d_projection.colwise().sum();
    out.d_r = out.d_projection.transpose() * previous_hidden;
    out.d_initial_h = dh;
    return out;
  }
};

}  // namespace

RecurrentCell recurrent_cell(const Op& op) {
  if (dynamic_cast<const LstmOp*>(&op) != nullptr) return RecurrentCell::lstm;
  if (dynamic_cast<const GruOp*>(&op) != nullptr) return RecurrentCell::gru;
  if (dynamic_cast<const RnnOp*>(&op) != nullptr) return RecurrentCell::rnn;
  throw Error("recurrent_cell: the op is " + std::string(op.type()) + ", not a recurrent cell");
}

namespace {

template <class Cell>
const Cell& cell_of(const Op& op, const char* name) {
  const auto* cell = dynamic_cast<const Cell*>(&op);
  if (cell == nullptr) throw Error(std::string("the op is ") + std::string(op.type()) + ", not an " + name);
  return *cell;
}

}  // namespace

LstmTrace lstm_trace(const Op& op, std::span<const Tensor> inputs) {
  return cell_of<LstmOp>(op, "LSTM").trace(inputs);
}
GruTrace gru_trace(const Op& op, std::span<const Tensor> inputs) {
  return cell_of<GruOp>(op, "GRU").trace(inputs);
}
RnnTrace rnn_trace(const Op& op, std::span<const Tensor> inputs) {
  return cell_of<RnnOp>(op, "RNN").trace(inputs);
}

std::unique_ptr<Op> make_lstm(const OpSpec& spec) {
  return std::make_unique<LstmOp>(spec);
}
std::unique_ptr<Op> make_gru(const OpSpec& spec) {
  return std::make_unique<GruOp>(spec);
}
std::unique_ptr<Op> make_rnn(const OpSpec& spec) {
  return std::make_unique<RnnOp>(spec);
}

}  // namespace sieve::ops
