// LRP through recurrent cells by the book's ch. 11 §11.3 (Arras et al.): the cell is recomputed step
// by step and its relevance walked back against each direction's processing order through three
// computations — the linear maps to the gate pre-activations (ε-rule, the bias keeps its share), the
// products gate ⊙ signal (Table 11.1) and the accumulations (c_t = f ⊙ c_{t−1} + i ⊙ g of the LSTM,
// h_t = (1 − z) ⊙ h̃ + z ⊙ h_{t−1} of the GRU: proportional splits). An RNN has only the first.

#include "rules/recurrent_treatment.hpp"

#include <cmath>

#include "ops/recurrent.hpp"
#include "sieve/error.hpp"
#include "sieve/parse.hpp"

namespace sieve::rules {
namespace {

std::string product_rule_name(LstmProducts rule) {
  switch (rule) {
    case LstmProducts::all:
      return "all";
    case LstmProducts::prop:
      return "prop";
    case LstmProducts::abs:
      return "abs";
    case LstmProducts::half:
      return "half";
  }
  return "all";
}

std::string products_description(LstmProducts rule) {
  const std::string name = product_rule_name(rule);
  return "products " + (rule == LstmProducts::all ? "signal-take-all" : "split by LRP-" + name) +
         " (lstm=" + name + ")";
}

// The ε-rule's stabilizer, sign(0) = +1 like the linear rules'.
float stabilized(float z, float eps) {
  return z + (z >= 0.0f ? eps : -eps);
}

// Where a step's values sit in the node's own tensors: layout 0 is time-major (Y [T, D, N, H], Y_h and
// the initial states [D, N, H], X [T, N, I]), layout 1 batch-major (Y [N, T, D, H], [N, D, H],
// [N, T, I]). The traces index every step [t, n, ·] whatever the layout.
struct NodeLayout {
  bool batch_major = false;
  int64_t steps = 0, directions = 0, batch = 0, hidden = 0, features = 0;

  int64_t y(int64_t t, int64_t d, int64_t n) const {
    return (batch_major ? (n * steps + t) * directions + d : (t * directions + d) * batch + n) * hidden;
  }
  int64_t state(int64_t d, int64_t n) const {
    return (batch_major ? n * directions + d : d * batch + n) * hidden;
  }
  int64_t x(int64_t t, int64_t n) const { return (batch_major ? n * steps + t : t * batch + n) * features; }
  Shape x_shape() const {
    return batch_major ? Shape{batch, steps, features} : Shape{steps, batch, features};
  }
  Shape state_shape() const {
    return batch_major ? Shape{batch, directions, hidden} : Shape{directions, batch, hidden};
  }
};

// What every cell's treatment shares: the node's layout, the relevance arriving at Y, Y_h (and Y_c),
// the ε and the product rule, and the walk over directions, rows and steps.
class CellTreatment : public Treatment {
 public:
  CellTreatment(bool batch_major, LstmProducts products, float epsilon)
      : batch_major_(batch_major), products_(products), epsilon_(epsilon) {}

  std::vector<ValueId> trace_values(const Node& node) const override {
    std::vector<ValueId> keep;
    for (ValueId v : node.inputs) {
      if (v >= 0) keep.push_back(v);
    }
    return keep;
  }
  BackwardMapping mapping(const MappingContext&) const override {
    return [this](const Node& node, const VjpArgs& a) { return relevance(node, a); };
  }
  int64_t sample_axis(bool output, size_t index) const override {
    if (batch_major_) return 0;
    return output && index == 0 ? 2 : 1;
  }

 protected:
  virtual std::vector<Tensor> relevance(const Node& node, const VjpArgs& a) const = 0;

  NodeLayout layout(const Tensor& x, int64_t directions, int64_t hidden) const {
    return {batch_major_, x.dim(0), directions, x.dim(1), hidden, x.dim(2)};
  }
  static const float* arriving(const VjpArgs& a, size_t k) {
    return k < a.grad_outputs.size() && !a.grad_outputs[k].empty() ? a.grad_outputs[k].data() : nullptr;
  }

