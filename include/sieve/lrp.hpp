#pragma once

// The LRP and Deep Taylor family. Every rule on a linear node (Conv, ConvTranspose, Gemm/MatMul with
// constant weights, average pooling, a standalone BatchNormalization) is one generic four-step mapping
//   z_g = Σ_b σ_b · forward(in_b(a), W_b, b_b)      per branch group g
//   s_g = R ⊙ mask_g / stabilize(z_g)
//   R_in = Σ_b λ_g σ_b · in_b(a) ⊙ backward_data(s_g, W_b)
// and a rule is only the list of branches (input and parameter modifiers), the group weights λ and
// masks, and the stabilizer. A composite assigns rules to nodes by ordered predicates.

#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "sieve/analyzer.hpp"
#include "sieve/io/preprocess.hpp"

namespace sieve {

// What a branch feeds the layer instead of its input a.
enum class InputModifier { identity, positive, negative, ones, low, high };
// What a branch uses instead of a parameter (weights and biases are modified alike).
enum class ParamModifier { identity, positive, negative, square, ones, zero, gamma_positive, gamma_negative };

struct RuleBranch {
  InputModifier input = InputModifier::identity;
  ParamModifier weight = ParamModifier::identity, bias = ParamModifier::identity;
  int group = 0;
  float sign = 1.0f;  // σ_b: how the branch enters its group's z and the relevance
};

enum class GroupMask { none, positive_z, negative_z };  // keep only neurons whose true z is > 0 / < 0
struct RuleGroup {
  float weight = 1.0f;  // λ_g (α, −β)
  GroupMask mask = GroupMask::none;
};

struct LinearRule {
  std::string text;  // the rule as written, e.g. "gamma:gamma=0.25"
  std::vector<RuleBranch> branches;
  std::vector<RuleGroup> groups;
  float gamma = 0.0f;
  float epsilon = 1e-6f;     // stabilize(z) = z + ε·sign(z), sign(0) = +1
  bool epsilon_std = false;  // ε = epsilon × the standard deviation of the layer's z, per sample
  bool pass = false;         // relevance passes unchanged (shape-preserving nodes only)
  bool gradient = false;     // relevance follows the op's gradient (any node, e.g. one without a treatment)
  // Bounds of the z^B rule, one value or one per input channel; empty: taken from the model's input range.
  std::vector<float> low, high;
  bool uses_bounds() const;
};

// "NAME[:key=value,...]" with NAME one of z, epsilon, gamma, alpha_beta, z_plus, z_box, w_square, flat, pass,
// gradient
// (and the parameters ignore_bias=0|1 everywhere, epsilon and epsilon_mode=absolute|std for epsilon,
// gamma for gamma, alpha and beta for alpha_beta, low and high for z_box). Throws on anything else.
LinearRule parse_rule(const std::string& text);
std::vector<std::string> rule_names();

// Which linear nodes a composite entry applies to.
struct NodePredicate {
  enum class Kind { op_type, any, first, last, index_range, name } kind = Kind::any;
  std::string text;           // op type (also of `first`: the first layer of that type) or node name
  int64_t low = 0, high = 0;  // index range over the layers (inclusive)
  // "Conv", "Gemm", …, "any", "first", "first=Conv", "last", "index=K", "index=K-L", "name=NODE".
  static NodePredicate parse(const std::string& text);
};

struct CompositeEntry {
  NodePredicate predicate;
  LinearRule rule;
};

// An ordered list of (predicate, rule); the first match wins. "Layers" are the Conv, ConvTranspose,
// Gemm and MatMul nodes (with constant weights), numbered in topological order; average pooling and
// standalone BatchNormalization match only by op type and otherwise split relevance proportionally.
struct Composite {
  std::vector<CompositeEntry> entries;
  // "PREDICATE:RULE[:key=value,...]", e.g. "Conv:gamma:gamma=0.25", "first:z_box".
  static CompositeEntry parse_entry(const std::string& text);
  // {"rules": [{"match": "Conv", "rule": "gamma", "params": {"gamma": 0.25}}, ...]}
  static Composite read_json(const std::string& path);
};

// A named relevance method (lrp.epsilon_plus, deep_taylor, …): its own parameters with their defaults,
// and the composite it builds from their values (`value(name)`: the given value, else the default).
struct RelevancePreset {
  std::string name, description;
  std::vector<MethodParameter> parameters;
  std::function<Composite(const std::function<std::string(const std::string&)>& value)> composite;
};
// Every relevance preset, in the order `sieve methods` lists them.
const std::vector<RelevancePreset>& relevance_presets();

struct RuleAssignment {
  size_t node = 0;
  std::string name, op_type, rule;  // rule: "gamma:gamma=0.25", "proportional", "winner-take-all", "pass"
};

// Σ R per sample at a node's input (after its mapping) and at its output (before it).
struct LayerRelevance {
  size_t node = 0;
  std::string name, op_type;
  std::vector<double> input_sum, output_sum;
};

// Analyzers of the relevance family (lrp.*, deep_taylor*), which can say how they treat each node and
// how much relevance each node conserves.
class RelevanceAnalyzer : public Analyzer {
 public:
  virtual std::vector<RuleAssignment> assignment(const Model& model) const = 0;
  virtual Tensor explain(const ForwardPass& pass, const Target& target,
                         std::vector<LayerRelevance>* conservation) const = 0;
  Tensor explain(const ForwardPass& pass, const Target& target) const override {
    return explain(pass, target, nullptr);
  }
};

// Σ R at each node's output and input, as means over the explanations of `samples` ([1, ...] each, of
// a single-input model) for class targets of the first output (max, indices, all), with the mean target
// logit they start from.
struct ConservationReport {
  size_t explanations = 0;
  double mean_target_logit = 0.0;
  std::vector<LayerRelevance> layers;  // input_sum and output_sum hold one value each: the mean
};
ConservationReport conservation_report(const RelevanceAnalyzer& analyzer, const Model& model,
                                       const std::vector<Tensor>& samples, const TargetSelection& targets,
                                       int64_t max_batch = 32);

// What --explain-rules prints for a relevance method (`method`, its text): {"method", "nodes": [{"node",
// "op_type", "rule"}]} and the same as a table for people, one line per node.
nlohmann::json rules_json(const std::string& method, const RelevanceAnalyzer& analyzer, const Model& model);
std::string rules_table(const nlohmann::json& rules);
// What --conservation prints: {"method", "explanations", "mean_target_logit", "layers": [{"node",
// "op_type", "sum_out", "sum_in", "ratio"}]} (ratio in/out, 0 where nothing leaves the node) and the
// table for people.
nlohmann::json conservation_json(const std::string& method, const ConservationReport& report);
std::string conservation_table(const nlohmann::json& conservation);

}  // namespace sieve
