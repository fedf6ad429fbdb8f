// The relevance analyzers (lrp.*, deep_taylor*): a composite assigns a rule to every linear node, the
// other nodes get the treatment of their op's role (DESIGN.md table), and the reverse pass does the rest.

#include "rules/relevance_analyzer.hpp"

#include <algorithm>

#include "sieve/batch.hpp"
#include "sieve/error.hpp"
#include "sieve/params.hpp"
#include "sieve/parse.hpp"

namespace sieve::rules {
namespace {

// Per-sample sums of a tensor whose samples run along `axis`.
std::vector<double> sample_sums(const Tensor& t, int64_t axis) {
  if (t.rank() == 0) return {t.size() > 0 ? static_cast<double>(t[0]) : 0.0};
  const int64_t n = t.dim(axis);
  int64_t inner = 1;
  for (int64_t d = axis + 1; d < t.rank(); ++d) inner *= t.dim(d);
  const int64_t outer = n * inner == 0 ? 0 : t.size() / (n * inner);
  std::vector<double> sums(static_cast<size_t>(n), 0.0);
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t i = 0; i < n; ++i) {
      double s = 0.0;
      for (int64_t j = 0; j < inner; ++j) s += t[(o * n + i) * inner + j];
      sums[static_cast<size_t>(i)] += s;
    }
  }
  return sums;
}

// Records Σ R per sample before and after `inner`, over every output relevance arrives at (an LSTM's Y,
// Y_h and Y_c).
BackwardMapping with_conservation(BackwardMapping inner, const Treatment& treatment, size_t n,
                                  std::vector<LayerRelevance>* conservation) {
  return [inner = std::move(inner), &treatment, conservation, n](const Node& node, const VjpArgs& a) {
    std::vector<Tensor> back = inner(node, a);
    LayerRelevance layer{n, node.name, node.spec.op_type, {}, {}};
    for (size_t o = 0; o < a.grad_outputs.size(); ++o) {
      if (a.grad_outputs[o].empty()) continue;
      const std::vector<double> s = sample_sums(a.grad_outputs[o], treatment.sample_axis(true, o));
      layer.output_sum.resize(std::max(layer.output_sum.size(), s.size()), 0.0);
      for (size_t k = 0; k < s.size(); ++k) layer.output_sum[k] += s[k];
    }
    layer.input_sum.assign(layer.output_sum.size(), 0.0);
    for (size_t i = 0; i < back.size(); ++i) {
      if (back[i].empty() || i >= a.wanted.size() || !a.wanted[i]) continue;
      const std::vector<double> s = sample_sums(back[i], treatment.sample_axis(false, i));
      for (size_t k = 0; k < s.size() && k < layer.input_sum.size(); ++k) layer.input_sum[k] += s[k];
    }
    conservation->push_back(std::move(layer));
    return back;
  };
}

}  // namespace

CompositeAnalyzer::CompositeAnalyzer(Composite composite, RelevanceOptions options,
                                     std::optional<InputRange> input_range)
    : composite_(std::move(composite)), options_(options), input_range_(std::move(input_range)) {
  for (const CompositeEntry& e : composite_.entries) {
    if (e.rule.uses_bounds() && e.rule.low.empty() && !input_range_)
      throw Error(
          "rule '" + e.rule.text +
          "' needs the input's value range: give low=…,high=… or a model profile with an input range");
  }
}

void CompositeAnalyzer::prepare(const Model& model) {
  prepared_ = plan(model);
}

const CompositeAnalyzer::Plan& CompositeAnalyzer::plan_for(const Model& model, Plan& scratch) const {
  if (prepared_.model == &model) return prepared_;
  scratch = plan(model);
  return scratch;
}