  // The gate's share of R_p = gate ⊙ signal by Table 11.1, from the pre-activations z_g and z_s.
  float gate_share(float r, float z_gate, float z_signal) const {
    switch (products_) {
      case LstmProducts::all:
        return 0.0f;
      case LstmProducts::half:
        return 0.5f * r;
      case LstmProducts::prop:
        return z_gate / stabilized(z_gate + z_signal, epsilon_) * r;
      case LstmProducts::abs:
        return std::abs(z_gate) / (std::abs(z_gate) + std::abs(z_signal) + epsilon_) * r;
    }
    return 0.0f;
  }
  float stable(float z) const { return stabilized(z, epsilon_); }

  // R of x_t (added into `rx`) and of h_{t−1} (written to `r_h_prev`, after what `direct` holds) by the
  // linear maps z = W x_t + R h_{t−1} + b, from `ratio` = R_z / (z + ε·sign z) per pre-activation:
  // each input takes its contributions' shares, the bias keeps the rest.
  static void linear_maps(const std::vector<float>& ratio, const Tensor& w, const Tensor& r, const float* x,
                          const float* h_prev, int64_t features, int64_t hidden, float* rx,
                          const std::vector<float>& direct, std::vector<float>& r_h_prev) {
    const auto rows = static_cast<int64_t>(ratio.size());
    for (int64_t i = 0; i < features; ++i) {
      float s = 0.0f;
      for (int64_t k = 0; k < rows; ++k) s += ratio[k] * w[k * features + i];
      rx[i] += x[i] * s;
    }
    for (int64_t j = 0; j < hidden; ++j) {
      float s = 0.0f;
      for (int64_t k = 0; k < rows; ++k) s += ratio[k] * r[k * hidden + j];
      r_h_prev[j] = direct[j] + h_prev[j] * s;
    }
  }

  bool batch_major_;
  LstmProducts products_;
  float epsilon_;
};

// Gate blocks of the ONNX LSTM, in its order: unit j of gate k is column k·H + j.
enum LstmGate : int64_t { input_gate = 0, output_gate = 1, forget_gate = 2, cell_input = 3 };

class LstmTreatment : public CellTreatment {
 public:
  using CellTreatment::CellTreatment;

  std::string describe() const override {
    return "LSTM (book ch. 11): ε-rule (ε = " + format_number(epsilon_) + ") on the linear maps, " +
           products_description(products_) + ", cell-state sums proportional";
  }

 private:
  static void check_cell(const Node& node, const ops::LstmTrace& trace) {
    using Kind = ops::CellActivation::Kind;
    if (trace.clip > 0.0f || trace.input_forget)
      throw Error(node.spec.where() + ": the ch. 11 LSTM rules do not cover clip or input_forget");
    for (const ops::LstmDirectionTrace& d : trace.directions) {
      if (d.f.kind != Kind::sigmoid || d.g.kind != Kind::tanh || d.h.kind != Kind::tanh)
        throw Error(node.spec.where() +
                    ": the ch. 11 LSTM rules are defined for the default activations (Sigmoid, Tanh, Tanh)");
      for (int64_t k = 0; k < d.peephole.size(); ++k) {
        if (d.peephole[k] != 0.0f)
          throw Error(node.spec.where() + ": the ch. 11 LSTM rules do not cover peephole connections (P)");
      }
    }
  }

