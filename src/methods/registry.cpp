#include <algorithm>
#include <functional>

#include "analyzers/gradient_family.hpp"
#include "patterns/pattern_analyzers.hpp"
#include "rules/relevance_analyzer.hpp"
#include "sieve/error.hpp"
#include "sieve/methods.hpp"

namespace sieve {
namespace {

using Factory = std::function<std::unique_ptr<Analyzer>(Params&, const AnalyzerContext&)>;

template <std::unique_ptr<Analyzer> (*make)(Params&)>
std::unique_ptr<Analyzer> without_context(Params& p, const AnalyzerContext&) {
  return make(p);
}

struct Entry {
  MethodInfo info;
  Factory make;
};

// The relevance family: every method takes maxpool and logodds besides its own parameters.
std::vector<Entry> relevance_methods();

const std::vector<Entry>& registry() {
  static const std::vector<Entry> entries = [] {
    std::vector<Entry> all{
        {{"gradient",
          "∂f_target/∂x (sensitivity)",
          {{"postprocess", "none", "none, abs or square"}},
          "graymap"},
         without_context<analyzers::make_gradient>},
        {{"input_x_gradient", "x ⊙ ∂f_target/∂x", {}, "heatmap"},
         without_context<analyzers::make_input_x_gradient>},
        {{"integrated_gradients",
          "(x − x̄) ⊙ mean gradient on the straight path from x̄, midpoints (k+½)/m",
          {{"steps", "32", "number of path points m"},
           {"baseline", "0", "a constant, or a .npy file shaped like one sample or the whole batch"},
           {"batch", "32", "path points per forward pass"}},
          "heatmap"},
         without_context<analyzers::make_integrated_gradients>},
        {{"smoothgrad",
          "mean gradient over noisy copies x + N(0, σ²), σ = noise_level · (max − min) of the sample",
          {{"n", "32", "number of noisy copies"},
           {"noise_level", "0.2", "σ relative to the sample's value range"},
           {"seed", "0", "random seed"},
           {"postprocess", "none", "none, abs or square (applied to the mean)"},
           {"noise", "",
            "optional .npy [N, n, ...input] of explicit noise draws (overrides n, noise_level, seed)"},
           {"batch", "32", "noisy copies per forward pass"}},
          "graymap"},
         without_context<analyzers::make_smoothgrad>},
        {{"deconvnet",
          "gradient with ReLU backward = relu(gradient), forward gate ignored",
          {},
          "projection"},
         without_context<analyzers::make_deconvnet>},
        {{"guided_backprop",
          "gradient with ReLU backward = relu(gradient) · 1[forward > 0]",
          {},
          "projection"},
         without_context<analyzers::make_guided_backprop>},
    };
    for (Entry& e : relevance_methods()) all.push_back(std::move(e));
    for (const bool attribution : {false, true}) {
      all.push_back(
          {{attribution ? "pattern.attribution" : "pattern.net",
            attribution
                ? "the gradient pass with every layer's weights w replaced by w ⊙ a₊ (seed: the logit)"
                : "the gradient pass with every layer's weights replaced by its pattern a₊ (seed: the logit)",
            {{"patterns", "", "pattern file from sieve fit-patterns (or --patterns)"}},
            attribution ? "heatmap" : "projection"},
           [attribution](Params& p, const AnalyzerContext& context) {
             return patterns::make_pattern_analyzer(attribution, p.text("patterns", context.patterns_file));
           }});
    }
    return all;
  }();
  return entries;
}

std::vector<Entry> relevance_methods() {
  std::vector<Entry> entries;
  for (const RelevancePreset& preset : relevance_presets()) {
    std::vector<MethodParameter> parameters = preset.parameters;
    for (const MethodParameter& shared : rules::shared_relevance_parameters()) parameters.push_back(shared);
    entries.push_back({{preset.name, preset.description, parameters, "heatmap"},
                       [&preset](Params& p, const AnalyzerContext& context) {
                         return rules::make_relevance_analyzer(preset, p, context);
                       }});
  }
  return entries;
}

}  // namespace

const std::vector<MethodInfo>& available_methods() {
  static const std::vector<MethodInfo> infos = [] {
    std::vector<MethodInfo> v;
    for (const Entry& e : registry()) v.push_back(e.info);
    return v;
  }();
  return infos;
}

std::unique_ptr<Analyzer> create_analyzer(const MethodSpec& spec, const AnalyzerContext& context) {
  for (const Entry& e : registry()) {
    if (e.info.name != spec.name) continue;
    Params params(spec);
    std::unique_ptr<Analyzer> analyzer = e.make(params, context);
    params.finish();
    return analyzer;
  }
  std::vector<std::string> names;
  for (const Entry& e : registry()) names.push_back(e.info.name);
  const std::string near = closest_match(spec.name, names);
  throw Error("unknown method '" + spec.name + "' (" + (near.empty() ? "" : "did you mean '" + near + "'? ") +
              "sieve methods lists them)");
}

}  // namespace sieve
