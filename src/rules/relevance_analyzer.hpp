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

// The parameters every relevance method takes besides its preset's own.
const std::vector<MethodParameter>& shared_relevance_parameters();

// A relevance method: its preset's composite built from the parameters read through `p` (their
// defaults from the preset), the user's entries from `context` ahead of it, and the shared options.
std::unique_ptr<Analyzer> make_relevance_analyzer(const RelevancePreset& preset, Params& p,
                                                  const AnalyzerContext& context);

}  // namespace sieve::rules