  // R of X, initial_h and initial_c from the relevance at Y, Y_h and Y_c; each direction walks its steps
  // back against its processing order, and X collects both directions' shares.
  std::vector<Tensor> relevance(const Node& node, const VjpArgs& a) const override {
    const ops::LstmTrace trace = ops::lstm_trace(*node.op, a.inputs);
    check_cell(node, trace);
    const int64_t batch = trace.x.dim(1), features = trace.x.dim(2);
    const int64_t hidden = trace.hidden_size, gates = 4 * hidden;
    const auto directions = static_cast<int64_t>(trace.directions.size());
    const NodeLayout at = layout(trace.x, directions, hidden);
    const float *r_y = arriving(a, 0), *r_y_h = arriving(a, 1), *r_y_c = arriving(a, 2);
    Tensor r_x(at.x_shape()), r_h0(at.state_shape()), r_c0(at.state_shape());
    std::vector<float> r_h(static_cast<size_t>(hidden)), r_c(r_h), r_h_prev(r_h), no_direct(r_h),
        ratio(static_cast<size_t>(gates));
    for (int64_t dir = 0; dir < directions; ++dir) {
      const ops::LstmDirectionTrace& d = trace.directions[static_cast<size_t>(dir)];
      for (int64_t n = 0; n < batch; ++n) {
        const int64_t state = at.state(dir, n);
        for (int64_t j = 0; j < hidden; ++j) {
          r_h[j] = r_y_h != nullptr ? r_y_h[state + j] : 0.0f;
          r_c[j] = r_y_c != nullptr ? r_y_c[state + j] : 0.0f;
        }
        const int64_t length = trace.sequence_lengths[static_cast<size_t>(n)];
        for (int64_t step = length; step-- > 0;) {
          const int64_t t = d.reverse ? length - 1 - step : step;
          const int64_t row = t * batch + n, previous = (d.reverse ? t + 1 : t - 1) * batch + n;
          const float* z = d.gate_inputs.data() + row * gates;
          const float* g = d.gates.data() + row * gates;
          const float* c = d.cell.data() + row * hidden;
          const float* c_prev =
              step > 0 ? d.cell.data() + previous * hidden : d.initial_cell.data() + n * hidden;
          const float* h_prev =
              step > 0 ? d.hidden.data() + previous * hidden : d.initial_hidden.data() + n * hidden;
          const float* r_y_t = r_y != nullptr ? r_y + at.y(t, dir, n) : nullptr;
          for (int64_t j = 0; j < hidden; ++j) {
            if (r_y_t != nullptr) r_h[j] += r_y_t[j];
            // h = o ⊙ tanh(c): the signal's pre-activation is c itself.
            const float r_o = gate_share(r_h[j], z[output_gate * hidden + j], c[j]);
            r_c[j] += r_h[j] - r_o;
            // c = f ⊙ c_prev + i ⊙ g, split in proportion to the two terms.
            const float per_c = r_c[j] / stable(c[j]);
            const float r_input = g[input_gate * hidden + j] * g[cell_input * hidden + j] * per_c;
            const float r_kept = g[forget_gate * hidden + j] * c_prev[j] * per_c;
            const float r_i = gate_share(r_input, z[input_gate * hidden + j], z[cell_input * hidden + j]);
            const float r_f = gate_share(r_kept, z[forget_gate * hidden + j], c_prev[j]);
            r_c[j] = r_kept - r_f;
            const float to_gate[4] = {r_i, r_o, r_f, r_input - r_i};
            for (int64_t k = 0; k < 4; ++k) {
              const int64_t col = k * hidden + j;
              ratio[col] = to_gate[k] / stable(z[col]);
            }
          }
          linear_maps(ratio, d.w, d.r, trace.x.data() + row * features, h_prev, features, hidden,
                      r_x.data() + at.x(t, n), no_direct, r_h_prev);
          r_h.swap(r_h_prev);
        }
        for (int64_t j = 0; j < hidden; ++j) {
          r_h0[state + j] = r_h[j];
          r_c0[state + j] = r_c[j];
        }
      }
    }
    std::vector<Tensor> back(a.inputs.size());
    back[0] = std::move(r_x);
    if (back.size() > 5) back[5] = std::move(r_h0);
    if (back.size() > 6) back[6] = std::move(r_c0);
    return back;
  }
};

// Gate blocks of the ONNX GRU: update z, reset r, candidate h.
enum GruGate : int64_t { update_gate = 0, reset_gate = 1, candidate = 2 };

// The GRU by the same rules: h_t = (1 − z) ⊙ h̃ + z ⊙ h_{t−1} is an accumulation of two products, split
// in proportion to its terms, each product by Table 11.1 (the gate 1 − z = σ(−z_z) has pre-activation
// −z_z; h_{t−1}, like the LSTM's c_{t−1}, is its own); the candidate h̃ = tanh(a_h) passes relevance to
// a_h = W_h x_t + R_h (r ⊙ h_{t−1}) + b_h, or with linear_before_reset a_h = W_h x_t + Wb_h + r ⊙ q_t,
// q_t = R_h h_{t−1} + Rb_h, by the ε-rule, and the reset product r ⊙ h_{t−1} (or r ⊙ q_t) by Table 11.1.
class GruTreatment : public CellTreatment {
 public:
  using CellTreatment::CellTreatment;

