// The relevance analyzers (lrp.*, deep_taylor*): a composite assigns a rule to every linear node, the
// other nodes get the family's fixed treatment (DESIGN.md table), and the reverse pass does the rest.

#include "rules/relevance_analyzer.hpp"

#include <cmath>
#include <mutex>

#include "analyzers/params.hpp"
#include "rules/linear_rule.hpp"
#include "sieve/error.hpp"

namespace sieve::rules {
namespace {

bool is_activation(const std::string& op) {
  return op == "Relu" || op == "LeakyRelu" || op == "Elu" || op == "Sigmoid" || op == "Tanh" || op == "Clip";
}

bool constant_input(const Graph& graph, const Node& node, size_t i) {
  return i < node.inputs.size() && node.inputs[i] >= 0 && graph.value(node.inputs[i]).is_constant();
}

// Conv, ConvTranspose, Gemm and MatMul with constant parameters: the "layers" composites count.
bool is_layer(const Graph& graph, const Node& node) {
  const std::string& t = node.spec.op_type;
  if (node.op->as_linear() == nullptr) return false;
  if (t != "Conv" && t != "ConvTranspose" && t != "Gemm" && t != "MatMul") return false;
  for (size_t i = 1; i < node.inputs.size(); ++i) {
    if (node.inputs[i] >= 0 && !constant_input(graph, node, i)) return false;
  }
  return true;
}

// Per-sample sums of a tensor [N, ...].
std::vector<double> sample_sums(const Tensor& t) {
  const int64_t n = t.rank() > 0 ? t.dim(0) : 1, per = n == 0 ? 0 : t.size() / n;
  std::vector<double> sums(static_cast<size_t>(n), 0.0);
  for (int64_t i = 0; i < n; ++i) {
    double s = 0.0;
    for (int64_t j = 0; j < per; ++j) s += t[i * per + j];
    sums[static_cast<size_t>(i)] = s;
  }
  return sums;
}

Tensor stabilized_ratio(const Tensor& r, const Tensor& z, float eps) {
  Tensor s = Tensor::uninitialized(z.shape());
  const int64_t n = z.size();
#pragma omp parallel for simd if (n > 65536)
  for (int64_t i = 0; i < n; ++i) s[i] = r[i] / (z[i] + (z[i] >= 0.0f ? eps : -eps));
  return s;
}

}  // namespace

CompositeAnalyzer::CompositeAnalyzer(Composite composite, RelevanceOptions options,
                                     std::optional<InputRange> input_range)
    : composite_(std::move(composite)),
      options_(options),
      input_range_(std::move(input_range)),
      proportional_rule_(parse_rule("z")) {
  for (const CompositeEntry& e : composite_.entries) check_bounds(e.rule);
}

void CompositeAnalyzer::check_bounds(const LinearRule& rule) const {
  if (rule.uses_bounds() && rule.low.empty() && !input_range_)
    throw Error("rule '" + rule.text +
                "' needs the input's value range: give low=…,high=… or a model profile with an input range");
}

std::vector<CompositeAnalyzer::NodeTreatment> CompositeAnalyzer::plan(const Model& model) const {
  const Graph& graph = model.graph();
  const auto& nodes = graph.nodes();
  const ReversePlan reverse(graph, graph.outputs.at(0), graph.inputs.at(0));
  std::vector<NodeTreatment> plan(nodes.size());
  std::vector<size_t> layers;
  for (size_t n = 0; n < nodes.size(); ++n) {
    if (reverse.on_path(n) && is_layer(graph, nodes[n])) layers.push_back(n);
  }
  auto layer_index = [&](size_t n) -> int64_t {
    const auto it = std::find(layers.begin(), layers.end(), n);
    return it == layers.end() ? -1 : it - layers.begin();
  };
  for (size_t n = 0; n < nodes.size(); ++n) {
    if (!reverse.on_path(n)) continue;
    const Node& node = nodes[n];
    const std::string& type = node.spec.op_type;
    NodeTreatment& t = plan[n];
    const int64_t index = layer_index(n);
    if (node.op->as_linear() != nullptr && (index >= 0 || !is_layer_type(type))) {
      for (const CompositeEntry& e : composite_.entries) {
        const NodePredicate& p = e.predicate;
        bool match = false;
        switch (p.kind) {
          case NodePredicate::Kind::op_type:
            match = type == p.text;
            break;
          case NodePredicate::Kind::name:
            match = node.name == p.text;
            break;
          case NodePredicate::Kind::any:
            match = index >= 0;
            break;
          case NodePredicate::Kind::first: {
            if (index < 0) break;
            const auto first = std::find_if(layers.begin(), layers.end(), [&](size_t l) {
              return p.text.empty() || nodes[l].spec.op_type == p.text;
            });
            match = first != layers.end() && *first == n;
            break;
          }
          case NodePredicate::Kind::last:
            match = index >= 0 && n == layers.back();
            break;
          case NodePredicate::Kind::index_range:
            match = index >= p.low && index <= p.high;
            break;
        }
        if (match) {
          t.kind = Treatment::linear_rule;
          t.rule = &e.rule;
          break;
        }
      }
      if (t.rule == nullptr) {
        // Unmatched layers, average pooling and standalone BatchNormalization: LRP-0 (a proportional
        // split of R over the contributions, biases included).
        t.kind = Treatment::linear_rule;
        t.rule = &proportional_rule_;
      }
      if (t.rule->pass) t.kind = Treatment::pass;
    } else if (is_activation(type)) {
      t.kind = Treatment::pass;
    } else if (type == "MaxPool" || type == "GlobalMaxPool") {
      t.kind = options_.maxpool_average ? Treatment::max_as_average : Treatment::gradient;
    } else if (type == "Add" || type == "Sub" || type == "Mul" || type == "Div" || type == "MatMul") {
      int on_path = 0;
      for (ValueId v : node.inputs) on_path += v >= 0 && reverse.on_path_value(v);
      t.kind = on_path > 1 && (type == "Mul" || type == "Div" || type == "MatMul") ? Treatment::bilinear
                                                                                   : Treatment::proportional;
    } else {
      t.kind = Treatment::gradient;
    }
  }
  if (options_.log_odds) {
    const int producer = graph.producers()[static_cast<size_t>(graph.outputs.at(0))];
    const bool top_is_layer =
        producer >= 0 && !layers.empty() && layers.back() == static_cast<size_t>(producer);
    const NodeTreatment& top = producer >= 0 ? plan[static_cast<size_t>(producer)] : NodeTreatment{};
    if (!top_is_layer || top.rule == nullptr || top.rule->branches.size() != 1 ||
        top.rule->branches[0].input != InputModifier::identity ||
        top.rule->branches[0].weight != ParamModifier::identity)
      throw Error(
          "logodds=1 needs the explained output to come from a dense/conv layer with the z or epsilon rule");
    plan[static_cast<size_t>(producer)].kind = Treatment::log_odds;
  }
  return plan;
}

bool CompositeAnalyzer::is_layer_type(const std::string& type) {
  return type == "Conv" || type == "ConvTranspose" || type == "Gemm" || type == "MatMul";
}

std::vector<RuleAssignment> CompositeAnalyzer::assignment(const Model& model) const {
  const std::vector<NodeTreatment> treatments = plan(model);
  const auto& nodes = model.graph().nodes();
  const ReversePlan reverse(model.graph(), model.graph().outputs.at(0), model.graph().inputs.at(0));
  std::vector<RuleAssignment> out;
  for (size_t n = 0; n < nodes.size(); ++n) {
    if (!reverse.on_path(n)) continue;
    const NodeTreatment& t = treatments[n];
    std::string what;
    switch (t.kind) {
      case Treatment::linear_rule:
        what = t.rule->text;
        break;
      case Treatment::log_odds:
        what = "log-odds top layer with " + t.rule->text;
        break;
      case Treatment::pass:
        what = "pass";
        break;
      case Treatment::proportional:
        what = "proportional split";
        break;
      case Treatment::bilinear:
        what = "proportional split, halved between the two factors";
        break;
      case Treatment::max_as_average:
        what = "as average pooling (z)";
        break;
      case Treatment::gradient:
        what = nodes[n].spec.op_type.find("MaxPool") != std::string::npos ? "winner-take-all"
                                                                          : "routed (gradient)";
        break;
    }
    out.push_back({n, nodes[n].name, nodes[n].spec.op_type, what});
  }
  return out;
}

std::vector<ValueId> CompositeAnalyzer::trace_values(const Model& model) const {
  const std::vector<NodeTreatment> treatments = plan(model);
  const auto& nodes = model.graph().nodes();
  std::vector<ValueId> keep;
  for (size_t n = 0; n < nodes.size(); ++n) {
    const Treatment k = treatments[n].kind;
    if (k == Treatment::linear_rule || k == Treatment::log_odds || k == Treatment::proportional ||
        k == Treatment::bilinear) {
      for (ValueId v : nodes[n].outputs) keep.push_back(v);
    }
    if (k == Treatment::proportional || k == Treatment::bilinear || k == Treatment::max_as_average) {
      for (ValueId v : nodes[n].inputs) {
        if (v >= 0) keep.push_back(v);
      }
    }
  }
  keep.erase(std::remove(keep.begin(), keep.end(), -1), keep.end());
  return keep;
}

ModifiedParameters CompositeAnalyzer::parameters(const LinearOp& op, const LinearRule& rule,
                                                 const Tensor& weight, const Tensor& bias) const {
  // Parameters derived at run time (BatchNormalization, pooling) are small and never cached.
  if (!op.parameters_are_inputs()) return modify_parameters(rule, weight, bias);
  std::lock_guard<std::mutex> lock(mutex_);
  CachedParameters& c = cache_[{&op, &rule}];
  // Holding the weight pins its storage, so the same address means the same constant.
  if (c.weight.empty() || c.weight.data() != weight.data() || c.bias.data() != bias.data()) {
    c.weight = weight;
    c.bias = bias;
    c.modified = modify_parameters(rule, weight, bias);
  }
  return c.modified;
}

Tensor CompositeAnalyzer::relevance_through_rule(const Node& node, const LinearRule& rule, const LinearOp& op,
                                                 const VjpArgs& a, const Tensor& relevance) const {
  const Tensor& x = a.inputs[0];
  const Tensor weight = op.weight(a.inputs), bias = op.bias(a.inputs);
  const ModifiedParameters params = parameters(op, rule, weight, bias);
  Tensor low, high;
  if (rule.uses_bounds()) {
    const std::vector<float>& lo = rule.low.empty() ? input_range_->low : rule.low;
    const std::vector<float>& hi = rule.high.empty() ? input_range_->high : rule.high;
    low = bounds_like(x.shape(), lo, node.spec.where());
    high = bounds_like(x.shape(), hi, node.spec.where());
  }
  const Tensor none;
  const LinearRuleInputs in{op,        x,   weight, bias, a.outputs.empty() ? none : a.outputs[0],
                            relevance, low, high};
  return apply_linear_rule(rule, params, in);
}

// Explains η_c = log(p_c / (1 − p_c)) instead of the logit (book ch.10 §10.3.1): the top layer becomes
// z_{c,c'} = z_c − z_{c'} with soft-min pooling, R_{c,c'} = z_{c,c'}·softmin(z_{c,·})_{c'}; with the z/ε
// rule on the difference weights that is R_in = a ⊙ Wᵀ v, v = Σ_{c'} R_{c,c'}/stab(z_{c,c'}) (e_c − e_{c'}).
Tensor CompositeAnalyzer::log_odds_relevance(const Node& node, const LinearRule& rule, const LinearOp& op,
                                             const VjpArgs& a, const std::vector<int64_t>& targets) const {
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
      const double s = r / (diff + (diff >= 0.0 ? rule.epsilon : -rule.epsilon));
      v[i * classes + c] += static_cast<float>(s);
      v[i * classes + k] -= static_cast<float>(s);
    }
  }
  const Tensor c = op.apply_transpose(v, op.weight(a.inputs), x.shape());
  Tensor r = Tensor::uninitialized(x.shape());
  for (int64_t i = 0; i < x.size(); ++i) r[i] = x[i] * c[i];
  return r;
}