// The first composite entry matching node n. Linear and recurrent nodes (whose cells hold linear maps)
// take any rule; other nodes only `gradient`. `layers` are the layer nodes on the path, numbered as the
// predicates count them.
const LinearRule* CompositeAnalyzer::matching_rule(const Graph& graph, size_t n, OpRole role,
                                                   const std::vector<size_t>& layers) const {
  const auto& nodes = graph.nodes();
  const bool linear = role == OpRole::linear || role == OpRole::recurrent;
  const auto at = std::find(layers.begin(), layers.end(), n);
  const int64_t index = at == layers.end() ? -1 : at - layers.begin();
  for (const CompositeEntry& e : composite_.entries) {
    if (!linear && !e.rule.gradient) continue;
    const NodePredicate& p = e.predicate;
    bool match = false;
    switch (p.kind) {
      case NodePredicate::Kind::op_type:
        match = nodes[n].spec.op_type == p.text;
        break;
      case NodePredicate::Kind::name:
        match = nodes[n].name == p.text;
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
    if (match) return &e.rule;
  }
  return nullptr;
}

CompositeAnalyzer::Plan CompositeAnalyzer::plan(const Model& model) const {
  const Graph& graph = model.graph();
  const auto& nodes = graph.nodes();
  // Every node between a model input and an output gets its treatment, whichever input is explained
  // (or the embedding lookup of token ids) and whichever output is the target.
  const std::vector<bool> on_path = nodes_between(graph, graph.inputs, graph.outputs);
  // Layers (Conv, ConvTranspose, Gemm, MatMul with constant parameters, recurrent cells) are what
  // composites number.
  std::vector<size_t> layers;
  for (size_t n = 0; n < nodes.size(); ++n) {
    const OpRole role = graph.role(nodes[n]);
    if (on_path[n] &&
        ((role == OpRole::linear && nodes[n].op->as_linear()->is_layer()) || role == OpRole::recurrent))
      layers.push_back(n);
  }
  Plan plan;
  plan.model = &model;
  plan.treatments.resize(nodes.size());
  std::vector<const LinearRule*> rules(nodes.size(), nullptr);
  for (size_t n = 0; n < nodes.size(); ++n) {
    if (!on_path[n]) continue;
    const Node& node = nodes[n];
    const OpRole role = graph.role(node);
    rules[n] = matching_rule(graph, n, role, layers);
    if (rules[n] != nullptr && rules[n]->gradient) {
      plan.treatments[n] = routed_treatment("gradient (by rule)");
      continue;
    }
    const auto treatment = relevance_treatments().find(role);
    if (treatment == relevance_treatments().end())
      throw Error(node.spec.where() + ": a " + std::string(role_name(role)) +
                  " op has no relevance treatment; to pass relevance through its gradient instead, add the "
                  "rule --rule name=" +
                  node.name + ":gradient");
    plan.treatments[n] = treatment->second({graph, node, rules[n], options_, input_range_});
  }
  if (options_.log_odds) {
    const int producer = graph.producers()[static_cast<size_t>(graph.outputs.at(0))];
    const bool top_is_layer = producer >= 0 && std::find(layers.begin(), layers.end(),
                                                         static_cast<size_t>(producer)) != layers.end();
    const LinearRule* top = top_is_layer ? rules[static_cast<size_t>(producer)] : nullptr;
    if (top_is_layer && top == nullptr) top = &default_linear_rule();
    if (top == nullptr || top->gradient || top->branches.size() != 1 ||
        top->branches[0].input != InputModifier::identity ||
        top->branches[0].weight != ParamModifier::identity)
      throw Error(
          "logodds=1 needs the explained output to come from a dense/conv layer with the z or epsilon rule");
    plan.treatments[static_cast<size_t>(producer)] = log_odds_treatment(*top);
  }
  return plan;
}

std::vector<RuleAssignment> CompositeAnalyzer::assignment(const Model& model) const {
  Plan scratch;
  const Plan& plan = plan_for(model, scratch);
  const auto& nodes = model.graph().nodes();
  std::vector<RuleAssignment> out;
  for (size_t n = 0; n < nodes.size(); ++n) {
    if (plan.treatments[n] != nullptr)
      out.push_back({n, nodes[n].name, nodes[n].spec.op_type, plan.treatments[n]->describe()});
  }
  return out;
}

std::vector<ValueId> CompositeAnalyzer::trace_values(const Model& model) const {
  Plan scratch;
  const Plan& plan = plan_for(model, scratch);
  const auto& nodes = model.graph().nodes();
  std::vector<ValueId> keep;
  for (size_t n = 0; n < nodes.size(); ++n) {
    if (plan.treatments[n] == nullptr) continue;
    const std::vector<ValueId> more = plan.treatments[n]->trace_values(nodes[n]);
    keep.insert(keep.end(), more.begin(), more.end());
  }
  return keep;
}

Tensor CompositeAnalyzer::explain(const ForwardPass& pass, const Target& target,
                                  std::vector<LayerRelevance>* conservation) const {
  Plan scratch;
  const Plan& plan = plan_for(pass.model(), scratch);
  if (options_.log_odds && pass.explained_output() != pass.model().graph().outputs.at(0))
    throw Error("logodds=1 explains the model's first output");
  const Tensor seed = target.relevance_seed(pass.output());
  const MappingContext context{target};
  std::vector<BackwardMapping> mappings(plan.treatments.size());
  for (size_t n = 0; n < plan.treatments.size(); ++n) {
    const Treatment* treatment = plan.treatments[n].get();
    if (treatment == nullptr) continue;
    mappings[n] = treatment->mapping(context);
    if (mappings[n] && conservation != nullptr && treatment->moves_relevance())
      mappings[n] = with_conservation(std::move(mappings[n]), *treatment, n, conservation);
  }
  return pass.reverse(seed, [&](size_t n) { return mappings[n] ? &mappings[n] : nullptr; });
}

namespace {

const MethodParameter kMaxpool{"maxpool", "max", "max (winner-take-all) or avg (as average pooling)"};
const MethodParameter kLogOdds{"logodds", "0", "1: explain the target's log-odds (top-layer soft-min)"};
const MethodParameter kLstm{"lstm", "all",
                            "LSTM and GRU products (book ch. 11): all (signal-take-all), prop, abs or half"};
const MethodParameter kNorm{"norm", "ln",
                            "LayerNorm/InstanceNorm: ln (σ held constant, centring linear) or gradient"};
const MethodParameter kAttention{
    "attention", "cp", "softmax: cp (probabilities held constant), attnlrp (AttnLRP's rules) or gradient"};
const MethodParameter kActivation{
    "activation", "identity",
    "element-wise activations: identity (relevance passes unchanged) or gradient (local gradient × input)"};
const MethodParameter kSplitEpsilon{"split_epsilon", "1e-6",
                                    "stabilizer of the proportional splits (sums, products, the LN rule)"};
const MethodParameter kGate{"gate", "signal",
                            "products with a sigmoid gate: signal (the gate gets none) or half"};

RelevanceOptions relevance_options(Params& p) {
  RelevanceOptions options;
  options.maxpool_average = p.choice(kMaxpool.name, kMaxpool.default_value, {"max", "avg"}) == "avg";
  options.log_odds = p.integer(kLogOdds.name, parse_integer(kLogOdds.default_value).value(), 0, 1) != 0;
  if (p.choice(kNorm.name, kNorm.default_value, {"ln", "gradient"}) == "gradient")
    options.normalization = NormalizationTreatment::gradient;
  const std::string attention =
      p.choice(kAttention.name, kAttention.default_value, {"cp", "attnlrp", "gradient"});
  options.attention = attention == "cp"        ? AttentionTreatment::cp
                      : attention == "attnlrp" ? AttentionTreatment::attnlrp
                                               : AttentionTreatment::gradient;
  if (p.choice(kActivation.name, kActivation.default_value, {"identity", "gradient"}) == "gradient")
    options.activation = ActivationTreatment::gradient;
  if (p.choice(kGate.name, kGate.default_value, {"signal", "half"}) == "half")
    options.gate = GateTreatment::half;
  const std::string lstm = p.choice(kLstm.name, kLstm.default_value, {"all", "prop", "abs", "half"});
  options.lstm_products = lstm == "all"    ? LstmProducts::all
                          : lstm == "prop" ? LstmProducts::prop
                          : lstm == "abs"  ? LstmProducts::abs
                                           : LstmProducts::half;
  options.split_epsilon = static_cast<float>(
      p.number(kSplitEpsilon.name, parse_double(kSplitEpsilon.default_value).value(), 1e-30, 1.0));
  return options;
}

}  // namespace

const std::vector<MethodParameter>& shared_relevance_parameters() {
  static const std::vector<MethodParameter> shared{kMaxpool,    kLogOdds, kNorm,         kAttention,
                                                   kActivation, kGate,    kSplitEpsilon, kLstm};
  return shared;
}

std::unique_ptr<Analyzer> make_relevance_analyzer(const RelevancePreset& preset, Params& p,
                                                  const AnalyzerContext& context) {
  const std::string& method = preset.name;
  const RelevanceOptions options = relevance_options(p);
  std::map<std::string, std::string> values;
  for (const MethodParameter& d : preset.parameters) values[d.name] = p.text(d.name, d.default_value);
  if (values.count("low") && values["low"].empty() != values["high"].empty())
    throw Error("method '" + method + "': give both low and high, or neither");
  Composite composite;
  for (const std::string& r : context.rules) composite.entries.push_back(Composite::parse_entry(r));
  if (!context.composite_file.empty()) {
    const Composite file = Composite::read_json(context.composite_file);
    composite.entries.insert(composite.entries.end(), file.entries.begin(), file.entries.end());
  }
  Composite built;
  try {
    built = preset.composite([&values](const std::string& name) { return values.at(name); });
  } catch (const Error& e) {
    throw Error("method '" + method + "': " + e.what());
  }
  composite.entries.insert(composite.entries.end(), built.entries.begin(), built.entries.end());
  return std::make_unique<CompositeAnalyzer>(std::move(composite), options, context.input_range);
}

}  // namespace sieve::rules