  std::string describe() const override {
    return "GRU (book ch. 11 rules): ε-rule (ε = " + format_number(epsilon_) + ") on the linear maps, " +
           products_description(products_) + ", state sums proportional";
  }

 private:
  static void check_cell(const Node& node, const ops::GruTrace& trace) {
    using Kind = ops::CellActivation::Kind;
    if (trace.clip > 0.0f) throw Error(node.spec.where() + ": the GRU relevance rules do not cover clip");
    for (const ops::GruDirectionTrace& d : trace.directions) {
      if (d.f.kind != Kind::sigmoid || d.g.kind != Kind::tanh)
        throw Error(node.spec.where() +
                    ": the GRU relevance rules are defined for the default activations (Sigmoid, Tanh)");
    }
  }

  std::vector<Tensor> relevance(const Node& node, const VjpArgs& a) const override {
    const ops::GruTrace trace = ops::gru_trace(*node.op, a.inputs);
    check_cell(node, trace);
    const int64_t batch = trace.x.dim(1), features = trace.x.dim(2);
    const int64_t hidden = trace.hidden_size, gates = 3 * hidden;
    const auto directions = static_cast<int64_t>(trace.directions.size());
    const NodeLayout at = layout(trace.x, directions, hidden);
    const float *r_y = arriving(a, 0), *r_y_h = arriving(a, 1);
    Tensor r_x(at.x_shape()), r_h0(at.state_shape());
    std::vector<float> r_h(static_cast<size_t>(hidden)), r_h_prev(r_h), direct(r_h), r_q(r_h),
        ratio(static_cast<size_t>(gates));
    for (int64_t dir = 0; dir < directions; ++dir) {
      const ops::GruDirectionTrace& d = trace.directions[static_cast<size_t>(dir)];
      const float* r_hh = d.r.data() + candidate * hidden * hidden;  // R_h [H, H]
      for (int64_t n = 0; n < batch; ++n) {
        const int64_t state = at.state(dir, n);
        for (int64_t j = 0; j < hidden; ++j) r_h[j] = r_y_h != nullptr ? r_y_h[state + j] : 0.0f;
        const int64_t length = trace.sequence_lengths[static_cast<size_t>(n)];
        for (int64_t step = length; step-- > 0;) {
          const int64_t t = d.reverse ? length - 1 - step : step;
          const int64_t row = t * batch + n, previous = (d.reverse ? t + 1 : t - 1) * batch + n;
          const float* z = d.gate_inputs.data() + row * gates;
          const float* g = d.gates.data() + row * gates;
          const float* h = d.hidden.data() + row * hidden;
          const float* q = d.recurrent_hidden.data() + row * hidden;
          const float* h_prev =
              step > 0 ? d.hidden.data() + previous * hidden : d.initial_hidden.data() + n * hidden;
          const float* r_y_t = r_y != nullptr ? r_y + at.y(t, dir, n) : nullptr;
          for (int64_t j = 0; j < hidden; ++j) {
            if (r_y_t != nullptr) r_h[j] += r_y_t[j];
            const float update = g[update_gate * hidden + j], z_update = z[update_gate * hidden + j];
            const float per_h = r_h[j] / stable(h[j]);
            const float r_new = (1.0f - update) * g[candidate * hidden + j] * per_h;
            const float r_kept = update * h_prev[j] * per_h;
            const float r_z_new = gate_share(r_new, -z_update, z[candidate * hidden + j]);
            const float r_z_kept = gate_share(r_kept, z_update, h_prev[j]);
            direct[j] = r_kept - r_z_kept;
            ratio[update_gate * hidden + j] = (r_z_new + r_z_kept) / stable(z_update);
            ratio[candidate * hidden + j] = (r_new - r_z_new) / stable(z[candidate * hidden + j]);
          }
          // The candidate's recurrent term and the reset product inside it.
          for (int64_t k = 0; k < hidden; ++k) {
            const float reset = g[reset_gate * hidden + k], z_reset = z[reset_gate * hidden + k];
            float r_product = 0.0f, signal = 0.0f;
            if (trace.linear_before_reset) {  // the term r_k ⊙ q_k of a_h,k
              r_product = reset * q[k] * ratio[candidate * hidden + k];
              signal = q[k];
            } else {  // u_k = r_k ⊙ h_{t−1,k}, read by every a_h,j through R_h[j, k]
              float s = 0.0f;
              for (int64_t j = 0; j < hidden; ++j) s += ratio[candidate * hidden + j] * r_hh[j * hidden + k];
              r_product = reset * h_prev[k] * s;
              signal = h_prev[k];
            }
            const float r_reset = gate_share(r_product, z_reset, signal);
            ratio[reset_gate * hidden + k] = r_reset / stable(z_reset);
            if (trace.linear_before_reset)
              r_q[k] = (r_product - r_reset) / stable(q[k]);
            else
              direct[k] += r_product - r_reset;
          }
          // x_t feeds all three pre-activations; h_{t−1} feeds those of z and r through R, and the
          // candidate through u (above) or q (here).
          const float* x = trace.x.data() + row * features;
          float* rx = r_x.data() + at.x(t, n);
          for (int64_t i = 0; i < features; ++i) {
            float s = 0.0f;
            for (int64_t k = 0; k < gates; ++k) s += ratio[k] * d.w[k * features + i];
            rx[i] += x[i] * s;
          }
          for (int64_t k = 0; k < hidden; ++k) {
            float s = 0.0f;
            for (int64_t c = 0; c < candidate * hidden; ++c) s += ratio[c] * d.r[c * hidden + k];
            if (trace.linear_before_reset) {
              for (int64_t j = 0; j < hidden; ++j) s += r_q[j] * r_hh[j * hidden + k];
            }
            r_h_prev[k] = direct[k] + h_prev[k] * s;
          }
          r_h.swap(r_h_prev);
        }
        for (int64_t j = 0; j < hidden; ++j) r_h0[state + j] = r_h[j];
      }
    }
    std::vector<Tensor> back(a.inputs.size());
    back[0] = std::move(r_x);
    if (back.size() > 5) back[5] = std::move(r_h0);
    return back;
  }
};

// The RNN h_t = f(z), z = W x_t + R h_{t−1} + b: the activation passes relevance unchanged (tanh and
// ReLU keep the sign of z and f(0) = 0), the linear map takes the ε-rule.
class RnnTreatment : public CellTreatment {
 public:
  using CellTreatment::CellTreatment;

