// DeepLIFT (METHODS.md §1.12; Shrikumar et al. 2017). The Rescale rule in its gradient form: the
// reverse pass of the gradient with every element-wise activation's derivative replaced by the
// multiplier Δout/Δin against a forward pass on the baseline, and the result multiplied by (x − x̄).
// Max pooling routes the gradient to the arg-max, which is what Captum's DeepLift computes on the
// shared references (docs/methods.md). The RevealCancel rule carries the positive and negative parts
// of every difference-from-reference separately, forward and back.

#include "analyzers/deeplift.hpp"

#include <algorithm>
#include <cmath>

#include "analyzers/baseline.hpp"
#include "sieve/error.hpp"

namespace sieve::analyzers {
namespace {

// Below this |Δin| the multiplier is the gradient (Captum's eps).
constexpr float kSameAsReference = 1e-10f;

std::vector<int64_t> all_rows(const Tensor& x) {
  std::vector<int64_t> rows;
  for (int64_t r = 0; r < x.dim(0); ++r) rows.push_back(r);
  return rows;
}

// Element-wise a + b, either may be empty (nothing arrived).
Tensor sum(const Tensor& a, const Tensor& b) {
  if (a.empty()) return b;
  if (b.empty()) return a;
  if (a.shape() != b.shape())
    throw Error("deeplift: shapes " + to_string(a.shape()) + " and " + to_string(b.shape()) + " differ");
  Tensor s = Tensor::uninitialized(a.shape());
  for (int64_t i = 0; i < s.size(); ++i) s[i] = a[i] + b[i];
  return s;
}

Tensor difference(const Tensor& a, const Tensor& b) {
  Tensor d = Tensor::uninitialized(a.shape());
  for (int64_t i = 0; i < d.size(); ++i) d[i] = a[i] - b[i];
  return d;
}

// The RevealCancel rule (Shrikumar et al. 2017, §3.5.3). Every difference from the reference Δ = Δ⁺ + Δ⁻
// is carried as its positive and negative parts. A linear layer sends Δx⁺ through W⁺ and Δx⁻ through W⁻
// into Δz⁺ (and the other two products into Δz⁻); its bias cancels in the difference. An element-wise
// nonlinearity f at reference z̄ gives
//   Δy⁺ = ½(f(z̄+Δz⁺) − f(z̄)) + ½(f(z̄+Δz⁻+Δz⁺) − f(z̄+Δz⁻)),   Δy⁻ the same with ⁺ and ⁻ swapped,
// so Δy⁺ + Δy⁻ = Δy exactly, with the multipliers m⁺ = Δy⁺/Δz⁺ and m⁻ = Δy⁻/Δz⁻. Data movement
// carries both parts unchanged. The multipliers go back the same ways, and the contribution of an input
// element is Δx⁺·m⁺ + Δx⁻·m⁻: the contributions sum to the change of the target.
Tensor reveal_cancel(const ForwardPass& pass, const Target& target, const Tensor& reference_input) {
  const Graph& graph = pass.model().graph();
  const std::vector<Node>& nodes = graph.nodes();
  const ReversePlan plan(graph, pass.explained_output(), pass.explained_input());
  const auto varying = [&](ValueId v) {
    return v >= 0 && !graph.value(v).is_constant() && plan.on_path_value(v);
  };
  std::vector<ValueId> keep;  // every input of the reference pass's nodes on the path
  for (size_t n = 0; n < nodes.size(); ++n) {
    if (!plan.on_path(n)) continue;
    for (ValueId v : nodes[n].inputs) {
      if (v >= 0) keep.push_back(v);
    }
  }
  const Tensor& x = pass.input();
  const ForwardPass reference = pass.at(reference_input, all_rows(x), keep);
  const auto reference_inputs = [&](const Node& node) {
    std::vector<Tensor> in;
    for (ValueId v : node.inputs) in.push_back(v >= 0 ? reference.value(v) : Tensor());
    return in;
  };
  const auto refuse = [](const Node& node, const std::string& why) {
    return Error("deeplift: rule=reveal_cancel: node '" + node.name + "' (" + std::string(node.op->type()) +
                 ") " + why +
                 "; the rule is defined on linear layers, element-wise activations and data movement");
  };

  const size_t values = graph.values().size();
  std::vector<Tensor> up(values), down(values);  // Δ⁺ and Δ⁻ of every value on the path
  {
    const Tensor delta = difference(x, reference_input);
    Tensor& p = up[static_cast<size_t>(plan.input())];
    Tensor& m = down[static_cast<size_t>(plan.input())];
    p = Tensor::uninitialized(x.shape());
    m = Tensor::uninitialized(x.shape());
    for (int64_t i = 0; i < x.size(); ++i) {
      p[i] = std::max(delta[i], 0.0f);
      m[i] = std::min(delta[i], 0.0f);
    }
  }
  // Per node: the split weights of a linear layer, the two multipliers of an activation.
  std::vector<Tensor> weight_up(nodes.size()), weight_down(nodes.size());
  std::vector<Tensor> slope_up(nodes.size()), slope_down(nodes.size());
  for (size_t n = 0; n < nodes.size(); ++n) {
    if (!plan.on_path(n)) continue;
    const Node& node = nodes[n];
    std::vector<Tensor> in = reference_inputs(node);
    const auto at = [&](ValueId v, std::vector<Tensor>& parts) -> const Tensor& {
      return parts[static_cast<size_t>(v)];
    };
    switch (graph.role(node)) {
      case OpRole::linear: {
        const LinearOp& op = *node.op->as_linear();
        const Tensor w = op.weight(in);
        Tensor& wp = weight_up[n];
        Tensor& wn = weight_down[n];
        wp = Tensor::uninitialized(w.shape());
        wn = Tensor::uninitialized(w.shape());
        for (int64_t i = 0; i < w.size(); ++i) {
          wp[i] = std::max(w[i], 0.0f);
          wn[i] = std::min(w[i], 0.0f);
        }
        const Tensor& xp = at(node.inputs[0], up);
        const Tensor& xn = at(node.inputs[0], down);
        up[static_cast<size_t>(node.outputs[0])] =
            sum(op.apply(xp, wp, Tensor()), op.apply(xn, wn, Tensor()));
        down[static_cast<size_t>(node.outputs[0])] =
            sum(op.apply(xn, wp, Tensor()), op.apply(xp, wn, Tensor()));
        break;
      }
      case OpRole::monotone_activation:
      case OpRole::nonmonotone_activation: {
        std::vector<size_t> moving;
        for (size_t i = 0; i < node.inputs.size(); ++i) {
          if (varying(node.inputs[i])) moving.push_back(i);
        }
        if (moving.size() != 1) throw refuse(node, "has several varying inputs");
        const size_t k = moving[0];
        const Tensor z = in[k];
        const auto f = [&](const Tensor& dp, const Tensor& dn) {
          Tensor shifted = Tensor::uninitialized(z.shape());
          for (int64_t i = 0; i < z.size(); ++i)
            shifted[i] = z[i] + (dp.empty() ? 0.0f : dp[i]) + (dn.empty() ? 0.0f : dn[i]);
          in[k] = shifted;
          return node.op->forward(in).at(0);
        };
        const Tensor& dp = at(node.inputs[k], up);
        const Tensor& dn = at(node.inputs[k], down);
        const Tensor f0 = f(Tensor(), Tensor()), fp = f(dp, Tensor()), fn = f(Tensor(), dn), fpn = f(dp, dn);
        if (f0.shape() != z.shape()) throw refuse(node, "is not element-wise in its varying input");
        Tensor yp = Tensor::uninitialized(z.shape()), yn = Tensor::uninitialized(z.shape());
        slope_up[n] = Tensor::uninitialized(z.shape());
        slope_down[n] = Tensor::uninitialized(z.shape());
        for (int64_t i = 0; i < z.size(); ++i) {
          yp[i] = 0.5f * (fp[i] - f0[i]) + 0.5f * (fpn[i] - fn[i]);
          yn[i] = 0.5f * (fn[i] - f0[i]) + 0.5f * (fpn[i] - fp[i]);
          // A zero part has nothing to pass on (each of its terms is zero), so its multiplier is moot.
          slope_up[n][i] = dp[i] == 0.0f ? 0.0f : yp[i] / dp[i];
          slope_down[n][i] = dn[i] == 0.0f ? 0.0f : yn[i] / dn[i];
        }
        up[static_cast<size_t>(node.outputs[0])] = yp;
        down[static_cast<size_t>(node.outputs[0])] = yn;
        break;
      }
      case OpRole::data_movement: {
        // Affine in the moved values: f(x̄ + Δ) − f(x̄) moves Δ and drops what the op adds (a pad value).
        const std::vector<Tensor> f0 = node.op->forward(in);
        for (std::vector<Tensor>* parts : {&up, &down}) {
          std::vector<Tensor> shifted = in;
          for (size_t i = 0; i < node.inputs.size(); ++i) {
            if (varying(node.inputs[i])) shifted[i] = sum(in[i], at(node.inputs[i], *parts));
          }
          const std::vector<Tensor> moved = node.op->forward(shifted);
          for (size_t o = 0; o < node.outputs.size(); ++o) {
            if (node.outputs[o] >= 0)
              (*parts)[static_cast<size_t>(node.outputs[o])] = difference(moved[o], f0[o]);
          }
        }
        break;
      }
      default:
        throw refuse(node, "is neither");
    }
  }

  // The multipliers of Δ⁺ and Δ⁻, from the target's weights at the output back to the input.
  std::vector<Tensor> m_up(values), m_down(values);
  const Tensor seed = target.gradient_seed(pass.output());
  m_up[static_cast<size_t>(plan.output())] = seed;
  m_down[static_cast<size_t>(plan.output())] = seed;
  const auto add_to = [](std::vector<Tensor>& parts, ValueId v, const Tensor& t) {
    parts[static_cast<size_t>(v)] = sum(parts[static_cast<size_t>(v)], t);
  };
  for (size_t n = nodes.size(); n-- > 0;) {
    if (!plan.on_path(n)) continue;
    const Node& node = nodes[n];
    const auto out_of = [&](std::vector<Tensor>& parts, size_t o) -> const Tensor& {
      return parts[static_cast<size_t>(node.outputs[o])];
    };
    switch (graph.role(node)) {
      case OpRole::linear: {
        const Tensor& gp = out_of(m_up, 0);
        const Tensor& gn = out_of(m_down, 0);
        if (gp.empty()) break;
        const LinearOp& op = *node.op->as_linear();
        const Shape& shape = up[static_cast<size_t>(node.inputs[0])].shape();
        add_to(
            m_up, node.inputs[0],
            sum(op.apply_transpose(gp, weight_up[n], shape), op.apply_transpose(gn, weight_down[n], shape)));
        add_to(
            m_down, node.inputs[0],
            sum(op.apply_transpose(gn, weight_up[n], shape), op.apply_transpose(gp, weight_down[n], shape)));
        break;
      }
      case OpRole::monotone_activation:
      case OpRole::nonmonotone_activation: {
        const Tensor& gp = out_of(m_up, 0);
        const Tensor& gn = out_of(m_down, 0);
        if (gp.empty()) break;
        Tensor bp = Tensor::uninitialized(gp.shape()), bn = Tensor::uninitialized(gn.shape());
        for (int64_t i = 0; i < gp.size(); ++i) {
          bp[i] = gp[i] * slope_up[n][i];
          bn[i] = gn[i] * slope_down[n][i];
        }
        for (ValueId v : node.inputs) {
          if (!varying(v)) continue;
          add_to(m_up, v, bp);
          add_to(m_down, v, bn);
        }
        break;
      }
      default: {  // data movement: the VJP moves each multiplier back
        const std::vector<Tensor> in = reference_inputs(node);
        std::vector<Shape> shapes;
        for (const Tensor& t : in) shapes.push_back(t.shape());
        std::vector<Tensor> out;
        for (ValueId v : node.outputs) out.push_back(v >= 0 ? reference.value(v) : Tensor());
        std::unique_ptr<bool[]> wanted = std::make_unique<bool[]>(node.inputs.size());
        for (size_t i = 0; i < node.inputs.size(); ++i) wanted[i] = varying(node.inputs[i]);
        for (std::vector<Tensor>* parts : {&m_up, &m_down}) {
          std::vector<Tensor> grads;
          bool any = false;
          for (ValueId v : node.outputs) {
            grads.push_back(v >= 0 ? (*parts)[static_cast<size_t>(v)] : Tensor());
            any = any || !grads.back().empty();
          }
          if (!any) continue;
          const VjpArgs args{in, shapes, out, grads, std::span<const bool>(wanted.get(), node.inputs.size())};
          const std::vector<Tensor> back = node.op->vjp(args);
          for (size_t i = 0; i < node.inputs.size() && i < back.size(); ++i) {
            if (wanted[i] && !back[i].empty()) add_to(*parts, node.inputs[i], back[i]);
          }
        }
        break;
      }
    }
  }
  const Tensor& mp = m_up[static_cast<size_t>(plan.input())];
  const Tensor& mn = m_down[static_cast<size_t>(plan.input())];
  const Tensor& dp = up[static_cast<size_t>(plan.input())];
  const Tensor& dn = down[static_cast<size_t>(plan.input())];
  Tensor r = Tensor::uninitialized(x.shape());
  for (int64_t i = 0; i < x.size(); ++i) r[i] = dp[i] * mp[i] + dn[i] * mn[i];
  return r;
}

class DeepLift : public Analyzer {
 public:
  explicit DeepLift(Params& p) : baseline_(p.text("baseline", "0"), "deeplift") {
    reveal_cancel_ = p.choice("rule", "rescale", {"rescale", "reveal_cancel"}) == "reveal_cancel";
  }

