// The relevance treatments, one class each, and the table that chooses them by op role.

#include "rules/treatments.hpp"

#include <algorithm>
#include <cmath>

#include "rules/recurrent_treatment.hpp"
#include "sieve/error.hpp"

namespace sieve::rules {
namespace {

Tensor stabilized_ratio(const Tensor& r, const Tensor& z, float eps) {
  Tensor s = Tensor::uninitialized(z.shape());
  const int64_t n = z.size();
#pragma omp parallel for simd if (n > 65536)
  for (int64_t i = 0; i < n; ++i) s[i] = r[i] / (z[i] + (z[i] >= 0.0f ? eps : -eps));
  return s;
}

std::vector<ValueId> present(const std::vector<ValueId>& values) {
  std::vector<ValueId> out;
  for (ValueId v : values) {
    if (v >= 0) out.push_back(v);
  }
  return out;
}

// A linear node's parameters when they are graph constants (read once per model), else nothing.
std::optional<std::pair<Tensor, Tensor>> constant_parameters(const Graph& graph, const Node& node) {
  const LinearOp& op = *node.op->as_linear();
  if (!op.parameters_are_inputs()) return std::nullopt;
  std::vector<Tensor> inputs{Tensor()};
  for (size_t i = 1; i < node.inputs.size(); ++i) {
    if (node.inputs[i] >= 0 && !graph.value(node.inputs[i]).is_constant()) return std::nullopt;
    inputs.push_back(node.inputs[i] >= 0 ? graph.value(node.inputs[i]).constant : Tensor());
  }
  return std::make_pair(op.weight(inputs), op.bias(inputs));
}

// R_in of one linear node under `rule`, with the rule's parameters computed here unless given.
Tensor relevance_through_rule(const Node& node, const LinearRule& rule, const LinearOp& op, const VjpArgs& a,
                              const std::optional<InputRange>& input_range,
                              const ModifiedParameters* constant_params) {
  const Tensor& x = a.inputs[0];
  const Tensor weight = op.weight(a.inputs), bias = op.bias(a.inputs);
  const ModifiedParameters params =
      constant_params != nullptr ? *constant_params : modify_parameters(rule, weight, bias);
  Tensor low, high;
  if (rule.uses_bounds()) {
    const std::vector<float>& lo = rule.low.empty() ? input_range->low : rule.low;
    const std::vector<float>& hi = rule.high.empty() ? input_range->high : rule.high;
    low = bounds_like(x.shape(), lo, node.spec.where());
    high = bounds_like(x.shape(), hi, node.spec.where());
  }
  const Tensor none;
  const LinearRuleInputs in{
      op, x, weight, bias, a.outputs.empty() ? none : a.outputs[0], a.grad_outputs[0], low, high};
  return apply_linear_rule(rule, params, in);
}

class RoutedTreatment : public Treatment {
 public:
  explicit RoutedTreatment(std::string description) : description_(std::move(description)) {}
  std::string describe() const override { return description_; }
  BackwardMapping mapping(const MappingContext&) const override { return {}; }

 private:
  std::string description_;
};

// Relevance passes unchanged (element-wise activations, and the `pass` rule on shape-preserving nodes).
class PassTreatment : public Treatment {
 public:
  std::string describe() const override { return "pass"; }
  bool moves_relevance() const override { return false; }
  BackwardMapping mapping(const MappingContext&) const override {
    return [](const Node& node, const VjpArgs& a) {
      if (a.grad_outputs[0].shape() != a.input_shapes[0])
        throw Error(node.spec.where() + ": relevance cannot pass unchanged from shape " +
                    to_string(a.grad_outputs[0].shape()) + " to " + to_string(a.input_shapes[0]));
      return std::vector<Tensor>{a.grad_outputs[0]};
    };
  }
};

// A composite's rule on a linear node; substitute parameters of constant weights are computed once.
class LinearRuleTreatment : public Treatment {
 public:
  LinearRuleTreatment(const TreatmentRequest& r, const LinearRule& rule)
      : rule_(rule), input_range_(r.input_range) {
    if (const auto params = constant_parameters(r.graph, r.node))
      constant_params_ = modify_parameters(rule_, params->first, params->second);
  }
  std::string describe() const override { return rule_.text; }
  std::vector<ValueId> trace_values(const Node& node) const override { return present(node.outputs); }
  BackwardMapping mapping(const MappingContext&) const override {
    return [this](const Node& node, const VjpArgs& a) {
      const ModifiedParameters* params = constant_params_ ? &*constant_params_ : nullptr;
      return std::vector<Tensor>{
          relevance_through_rule(node, rule_, *node.op->as_linear(), a, input_range_, params)};
    };
  }