namespace sieve {

ConservationReport conservation_report(const RelevanceAnalyzer& analyzer, const Model& model,
                                       const std::vector<Tensor>& samples, const TargetSelection& targets,
                                       int64_t max_batch) {
  ConservationReport report;
  double logit_sum = 0.0;
  const std::vector<ValueId> keep = analyzer.trace_values(model);
  run_in_batches(model, samples, max_batch, [&](const Tensor& x, int64_t, int64_t count) {
    const auto rows = static_cast<size_t>(count);
    const ForwardPass pass(model, x, keep);
    for (const std::vector<int64_t>& t : targets.resolve(pass.output())) {
      std::vector<LayerRelevance> layers;
      analyzer.explain(pass, t, &layers);
      if (report.layers.empty()) {
        report.layers = layers;
        for (LayerRelevance& l : report.layers) l.input_sum.assign(1, 0.0), l.output_sum.assign(1, 0.0);
      }
      for (size_t k = 0; k < layers.size() && k < report.layers.size(); ++k) {
        for (size_t i = 0; i < layers[k].input_sum.size() && i < rows; ++i) {
          report.layers[k].input_sum[0] += layers[k].input_sum[i];
          report.layers[k].output_sum[0] += layers[k].output_sum[i];
        }
      }
      // Per sample the output holds `per` values: classes, or one (a regression like the toy LSTMs').
      const int64_t per = pass.output().size() / std::max<int64_t>(pass.output().dim(0), 1);
      for (size_t i = 0; i < rows; ++i) logit_sum += pass.output()[static_cast<int64_t>(i) * per + t[i]];
      report.explanations += rows;
    }
  });
  const double n = static_cast<double>(std::max<size_t>(report.explanations, 1));
  for (LayerRelevance& l : report.layers) {
    l.input_sum[0] /= n;
    l.output_sum[0] /= n;
  }
  report.mean_target_logit = logit_sum / n;
  return report;
}

}  // namespace sieve
