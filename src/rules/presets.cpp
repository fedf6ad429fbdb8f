// The named relevance methods: each preset's parameters and defaults are written here once, and the
// method registry and the composite it builds both read them from this table.

#include "sieve/lrp.hpp"

namespace sieve {
namespace {

using ParameterValue = std::function<std::string(const std::string&)>;

CompositeEntry entry(const std::string& predicate, const std::string& rule) {
  return CompositeEntry{NodePredicate::parse(predicate), parse_rule(rule)};
}

Composite uniform(const std::string& rule) {
  return Composite{{entry("any", rule)}};
}

// The rule on convolutions (and transposed ones) ahead of `rest`, which ends with the dense layers' rule.
Composite convolutions_then(const std::string& conv_rule, std::vector<CompositeEntry> head,
                            const std::string& dense_rule) {
  head.push_back(entry("Conv", conv_rule));
  head.push_back(entry("ConvTranspose", conv_rule));
  head.push_back(entry("any", dense_rule));
  return Composite{std::move(head)};
}

std::string dense_epsilon(const ParameterValue& value) {
  return "epsilon:epsilon=" + value("epsilon");
}

// z^B with the user's bounds when given, else the input range (see RelevanceOptions).
std::string box(const ParameterValue& value) {
  const std::string low = value("low"), high = value("high");
  return low.empty() ? "z_box" : "z_box:low=" + low + ",high=" + high;
}

// Parameters several presets share.
const MethodParameter kDenseEpsilon{"epsilon", "1e-6", "ε of the rule on dense layers"};
const MethodParameter kLow{"low", "", "z^B lower bound(s), a;b;c per channel (default: the input range)"};
const MethodParameter kHigh{"high", "", "z^B upper bound(s) (default: the input range)"};
const MethodParameter kGamma{"gamma", "0.25", "γ"};
const std::string kAlpha2Beta1 = "alpha_beta:alpha=2,beta=1";

// One rule on every layer.
std::vector<RelevancePreset> uniform_presets() {
  return {
      {"lrp",
       "LRP with only the user's rules (--rule, --composite); unmatched layers get z",
       {},
       [](const ParameterValue&) { return Composite{}; }},
      {"lrp.z", "LRP-0 on every layer", {}, [](const ParameterValue&) { return uniform("z"); }},
      {"lrp.epsilon",
       "LRP-ε on every layer",
       {{"epsilon", "0.25", "ε (a factor of the std of z with epsilon_mode=std)"},
        {"epsilon_mode", "absolute", "absolute or std"}},
       [](const ParameterValue& v) {
         return uniform("epsilon:epsilon=" + v("epsilon") + ",epsilon_mode=" + v("epsilon_mode"));
       }},
      {"lrp.gamma",
       "LRP-γ (generalized, sign-aware) on every layer",
       {kGamma},
       [](const ParameterValue& v) { return uniform("gamma:gamma=" + v("gamma")); }},
      {"lrp.alpha_beta",
       "LRP-αβ on every layer",
       {{"alpha", "2", "α"}, {"beta", "1", "β = α − 1"}},
       [](const ParameterValue& v) {
         return uniform("alpha_beta:alpha=" + v("alpha") + ",beta=" + v("beta"));
       }},
      {"lrp.alpha_2_beta_1",
       "LRP-α2β1 on every layer",
       {},
       [](const ParameterValue&) { return uniform(kAlpha2Beta1); }},
      {"lrp.z_plus", "z+ (α1β0) on every layer", {}, [](const ParameterValue&) { return uniform("z_plus"); }},
      {"lrp.w_square", "w² on every layer", {}, [](const ParameterValue&) { return uniform("w_square"); }},
      {"lrp.flat", "flat on every layer", {}, [](const ParameterValue&) { return uniform("flat"); }},
  };
}

// Rules by layer kind: the composites of the LRP literature and Deep Taylor.
std::vector<RelevancePreset> layered_presets() {
  return {
      {"lrp.epsilon_plus",
       "z+ on convolutions, ε on dense layers",
       {kDenseEpsilon},
       [](const ParameterValue& v) { return convolutions_then("z_plus", {}, dense_epsilon(v)); }},
      {"lrp.epsilon_alpha_2_beta_1",
       "α2β1 on convolutions, ε on dense layers",
       {kDenseEpsilon},
       [](const ParameterValue& v) { return convolutions_then(kAlpha2Beta1, {}, dense_epsilon(v)); }},
      {"lrp.epsilon_plus_flat",
       "flat on the first layer, z+ on convolutions, ε on dense layers",
       {kDenseEpsilon},
       [](const ParameterValue& v) {
         return convolutions_then("z_plus", {entry("first", "flat")}, dense_epsilon(v));
       }},
      {"lrp.epsilon_gamma_box",
       "z^B on the first convolution, γ on the others, ε on dense layers",
       {kGamma, kDenseEpsilon, kLow, kHigh},
       [](const ParameterValue& v) {
         return convolutions_then("gamma:gamma=" + v("gamma"), {entry("first=Conv", box(v))},
                                  dense_epsilon(v));
       }},
      {"lrp.sequential_preset_a",
       "z+ on convolutions, ε=0.1 on dense layers",
       {{"epsilon", "0.1", "ε on dense layers"}},
       [](const ParameterValue& v) { return convolutions_then("z_plus", {}, dense_epsilon(v)); }},
      {"lrp.sequential_preset_b",
       "α2β1 on convolutions, ε=0.1 on dense layers",
       {{"epsilon", "0.1", "ε on dense layers"}},
       [](const ParameterValue& v) { return convolutions_then(kAlpha2Beta1, {}, dense_epsilon(v)); }},
      {"deep_taylor",
       "w² on the first layer, z+ elsewhere, biases ignored",
       {},
       [](const ParameterValue&) {
         return Composite{{entry("first", "w_square:ignore_bias=1"), entry("any", "z_plus:ignore_bias=1")}};
       }},
      {"deep_taylor.bounded",
       "z^B on the first layer, z+ (biases ignored) elsewhere",
       {kLow, kHigh},
       [](const ParameterValue& v) {
         return Composite{{entry("first", box(v)), entry("any", "z_plus:ignore_bias=1")}};
       }},
  };
}

}  // namespace

const std::vector<RelevancePreset>& relevance_presets() {
  static const std::vector<RelevancePreset> presets = [] {
    std::vector<RelevancePreset> all = uniform_presets();
    for (RelevancePreset& p : layered_presets()) all.push_back(std::move(p));
    return all;
  }();
  return presets;
}

}  // namespace sieve