 private:
  const LinearRule& rule_;
  std::optional<InputRange> input_range_;
  std::optional<ModifiedParameters> constant_params_;
};

// Explains η_c = log(p_c / (1 − p_c)) instead of the logit (book ch.10 §10.3.1): the top layer becomes
// z_{c,c'} = z_c − z_{c'} with soft-min pooling, R_{c,c'} = z_{c,c'}·softmin(z_{c,·})_{c'}; with the z/ε
// rule on the difference weights that is R_in = a ⊙ Wᵀ v, v = Σ_{c'} R_{c,c'}/stab(z_{c,c'}) (e_c − e_{c'}).
class LogOddsTreatment : public Treatment {
 public:
  explicit LogOddsTreatment(const LinearRule& rule) : rule_(rule) {}
  std::string describe() const override { return "log-odds top layer with " + rule_.text; }
  std::vector<ValueId> trace_values(const Node& node) const override { return present(node.outputs); }
  BackwardMapping mapping(const MappingContext& context) const override {
    if (!context.target.is_index())
      throw Error("log-odds explains one class per sample, not a sum or a mask of the output");
    return [this, &targets = context.target.indices()](const Node& node, const VjpArgs& a) {
      return std::vector<Tensor>{relevance(node, a, targets)};
    };
  }

 private:
  Tensor relevance(const Node& node, const VjpArgs& a, const std::vector<int64_t>& targets) const {
    const LinearOp& op = *node.op->as_linear();
    const Tensor& x = a.inputs[0];
    const Tensor logits =
        a.outputs[0].empty() ? op.apply(x, op.weight(a.inputs), op.bias(a.inputs)) : a.outputs[0];
    if (logits.rank() != 2) throw Error(node.spec.where() + ": log-odds needs a [batch, classes] output");
    const int64_t n = logits.dim(0), classes = logits.dim(1);
    if (classes < 2) throw Error(node.spec.where() + ": log-odds needs at least two classes");
    Tensor v(logits.shape());
    for (int64_t i = 0; i < n; ++i) {
      const int64_t c = targets[static_cast<size_t>(i)];
      const float* z = logits.data() + i * classes;
      double min_diff = INFINITY;
      for (int64_t k = 0; k < classes; ++k) {
        if (k != c) min_diff = std::min(min_diff, static_cast<double>(z[c]) - z[k]);
      }
      double norm = 0.0;
      for (int64_t k = 0; k < classes; ++k) {
        if (k != c) norm += std::exp(-(static_cast<double>(z[c]) - z[k] - min_diff));
      }
      for (int64_t k = 0; k < classes; ++k) {
        if (k == c) continue;
        const double diff = static_cast<double>(z[c]) - z[k];
        const double r = diff * std::exp(-(diff - min_diff)) / norm;
        const double s = r / (diff + (diff >= 0.0 ? rule_.epsilon : -rule_.epsilon));
        v[i * classes + c] += static_cast<float>(s);
        v[i * classes + k] -= static_cast<float>(s);
      }
    }
    const Tensor c = op.apply_transpose(v, op.weight(a.inputs), x.shape());
    Tensor r = Tensor::uninitialized(x.shape());
    for (int64_t i = 0; i < x.size(); ++i) r[i] = x[i] * c[i];
    return r;
  }

  const LinearRule& rule_;
};

// R_i = share_i · x_i ⊙ ∂z/∂x_i · R / stabilize(z): each operand's share of the output (sums, scalings,
// local gradient × input on activations; halved between the two factors of a product). Held operands
// are constants for the split and get no relevance (the gate of a product). With `fixed_divisor` the
// derivative is the op's with its divisor held (the LN rule).
struct Split {
  std::string description;
  float epsilon;  // the stabilizer
  float share = 1.0f;
  std::vector<bool> held;  // per input; missing entries are not held
  bool fixed_divisor = false;
};

class ProportionalTreatment : public Treatment {
 public:
  explicit ProportionalTreatment(Split split) : split_(std::move(split)) {}
  std::string describe() const override { return split_.description; }
  std::vector<ValueId> trace_values(const Node& node) const override {
    std::vector<ValueId> keep = present(node.outputs);
    for (ValueId v : present(node.inputs)) keep.push_back(v);
    return keep;
  }
  BackwardMapping mapping(const MappingContext&) const override {
    return [this](const Node& node, const VjpArgs& a) {
      if (a.outputs[0].empty())
        throw Error(node.spec.where() + ": the forward pass did not keep the values relevance needs " +
                    "(run it with the analyzer's trace_values)");
      const Tensor s = stabilized_ratio(a.grad_outputs[0], a.outputs[0], split_.epsilon);
      const std::vector<Tensor> grad_out{s};
      const size_t n = a.wanted.size();
      const std::unique_ptr<bool[]> wanted(new bool[n]);
      for (size_t i = 0; i < n; ++i) wanted[i] = a.wanted[i] && !(i < split_.held.size() && split_.held[i]);
      const VjpArgs ratio{a.inputs, a.input_shapes, a.outputs, grad_out,
                          std::span<const bool>(wanted.get(), n)};
      std::vector<Tensor> back =
          split_.fixed_divisor ? node.op->vjp_fixed_divisor(ratio) : node.op->vjp(ratio);
      for (size_t i = 0; i < back.size(); ++i) {
        if (back[i].empty() || i >= n || !wanted[i]) {
          back[i] = Tensor();
          continue;
        }
        const Tensor& x = a.inputs[i];
        if (x.shape() != back[i].shape())
          throw Error(node.spec.where() + ": relevance shape " + to_string(back[i].shape()) +
                      " differs from the operand's " + to_string(x.shape()));
        Tensor r = Tensor::uninitialized(x.shape());
        for (int64_t k = 0; k < x.size(); ++k) r[k] = split_.share * x[k] * back[i][k];
        back[i] = std::move(r);
      }
      return back;
    };
  }

