#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <optional>

#include "rules/linear_rule.hpp"
#include "sieve/lrp.hpp"

namespace sieve::rules {

struct RelevanceOptions {
  bool maxpool_average = false;  // max-pooling as average pooling instead of winner-take-all
  bool log_odds = false;         // explain the log-odds of the target instead of its logit
};

class CompositeAnalyzer : public RelevanceAnalyzer {
 public:
  CompositeAnalyzer(Composite composite, RelevanceOptions options, std::optional<InputRange> input_range);
  std::vector<RuleAssignment> assignment(const Model& model) const override;
  std::vector<ValueId> trace_values(const Model& model) const override;
  using RelevanceAnalyzer::explain;
  Tensor explain(const ForwardPass& pass, const std::vector<int64_t>& targets,
                 std::vector<LayerRelevance>* conservation) const override;

 private:
  enum class Treatment { gradient, pass, linear_rule, log_odds, proportional, bilinear, max_as_average };
  struct NodeTreatment {
    Treatment kind = Treatment::gradient;
    const LinearRule* rule = nullptr;
  };
  struct CachedParameters {
    Tensor weight, bias;
    ModifiedParameters modified;
  };

  static bool is_layer_type(const std::string& type);
  void check_bounds(const LinearRule& rule) const;
  std::vector<NodeTreatment> plan(const Model& model) const;
  ModifiedParameters parameters(const LinearOp& op, const LinearRule& rule, const Tensor& weight,
                                const Tensor& bias) const;
  Tensor relevance_through_rule(const Node& node, const LinearRule& rule, const LinearOp& op,
                                const VjpArgs& a, const Tensor& relevance) const;
  Tensor log_odds_relevance(const Node& node, const LinearRule& rule, const LinearOp& op, const VjpArgs& a,
                            const std::vector<int64_t>& targets) const;

  Composite composite_;
  RelevanceOptions options_;
  std::optional<InputRange> input_range_;
  LinearRule proportional_rule_;  // LRP-0: unmatched linear nodes, pooling
  mutable std::mutex mutex_;
  // Modified constant parameters per (node op, rule), computed once.
  mutable std::map<std::pair<const Op*, const LinearRule*>, CachedParameters> cache_;
};

}  // namespace sieve::rules

namespace sieve::analyzers {
class Params;
}

namespace sieve::rules {

// A relevance method by name: its preset composite with the method's parameters (`declared`, read
// through `p`), the user's entries from `context` ahead of it, and the shared options maxpool / logodds.
std::unique_ptr<Analyzer> make_relevance_analyzer(const std::string& method, analyzers::Params& p,
                                                  const AnalyzerContext& context,
                                                  const std::vector<MethodParameter>& declared);

}  // namespace sieve::rules