  std::string describe() const override {
    return "RNN: activation passes relevance, ε-rule (ε = " + format_number(epsilon_) +
           ") on the linear maps";
  }

 private:
  static void check_cell(const Node& node, const ops::RnnTrace& trace) {
    using Kind = ops::CellActivation::Kind;
    if (trace.clip > 0.0f) throw Error(node.spec.where() + ": the RNN relevance rule does not cover clip");
    for (const ops::RnnDirectionTrace& d : trace.directions) {
      if (d.f.kind != Kind::tanh && d.f.kind != Kind::relu)
        throw Error(node.spec.where() +
                    ": the RNN relevance rule passes relevance through Tanh or Relu only (what nn.RNN "
                    "exports); to pass it through the gradient instead, add the rule --rule name=" +
                    node.name + ":gradient");
    }
  }

  std::vector<Tensor> relevance(const Node& node, const VjpArgs& a) const override {
    const ops::RnnTrace trace = ops::rnn_trace(*node.op, a.inputs);
    check_cell(node, trace);
    const int64_t batch = trace.x.dim(1), features = trace.x.dim(2), hidden = trace.hidden_size;
    const auto directions = static_cast<int64_t>(trace.directions.size());
    const NodeLayout at = layout(trace.x, directions, hidden);
    const float *r_y = arriving(a, 0), *r_y_h = arriving(a, 1);
    Tensor r_x(at.x_shape()), r_h0(at.state_shape());
    std::vector<float> r_h(static_cast<size_t>(hidden)), r_h_prev(r_h), no_direct(r_h), ratio(r_h);
    for (int64_t dir = 0; dir < directions; ++dir) {
      const ops::RnnDirectionTrace& d = trace.directions[static_cast<size_t>(dir)];
      for (int64_t n = 0; n < batch; ++n) {
        const int64_t state = at.state(dir, n);
        for (int64_t j = 0; j < hidden; ++j) r_h[j] = r_y_h != nullptr ? r_y_h[state + j] : 0.0f;
        const int64_t length = trace.sequence_lengths[static_cast<size_t>(n)];
        for (int64_t step = length; step-- > 0;) {
          const int64_t t = d.reverse ? length - 1 - step : step;
          const int64_t row = t * batch + n, previous = (d.reverse ? t + 1 : t - 1) * batch + n;
          const float* z = d.gate_inputs.data() + row * hidden;
          const float* h_prev =
              step > 0 ? d.hidden.data() + previous * hidden : d.initial_hidden.data() + n * hidden;
          const float* r_y_t = r_y != nullptr ? r_y + at.y(t, dir, n) : nullptr;
          for (int64_t j = 0; j < hidden; ++j)
            ratio[j] = (r_h[j] + (r_y_t != nullptr ? r_y_t[j] : 0.0f)) / stable(z[j]);
          linear_maps(ratio, d.w, d.r, trace.x.data() + row * features, h_prev, features, hidden,
                      r_x.data() + at.x(t, n), no_direct, r_h_prev);
          r_h.swap(r_h_prev);
        }
        for (int64_t j = 0; j < hidden; ++j) r_h0[state + j] = r_h[j];
      }
    }
    std::vector<Tensor> back(a.inputs.size());
    back[0] = std::move(r_x);
    if (back.size() > 5) back[5] = std::move(r_h0);
    return back;
  }
};

// The ε of the rule the composite gives the node: the cell's linear maps take the ε-rule (§11.3.1).
float linear_map_epsilon(const TreatmentRequest& r) {
  const LinearRule& rule = r.rule != nullptr ? *r.rule : default_linear_rule();
  const bool epsilon_form = rule.branches.size() == 1 && rule.branches[0].input == InputModifier::identity &&
                            rule.branches[0].weight == ParamModifier::identity &&
                            rule.branches[0].bias == ParamModifier::identity && !rule.epsilon_std &&
                            !rule.pass;
  if (!epsilon_form)
    throw Error(r.node.spec.where() +
                ": the recurrent-cell rules (book ch. 11) apply the ε-rule inside the cell; rule '" +
                rule.text + "' does not apply there, give the node its own, e.g. --rule name=" + r.node.name +
                ":epsilon:epsilon=0.001");
  return rule.epsilon;
}

}  // namespace

std::unique_ptr<Treatment> recurrent_treatment(const TreatmentRequest& r) {
  const bool batch_major = r.node.spec.attributes.get_int("layout", 0) == 1;
  const float epsilon = linear_map_epsilon(r);
  switch (ops::recurrent_cell(*r.node.op)) {
    case ops::RecurrentCell::lstm:
      return std::make_unique<LstmTreatment>(batch_major, r.options.lstm_products, epsilon);
    case ops::RecurrentCell::gru:
      return std::make_unique<GruTreatment>(batch_major, r.options.lstm_products, epsilon);
    case ops::RecurrentCell::rnn:
      return std::make_unique<RnnTreatment>(batch_major, r.options.lstm_products, epsilon);
  }
  throw Error(r.node.spec.where() + ": unknown recurrent cell");
}

}  // namespace sieve::rules