 private:
  Split split_;
};

// Nothing flows back: the node's output is a constant for relevance (softmax probabilities under CP-LRP).
class HeldTreatment : public Treatment {
 public:
  explicit HeldTreatment(std::string description) : description_(std::move(description)) {}
  std::string describe() const override { return description_; }
  BackwardMapping mapping(const MappingContext&) const override {
    return [](const Node& node, const VjpArgs&) { return std::vector<Tensor>(node.inputs.size()); };
  }

 private:
  std::string description_;
};

// Max pooling treated as the average pooling of the same windows, with LRP-0.
class AveragePoolTreatment : public Treatment {
 public:
  explicit AveragePoolTreatment(std::unique_ptr<Op> twin) : twin_(std::move(twin)) {}
  std::string describe() const override { return "as average pooling (z)"; }
  std::vector<ValueId> trace_values(const Node& node) const override { return present(node.inputs); }
  BackwardMapping mapping(const MappingContext&) const override {
    return [this](const Node& node, const VjpArgs& a) {
      const VjpArgs one{a.inputs.subspan(0, 1),
                        a.input_shapes.subspan(0, 1),
                        {},
                        a.grad_outputs.subspan(0, 1),
                        a.wanted.subspan(0, 1)};
      return std::vector<Tensor>{relevance_through_rule(node, default_linear_rule(), *twin_->as_linear(), one,
                                                        std::nullopt, nullptr)};
    };
  }