  std::vector<ValueId> trace_values(const Model& model) const override {
    return reveal_cancel_ ? std::vector<ValueId>{} : activation_values(model);
  }

  Tensor explain(const ForwardPass& pass, const Target& target) const override {
    const Tensor& x = pass.input();
    const Tensor reference_input = baseline_.for_batch(x);
    if (reveal_cancel_) return reveal_cancel(pass, target, reference_input);
    const ForwardPass reference = pass.at(reference_input, all_rows(x), activation_values(pass.model()));
    const Graph& graph = pass.model().graph();

    const BackwardMapping rescale = [&](const Node& node, const VjpArgs& a) -> std::vector<Tensor> {
      const Tensor& in_ref = reference.value(node.inputs[0]);
      const Tensor& out_ref = reference.value(node.outputs[0]);
      const Tensor gradient = node.op->vjp(a).at(0);
      const Tensor& g = a.grad_outputs[0];
      Tensor m = Tensor::uninitialized(g.shape());
      for (int64_t i = 0; i < m.size(); ++i) {
        const float delta_in = a.inputs[0][i] - in_ref[i];
        m[i] = std::abs(delta_in) < kSameAsReference ? gradient[i]
                                                     : g[i] * (a.outputs[0][i] - out_ref[i]) / delta_in;
      }
      return {m};
    };
    const BackwardMapping refuse = [](const Node& node, const VjpArgs&) -> std::vector<Tensor> {
      throw Error("deeplift: node '" + node.name + "' (" + std::string(node.op->type()) +
                  ") is neither linear, an element-wise activation nor max pooling, where the Rescale "
                  "rule is defined");
    };
    const Tensor multipliers =
        pass.reverse(target.gradient_seed(pass.output()), [&](size_t index) -> const BackwardMapping* {
          switch (graph.role(graph.nodes()[index])) {
            case OpRole::monotone_activation:
              return &rescale;
            case OpRole::product:
            case OpRole::softmax:
            case OpRole::recurrent:  // gated products inside the cell
              return &refuse;
            default:
              return nullptr;
          }
        });
    Tensor r = Tensor::uninitialized(x.shape());
    for (int64_t i = 0; i < x.size(); ++i) r[i] = (x[i] - reference_input[i]) * multipliers[i];
    return r;
  }

 private:
  // The inputs and outputs of every element-wise activation, in both passes.
  static std::vector<ValueId> activation_values(const Model& model) {
    std::vector<ValueId> keep;
    const Graph& graph = model.graph();
    for (const Node& node : graph.nodes()) {
      if (graph.role(node) != OpRole::monotone_activation) continue;
      keep.push_back(node.inputs.at(0));
      keep.push_back(node.outputs.at(0));
    }
    return keep;
  }

  Baseline baseline_;
  bool reveal_cancel_ = false;
};

}  // namespace

std::unique_ptr<Analyzer> make_deeplift(Params& p) {
  return std::make_unique<DeepLift>(p);
}

}  // namespace sieve::analyzers