Tensor CompositeAnalyzer::explain(const ForwardPass& pass, const std::vector<int64_t>& targets,
                                  std::vector<LayerRelevance>* conservation) const {
  const Model& model = pass.model();
  const auto& nodes = model.graph().nodes();
  const std::vector<NodeTreatment> treatments = plan(model);
  const Tensor seed = logit_seed(pass, targets);

  // Max-pooling treated as average pooling runs through an average-pooling op of the same geometry.
  std::vector<std::unique_ptr<Op>> average_pools(nodes.size());
  std::vector<BackwardMapping> mappings(nodes.size());
  std::vector<bool> has_mapping(nodes.size(), false);
  for (size_t n = 0; n < nodes.size(); ++n) {
    const NodeTreatment t = treatments[n];
    const Node& node = nodes[n];
    switch (t.kind) {
      case Treatment::gradient:
        continue;
      case Treatment::pass:
        mappings[n] = [](const Node& nd, const VjpArgs& a) {
          if (a.grad_outputs[0].shape() != a.input_shapes[0])
            throw Error(nd.spec.where() + ": relevance cannot pass unchanged from shape " +
                        to_string(a.grad_outputs[0].shape()) + " to " + to_string(a.input_shapes[0]));
          return std::vector<Tensor>{a.grad_outputs[0]};
        };
        break;
      case Treatment::linear_rule:
        mappings[n] = [this, t](const Node& nd, const VjpArgs& a) {
          return std::vector<Tensor>{
              relevance_through_rule(nd, *t.rule, *nd.op->as_linear(), a, a.grad_outputs[0])};
        };
        break;
      case Treatment::log_odds:
        mappings[n] = [this, t, &targets](const Node& nd, const VjpArgs& a) {
          return std::vector<Tensor>{log_odds_relevance(nd, *t.rule, *nd.op->as_linear(), a, targets)};
        };
        break;
      case Treatment::max_as_average: {
        OpSpec spec = node.spec;
        spec.op_type = node.spec.op_type == "MaxPool" ? "AveragePool" : "GlobalAveragePool";
        spec.num_outputs = 1;
        Attributes attributes;
        for (const char* key : {"kernel_shape", "strides", "pads", "auto_pad", "ceil_mode", "dilations"}) {
          if (!node.spec.attributes.has(key)) continue;
          if (std::string(key) == "auto_pad") {
            attributes.set(key, node.spec.attributes.get_string(key, "NOTSET"));
          } else if (std::string(key) == "ceil_mode") {
            attributes.set(key, node.spec.attributes.get_int(key, 0));
          } else {
            attributes.set(key, node.spec.attributes.get_ints(key));
          }
        }
        spec.attributes = attributes;
        average_pools[n] = create_op(spec);
        const LinearOp* avg = average_pools[n]->as_linear();
        mappings[n] = [this, avg](const Node& nd, const VjpArgs& a) {
          const VjpArgs one{a.inputs.subspan(0, 1),
                            a.input_shapes.subspan(0, 1),
                            {},
                            a.grad_outputs.subspan(0, 1),
                            a.wanted.subspan(0, 1)};
          return std::vector<Tensor>{
              relevance_through_rule(nd, proportional_rule_, *avg, one, a.grad_outputs[0])};
        };
        break;
      }
      case Treatment::proportional:
      case Treatment::bilinear: {
        const float share = t.kind == Treatment::bilinear ? 0.5f : 1.0f;
        // R_i = x_i ⊙ ∂z/∂x_i · R / stabilize(z): each operand's share of the output.
        mappings[n] = [share](const Node& nd, const VjpArgs& a) {
          if (a.outputs[0].empty())
            throw Error(nd.spec.where() + ": the forward pass did not keep the values relevance needs " +
                        "(run it with the analyzer's trace_values)");
          const Tensor s = stabilized_ratio(a.grad_outputs[0], a.outputs[0], 1e-6f);
          const std::vector<Tensor> grad_out{s};
          const VjpArgs ratio{a.inputs, a.input_shapes, a.outputs, grad_out, a.wanted};
          std::vector<Tensor> back = nd.op->vjp(ratio);
          for (size_t i = 0; i < back.size(); ++i) {
            if (back[i].empty() || !a.wanted[i]) continue;
            const Tensor& x = a.inputs[i];
            if (x.shape() != back[i].shape())
              throw Error(nd.spec.where() + ": relevance shape " + to_string(back[i].shape()) +
                          " differs from the operand's " + to_string(x.shape()));
            Tensor r = Tensor::uninitialized(x.shape());
            for (int64_t k = 0; k < x.size(); ++k) r[k] = share * x[k] * back[i][k];
            back[i] = std::move(r);
          }
          return back;
        };
        break;
      }
    }
    has_mapping[n] = true;
    if (conservation != nullptr && t.kind != Treatment::pass) {
      BackwardMapping inner = std::move(mappings[n]);
      mappings[n] = [inner, conservation, n](const Node& nd, const VjpArgs& a) {
        std::vector<Tensor> back = inner(nd, a);
        LayerRelevance layer{n, nd.name, nd.spec.op_type, {}, sample_sums(a.grad_outputs[0])};
        layer.input_sum.assign(layer.output_sum.size(), 0.0);
        for (size_t i = 0; i < back.size(); ++i) {
          if (back[i].empty() || i >= a.wanted.size() || !a.wanted[i]) continue;
          const std::vector<double> s = sample_sums(back[i]);
          for (size_t k = 0; k < s.size() && k < layer.input_sum.size(); ++k) layer.input_sum[k] += s[k];
        }
        conservation->push_back(std::move(layer));
        return back;
      };
    }
  }
  return pass.reverse(seed, [&](size_t n) { return has_mapping[n] ? &mappings[n] : nullptr; });
}

}  // namespace sieve::rules