 private:
  std::unique_ptr<Op> twin_;
};

std::unique_ptr<Treatment> linear_treatment(const TreatmentRequest& r) {
  // Unmatched layers, average pooling and standalone BatchNormalization: LRP-0 (a proportional split
  // of R over the contributions, biases included).
  const LinearRule& rule = r.rule != nullptr ? *r.rule : default_linear_rule();
  if (rule.pass) return std::make_unique<PassTreatment>();
  return std::make_unique<LinearRuleTreatment>(r, rule);
}

// The node that made `v`, looking through data movement (reshapes, transposes, slices, copies).
const Node* source_of(const Graph& graph, const std::vector<int>& producers, ValueId v) {
  for (;;) {
    const int p = v >= 0 ? producers[static_cast<size_t>(v)] : -1;
    if (p < 0) return nullptr;
    const Node& node = graph.nodes()[static_cast<size_t>(p)];
    if (graph.role(node) != OpRole::data_movement || node.inputs.empty()) return &node;
    v = node.inputs[0];
  }
}

// True when `v` is a gate of a product under the method's options: a sigmoid-like activation's output
// (unless gate=half), or softmax probabilities under attention=cp.
bool is_held_factor(const Graph& graph, const std::vector<int>& producers, ValueId v,
                    const RelevanceOptions& options) {
  const Node* source = source_of(graph, producers, v);
  if (source == nullptr) return false;
  if (graph.role(*source) == OpRole::softmax) return options.attention == AttentionTreatment::cp;
  return source->op->is_gate() && options.gate == GateTreatment::signal;
}

std::unique_ptr<Treatment> product_treatment(const TreatmentRequest& r) {
  const Graph& graph = r.graph;
  const std::vector<int> producers = graph.producers();
  std::vector<bool> held(r.node.inputs.size(), false);
  size_t varying = 0, gates = 0;
  for (size_t i = 0; i < r.node.inputs.size(); ++i) {
    const ValueId v = r.node.inputs[i];
    if (v < 0 || graph.value(v).is_constant()) continue;
    ++varying;
    if (is_held_factor(graph, producers, v, r.options)) held[i] = true, ++gates;
  }
  if (gates == 0 || gates == varying)
    return std::make_unique<ProportionalTreatment>(Split{
        "proportional split, halved between the two factors", r.options.split_epsilon, 0.5f, {}, false});
  const float share = 1.0f / static_cast<float>(varying - gates);
  return std::make_unique<ProportionalTreatment>(Split{
      "signal-take-all: the gate is held constant", r.options.split_epsilon, share, std::move(held), false});
}

// Every reader of `v`, looking through data movement: true when all of them are products.
bool read_only_by_products(const Graph& graph, ValueId v) {
  bool any = false;
  for (const Node& node : graph.nodes()) {
    if (std::find(node.inputs.begin(), node.inputs.end(), v) == node.inputs.end()) continue;
    const OpRole role = graph.role(node);
    if (role == OpRole::data_movement) {
      for (ValueId out : node.outputs)
        if (!read_only_by_products(graph, out)) return false;
    } else if (role != OpRole::product) {
      return false;
    }
    any = true;
  }
  return any;
}

std::unique_ptr<Treatment> softmax_treatment(const TreatmentRequest& r) {
  switch (r.options.attention) {
    case AttentionTreatment::gradient:
      return routed_treatment("gradient (attention=gradient)");
    case AttentionTreatment::attnlrp:
      return std::make_unique<ProportionalTreatment>(
          Split{"AttnLRP: x ⊙ (R − s ΣR)", r.options.split_epsilon, 1.0f, {}, false});
    case AttentionTreatment::cp:
      break;
  }
  // Held probabilities are the weights of the products that read them; a softmax read otherwise (a
  // probability output) would silently explain nothing.
  if (!read_only_by_products(r.graph, r.node.outputs.at(0)))
    throw Error(r.node.spec.where() +
                ": a softmax whose output is not multiplied with values (attention weights) has no relevance "
                "treatment under attention=cp; explain the logits before it, use attention=attnlrp, or pass "
                "relevance through its gradient instead with the rule --rule name=" +
                r.node.name + ":gradient");
  return std::make_unique<HeldTreatment>("held constant (CP-LRP)");
}

std::unique_ptr<Treatment> normalization_treatment(const TreatmentRequest& r) {
  if (r.options.normalization == NormalizationTreatment::gradient)
    return routed_treatment("gradient (norm=gradient)");
  return std::make_unique<ProportionalTreatment>(
      Split{"LN rule: divisor held constant, proportional split", r.options.split_epsilon, 1.0f, {}, true});
}

std::unique_ptr<Treatment> activation_treatment(const TreatmentRequest& r) {
  if (r.options.activation == ActivationTreatment::gradient)
    return std::make_unique<ProportionalTreatment>(
        Split{"local gradient × input", r.options.split_epsilon, 1.0f, {}, false});
  return std::make_unique<PassTreatment>();
}

std::unique_ptr<Treatment> max_selection_treatment(const TreatmentRequest& r) {
  if (!r.options.maxpool_average) return routed_treatment("winner-take-all");
  std::unique_ptr<Op> twin = r.node.op->average_pool_twin();
  if (twin == nullptr)
    throw Error(r.node.spec.where() + ": maxpool=avg needs an average-pooling form of the op");
  return std::make_unique<AveragePoolTreatment>(std::move(twin));
}

}  // namespace

std::unique_ptr<Treatment> routed_treatment(std::string description) {
  return std::make_unique<RoutedTreatment>(std::move(description));
}

std::unique_ptr<Treatment> log_odds_treatment(const LinearRule& rule) {
  return std::make_unique<LogOddsTreatment>(rule);
}

const LinearRule& default_linear_rule() {
  static const LinearRule rule = parse_rule("z");
  return rule;
}

const std::map<OpRole, TreatmentFactory>& relevance_treatments() {
  static const std::map<OpRole, TreatmentFactory> table{
      {OpRole::linear, linear_treatment},
      {OpRole::monotone_activation, activation_treatment},
      {OpRole::nonmonotone_activation, activation_treatment},
      {OpRole::proportional,
       [](const TreatmentRequest& r) {
         return std::make_unique<ProportionalTreatment>(
             Split{"proportional split", r.options.split_epsilon, 1.0f, {}, false});
       }},
      {OpRole::product, product_treatment},
      {OpRole::softmax, softmax_treatment},
      {OpRole::normalization, normalization_treatment},
      {OpRole::max_selection, max_selection_treatment},
      {OpRole::recurrent, recurrent_treatment},
      {OpRole::data_movement, [](const TreatmentRequest&) { return routed_treatment("routed (gradient)"); }},
      {OpRole::shape_only, [](const TreatmentRequest&) { return routed_treatment("routed (gradient)"); }},
  };
  return table;
}

}  // namespace sieve::rules
