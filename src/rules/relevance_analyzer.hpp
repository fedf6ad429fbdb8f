#pragma once

#include <memory>
#include <optional>

#include "rules/treatments.hpp"
#include "sieve/lrp.hpp"

namespace sieve::rules {

// The relevance methods: a treatment per node on the path, chosen from its op's role and the
// composite's rule, once per model (prepare) or per call for a model it was not prepared for.
class CompositeAnalyzer : public RelevanceAnalyzer {
 public:
  CompositeAnalyzer(Composite composite, RelevanceOptions options, std::optional<InputRange> input_range);
  void prepare(const Model& model) override;
  std::vector<RuleAssignment> assignment(const Model& model) const override;
  std::vector<ValueId> trace_values(const Model& model) const override;
  using RelevanceAnalyzer::explain;
  Tensor explain(const ForwardPass& pass, const Target& target,
                 std::vector<LayerRelevance>* conservation) const override;

 private:
  struct Plan {
    const Model* model = nullptr;
    std::vector<std::unique_ptr<Treatment>> treatments;  // per node; null off the explained path
  };
  Plan plan(const Model& model) const;
  // The prepared plan when `model` is the prepared one, else `scratch` made for this call.
  const Plan& plan_for(const Model& model, Plan& scratch) const;
  const LinearRule* matching_rule(const Graph& graph, size_t n, OpRole role,
                                  const std::vector<size_t>& layers) const;

  Composite composite_;
  RelevanceOptions options_;
  std::optional<InputRange> input_range_;
  Plan prepared_;
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