namespace sieve::rules {

std::unique_ptr<Analyzer> make_relevance_analyzer(const std::string& method, analyzers::Params& p,
                                                  const AnalyzerContext& context,
                                                  const std::vector<MethodParameter>& declared) {
  RelevanceOptions options;
  std::map<std::string, std::string> values;
  for (const MethodParameter& d : declared) {
    if (d.name == "maxpool") {
      options.maxpool_average = p.choice("maxpool", "max", {"max", "avg"}) == "avg";
    } else if (d.name == "logodds") {
      options.log_odds = p.integer("logodds", 0, 0, 1) != 0;
    } else {
      const std::string v = p.text(d.name, "");
      if (!v.empty()) values[d.name] = v;
    }
  }
  if (values.count("low") != values.count("high"))
    throw Error("method '" + method + "': give both low and high, or neither");
  Composite composite;
  for (const std::string& r : context.rules) composite.entries.push_back(Composite::parse_entry(r));
  if (!context.composite_file.empty()) {
    const Composite file = Composite::read_json(context.composite_file);
    composite.entries.insert(composite.entries.end(), file.entries.begin(), file.entries.end());
  }
  Composite preset;
  try {
    preset = preset_composite(method, values);
  } catch (const Error& e) {
    throw Error("method '" + method + "': " + e.what());
  }
  composite.entries.insert(composite.entries.end(), preset.entries.begin(), preset.entries.end());
  return std::make_unique<CompositeAnalyzer>(std::move(composite), options, context.input_range);
}

}  // namespace sieve::rules
