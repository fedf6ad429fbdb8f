#pragma once

// How the relevance family passes relevance back through one node: a treatment is chosen per node
// from the op's role, the composite's rule and the method's options, once per model, and owns what it
// computed for that node (modified parameters, the average-pooling twin of a max pooling).

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "rules/linear_rule.hpp"
#include "sieve/analyzer.hpp"
#include "sieve/graph.hpp"
#include "sieve/reverse.hpp"

namespace sieve::rules {

// How relevance crosses the structures of recent architectures (docs/methods.md, "Transformers, gates
// and normalization").
enum class NormalizationTreatment {
  fixed_divisor,  // LN rule: the standard deviation held constant, the centring linear (Ali et al. 2022)
  gradient,       // through the op's own vector-Jacobian product
};
enum class AttentionTreatment {
  cp,        // softmax probabilities held constant: relevance flows only through the values (CP-LRP)
  attnlrp,   // AttnLRP (Achtibat et al. 2024): x ⊙ (R − s ΣR) on softmax, ½/½ on bilinear products
  gradient,  // the softmax's own vector-Jacobian product
};
enum class ActivationTreatment {
  identity,  // relevance passes unchanged
  gradient,  // local gradient × input: R_in = x ⊙ f'(x) ⊙ R / f(x)
};
enum class GateTreatment {
  signal,  // signal-take-all: the gate of x·σ(·) is a constant and gets no relevance
  half,    // the two factors share it equally
};

// The book's ch. 11 product rules for the gate ⊙ signal products of LSTM and GRU cells (Table 11.1).
enum class LstmProducts {
  all,   // signal-take-all: the gate gets no relevance
  prop,  // in proportion to the pre-activations
  abs,   // in proportion to their magnitudes
  half,  // halves
};

struct RelevanceOptions {
  bool maxpool_average = false;  // max-pooling as average pooling instead of winner-take-all
  bool log_odds = false;         // explain the log-odds of the target instead of its logit
  NormalizationTreatment normalization = NormalizationTreatment::fixed_divisor;
  AttentionTreatment attention = AttentionTreatment::cp;
  ActivationTreatment activation = ActivationTreatment::identity;
  GateTreatment gate = GateTreatment::signal;
  float split_epsilon = 1e-6f;  // the stabilizer of proportional splits (sums, products, the LN rule)
  // How the products gate ⊙ signal of LSTM and GRU cells split relevance (book Table 11.1).
  LstmProducts lstm_products = LstmProducts::all;
};

// What a backward mapping may read beyond the node's forward values.
struct MappingContext {
  const Target& target;
};

class Treatment {
 public:
  virtual ~Treatment() = default;
  // Its line for --explain-rules.
  virtual std::string describe() const = 0;
  // Forward values of `node` the mapping reads beyond its op's VJP reads (kept in the trace).
  virtual std::vector<ValueId> trace_values(const Node& /*node*/) const { return {}; }
  // The backward mapping; an empty function routes relevance through the op's own VJP.
  virtual BackwardMapping mapping(const MappingContext& context) const = 0;
  // False when relevance passes unchanged, so a conservation report skips the node.
  virtual bool moves_relevance() const { return true; }
  // The axis the samples of the node's output or input `index` run along, for a conservation report.
  virtual int64_t sample_axis(bool /*output*/, size_t /*index*/) const { return 0; }
};

// What a treatment is chosen from.
struct TreatmentRequest {
  const Graph& graph;
  const Node& node;
  const LinearRule* rule;  // the composite's rule for the node, or nullptr when none matched
  const RelevanceOptions& options;
  const std::optional<InputRange>& input_range;  // default z^B bounds
};

// Relevance follows the op's vector-Jacobian product: data movement, shapes, max selection
// (winner-take-all) and every node a `gradient` rule names.
std::unique_ptr<Treatment> routed_treatment(std::string description);
// The log-odds top layer (book ch. 10 §10.3.1) with the z or ε rule `rule`.
std::unique_ptr<Treatment> log_odds_treatment(const LinearRule& rule);
// LRP-0, the rule of linear nodes no composite entry matches.
const LinearRule& default_linear_rule();

// The treatment of each role that has one, from the role and the method's options; a role missing
// here has no relevance treatment, and a node of it needs an explicit `gradient` rule.
using TreatmentFactory = std::function<std::unique_ptr<Treatment>(const TreatmentRequest&)>;
const std::map<OpRole, TreatmentFactory>& relevance_treatments();

}  // namespace sieve::rules
