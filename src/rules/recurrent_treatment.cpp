// LRP through an LSTM node by the book's ch. 11 §11.3 (Arras et al.): the cell is recomputed step by
// step and its relevance walked back against each direction's processing order through three
// computations —
// the linear maps to the gate pre-activations (ε-rule, the bias keeps its share), the products
// gate ⊙ signal (Table 11.1) and the accumulation c_t = f ⊙ c_{t−1} + i ⊙ g (a proportional split).

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

// The ε-rule's stabilizer, sign(0) = +1 like the linear rules'.
float stabilized(float z, float eps) {
  return z + (z >= 0.0f ? eps : -eps);
}

// Gate blocks of the ONNX LSTM, in its order: unit j of gate k is column k·H + j.
enum Gate : int64_t { input_gate = 0, output_gate = 1, forget_gate = 2, cell_input = 3 };

class LstmTreatment : public Treatment {
 public:
  LstmTreatment(LstmProducts products, float epsilon) : products_(products), epsilon_(epsilon) {}

  std::string describe() const override {
    const std::string name = product_rule_name(products_);
    return "LSTM (book ch. 11): ε-rule (ε = " + format_number(epsilon_) + ") on the linear maps, products " +
           (products_ == LstmProducts::all ? "signal-take-all" : "split by LRP-" + name) + " (lstm=" + name +
           "), cell-state sums proportional";
  }
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
  // Layout 0 is time-major: Y [T, D, N, H], Y_h and Y_c [D, N, H], X [T, N, I], initial states [D, N, H].
  int64_t sample_axis(bool output, size_t index) const override { return output && index == 0 ? 2 : 1; }

 private:
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

  // R of X, initial_h and initial_c from the relevance at Y [T, D, N, H], Y_h and Y_c [D, N, H]; each
  // direction walks its steps back against its processing order, and X collects both directions' shares.
  std::vector<Tensor> relevance(const Node& node, const VjpArgs& a) const {
    const ops::LstmTrace trace = ops::lstm_trace(*node.op, a.inputs);
    check_cell(node, trace);
    const int64_t batch = trace.x.dim(1), features = trace.x.dim(2);
    const int64_t hidden = trace.hidden_size, gates = 4 * hidden;
    const auto directions = static_cast<int64_t>(trace.directions.size());
    const auto arriving = [&](size_t k) {
      return k < a.grad_outputs.size() && !a.grad_outputs[k].empty() ? a.grad_outputs[k].data() : nullptr;
    };
    const float *r_y = arriving(0), *r_y_h = arriving(1), *r_y_c = arriving(2);
    Tensor r_x(trace.x.shape()), r_h0(Shape{directions, batch, hidden}), r_c0(r_h0.shape());
    std::vector<float> r_h(static_cast<size_t>(hidden)), r_c(r_h), r_h_prev(r_h),
        ratio(static_cast<size_t>(gates));
    for (int64_t dir = 0; dir < directions; ++dir) {
      const ops::LstmDirectionTrace& d = trace.directions[static_cast<size_t>(dir)];
      for (int64_t n = 0; n < batch; ++n) {
        const int64_t state = (dir * batch + n) * hidden;
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
          const float* x = trace.x.data() + row * features;
          const float* r_y_t = r_y != nullptr ? r_y + ((t * directions + dir) * batch + n) * hidden : nullptr;
          for (int64_t j = 0; j < hidden; ++j) {
            if (r_y_t != nullptr) r_h[j] += r_y_t[j];
            // h = o ⊙ tanh(c): the signal's pre-activation is c itself.
            const float r_o = gate_share(r_h[j], z[output_gate * hidden + j], c[j]);
            r_c[j] += r_h[j] - r_o;
            // c = f ⊙ c_prev + i ⊙ g, split in proportion to the two terms.
            const float per_c = r_c[j] / stabilized(c[j], epsilon_);
            const float r_input = g[input_gate * hidden + j] * g[cell_input * hidden + j] * per_c;
            const float r_kept = g[forget_gate * hidden + j] * c_prev[j] * per_c;
            const float r_i = gate_share(r_input, z[input_gate * hidden + j], z[cell_input * hidden + j]);
            const float r_f = gate_share(r_kept, z[forget_gate * hidden + j], c_prev[j]);
            r_c[j] = r_kept - r_f;
            const float to_gate[4] = {r_i, r_o, r_f, r_input - r_i};
            for (int64_t k = 0; k < 4; ++k) {
              const int64_t col = k * hidden + j;
              ratio[col] = to_gate[k] / stabilized(z[col], epsilon_);
            }
          }
          // The linear maps z = W x + R h_prev + b: x and h_prev take their contributions' shares.
          float* rx = r_x.data() + row * features;
          for (int64_t i = 0; i < features; ++i) {
            float s = 0.0f;
            for (int64_t k = 0; k < gates; ++k) s += ratio[k] * d.w[k * features + i];
            rx[i] += x[i] * s;
          }
          for (int64_t j = 0; j < hidden; ++j) {
            float s = 0.0f;
            for (int64_t k = 0; k < gates; ++k) s += ratio[k] * d.r[k * hidden + j];
            r_h_prev[j] = h_prev[j] * s;
          }
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

  LstmProducts products_;
  float epsilon_;
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
                ": the LSTM rules (book ch. 11) apply the ε-rule inside the cell; rule '" + rule.text +
                "' does not apply there, give the node its own, e.g. --rule name=" + r.node.name +
                ":epsilon:epsilon=0.001");
  return rule.epsilon;
}

}  // namespace

std::unique_ptr<Treatment> recurrent_treatment(const TreatmentRequest& r) {
  if (r.node.spec.op_type != "LSTM")
    throw Error(r.node.spec.where() +
                ": a recurrent cell op has no relevance treatment but the LSTM's (book ch. 11); to pass "
                "relevance through its gradient instead, add the rule --rule name=" +
                r.node.name + ":gradient");
  if (r.node.spec.attributes.get_int("layout", 0) != 0)
    throw Error(r.node.spec.where() + ": the LSTM relevance treatment covers layout 0 ([seq, batch, ·])");
  return std::make_unique<LstmTreatment>(r.options.lstm_products, linear_map_epsilon(r));
}

}  // namespace sieve::rules
