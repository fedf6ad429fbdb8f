#include <algorithm>
#include <functional>

#include "analyzers/cam.hpp"
#include "analyzers/deeplift.hpp"
#include "analyzers/gradient_family.hpp"
#include "analyzers/meaningful_perturbation.hpp"
#include "analyzers/perturbation.hpp"
#include "analyzers/prediction_difference.hpp"
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

// Methods that run perturbed copies in batches of --batch rows unless their own `batch` says otherwise.
template <std::unique_ptr<Analyzer> (*make)(Params&, int64_t)>
std::unique_ptr<Analyzer> batched(Params& p, const AnalyzerContext& context) {
  return make(p, context.max_batch);
}

// The parameters of what replaces altered elements, shared by the perturbation methods.
std::vector<MethodParameter> with_fill(std::vector<MethodParameter> parameters) {
  for (MethodParameter& p : std::vector<MethodParameter>{
           {"fill", "zero", "what replaces altered elements: zero, baseline, mean (per channel) or blur"},
           {"baseline", "0", "fill=baseline: a constant, or a .npy shaped like one sample or the batch"},
           {"sigma", "4", "fill=blur: the Gaussian's σ in elements"},
           {"batch", "", "altered copies per forward pass (default: --batch)"}})
    parameters.push_back(std::move(p));
  return parameters;
}

struct Entry {
  MethodInfo info;
  Factory make;
};

// The relevance family: every method takes the shared options (maxpool, logodds, norm, attention, activation,
// gate, split_epsilon) besides its own parameters.
std::vector<Entry> relevance_methods();

// The gradient family (METHODS.md §2.1–2.3).
std::vector<Entry> gradient_methods() {
  return {
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
      {{"deconvnet", "gradient with ReLU backward = relu(gradient), forward gate ignored", {}, "projection"},
       without_context<analyzers::make_deconvnet>},
      {{"guided_backprop", "gradient with ReLU backward = relu(gradient) · 1[forward > 0]", {}, "projection"},
       without_context<analyzers::make_guided_backprop>},
  };
}

// Methods that run the model on altered copies of the input.
std::vector<Entry> perturbation_methods() {
  return {
      {{"occlusion", "f(x) − f(x with a window filled), averaged over the windows covering each element",
        with_fill({{"window", "8",
                    "window size over the spatial axes (channels covered whole), or one per axis (1x6x6)"},
                   {"stride", "",
                    "window step (default: the window): one number for the spatial axes, or one per axis"}}),
        "heatmap"},
       batched<analyzers::make_occlusion>},
      {{"ablation", "f(x) − f(x with the element's group filled), one group per integer of a feature mask",
        with_fill(
            {{"mask", "", ".npy with one integer group per element, shaped like one sample or the batch"}}),
        "heatmap"},
       batched<analyzers::make_ablation>},
      {{"lime",
        "per-group coefficients of a weighted ridge fit of f on random on/off states of a feature mask's "
        "groups (or of an image's superpixels), kernel sqrt(exp(−d²/w²)) of the cosine distance d to the "
        "all-on state",
        with_fill(
            {{"mask", "",
              ".npy with one integer group per element, shaped like one sample or the batch; without it, "
              "images are segmented into superpixels"},
             {"segmentation", "slic",
              "superpixels without a mask: slic, slico, mslic or lsc (OpenCV ximgproc)"},
             {"region_size", "10", "average superpixel size in pixels"},
             {"ruler", "10", "SLIC compactness (larger: more regular segments)"},
             {"ratio", "0.075", "LSC compactness"},
             {"iterations", "10", "segmentation iterations"},
             {"n", "1000", "number of on/off states (the first all on)"},
             {"kernel_width", "0.25", "kernel width w"},
             {"alpha", "1", "ridge penalty (the intercept is not penalized)"},
             {"seed", "0", "random seed"}}),
        "heatmap"},
       batched<analyzers::make_lime>},
      {{"rise",
        "Σ_k f(x ⊙ M_k) · M_k / (n·p) over random binary cell masks, bilinearly upsampled and shifted",
        with_fill({{"n", "2000", "number of masks"},
                   {"cells", "7", "mask cells per spatial axis"},
                   {"p", "0.5", "probability that a cell is kept"},
                   {"seed", "0", "random seed"}}),
        "heatmap"},
       batched<analyzers::make_rise>},
      {{"prediction_difference",
        "weight of evidence log2 odds(p(c|x)) − log2 odds(p(c|x without the window)) of every k×k window "
        "(all channels), p(c|x without it) the mean over n samples of the window drawn from the data "
        "(--data), averaged over the windows covering each pixel (Zintgraf et al. 2017)",
        {{"mode", "conditional",
          "conditional: the window drawn from a normal given the (k+2l)² patch around it, fitted to the "
          "data's patches; marginal: the window of other data images"},
         {"window", "4", "window size k in pixels"},
         {"padding", "2", "conditional: the patch's margin l around the window"},
         {"n", "10", "samples per window"},
         {"measure", "evidence",
          "evidence: weight of evidence of the softmax probability, Laplace-corrected with N = the data's "
          "sample count; difference: f(x) − mean f(x̃) of the target's score"},
         {"seed", "0", "random seed"},
         {"batch", "", "altered copies per forward pass (default: --batch)"}},
        "heatmap"},
       [](Params& p, const AnalyzerContext& context) {
         return analyzers::make_prediction_difference(p, context.max_batch, context.data);
       }},
      {{"meaningful_perturbation",
        "1 − M for the smooth mask M = smooth(upsample(m)) that Adam learns so that perturbing where M < 1 "
        "lowers the target's score most for the least area: λ1‖1 − m‖₁ + λ2 Σ‖∇m‖_β^β + f(Φ(x(· − τ), M)), "
        "τ a random jitter (Fong & Vedaldi; preservation: M for λ1‖m‖₁ + λ2 Σ‖∇m‖_β^β − f)",
        {{"mode", "deletion", "deletion (saliency 1 − M) or preservation (saliency M)"},
         {"perturbation", "blur",
          "what Φ blends in where M < 1: blur (a Gaussian blur of σ0 = blur_sigma), constant (the sample's "
          "mean per channel) or noise (Gaussian, σ = noise_level · value range)"},
         {"score", "probability", "f: the target's softmax probability, or its logit"},
         {"iterations", "300", "Adam steps"},
         {"lr", "0.1", "Adam's learning rate"},
         {"lambda1", "1e-4", "weight of the area term, a sum over the mask cells"},
         {"lambda2", "1e-2", "weight of the total-variation term, a sum over the mask cells"},
         {"beta", "3", "exponent β of the total variation"},
         {"upsample", "4", "input elements per mask cell along each spatial axis"},
         {"mask_sigma", "2.5", "σ_m of the Gaussian smoothing of the upsampled mask, in elements (0: none)"},
         {"blur_sigma", "10", "σ0 of the blur perturbation, in elements"},
         {"noise_level", "0.2", "perturbation=noise: σ relative to the sample's value range"},
         {"jitter", "2", "the input is shifted by τ ∈ {0..jitter} elements along each spatial axis per step"},
         {"seed", "0", "random seed of the jitter and the noise"},
         {"batch", "", "perturbed inputs per forward pass (default: --batch)"}},
        "heatmap"},
       batched<analyzers::make_meaningful_perturbation>},
  };
}

// DeepLIFT and the class activation maps.
std::vector<Entry> activation_map_methods() {
  const MethodParameter layer{"layer", "",
                              "node (or value) whose output is mapped; default: the last convolution's "
                              "activation"};
  return {
      {{"deeplift",
        "(x − x̄) ⊙ the gradient pass with each activation's derivative replaced by Δout/Δin against the "
        "baseline (Rescale rule; max pooling routes to the arg-max), or the RevealCancel rule's separate "
        "multipliers of the positive and negative parts of every difference",
        {{"baseline", "0", "a constant, or a .npy file shaped like one sample or the whole batch"},
         {"rule", "rescale",
          "rescale, or reveal_cancel (linear layers, element-wise activations and data movement only)"}},
        "heatmap"},
       without_context<analyzers::make_deeplift>},
      {{"grad_cam",
        "relu(Σ_k α_k A_k) at a layer, α_k the mean gradient of channel k; bilinearly upsampled to the "
        "input",
        {layer, {"upsample", "1", "1: upsampled to the input size; 0: the layer-sized map"}},
        "heatmap"},
       without_context<analyzers::make_grad_cam>},
      {{"cam",
        "relu(Σ_k w_k A_k) at the layer a global average pooling reads, w_k the target's weight behind the "
        "pooling (Σ over positions of ∂f/∂A_k); bilinearly upsampled to the input",
        {{"layer", "", "node (or value) read by the global average pooling; default: the last one's input"},
         {"upsample", "1", "1: upsampled to the input size; 0: the layer-sized map"}},
        "heatmap"},
       without_context<analyzers::make_cam>},
      {{"guided_grad_cam", "guided backprop ⊙ the upsampled Grad-CAM map", {layer}, "projection"},
       without_context<analyzers::make_guided_grad_cam>},
  };
}

// PatternNet and PatternAttribution.
std::vector<Entry> pattern_methods() {
  std::vector<Entry> all;
  for (const bool attribution : {false, true}) {
    all.push_back(
        {{attribution ? "pattern.attribution" : "pattern.net",
          attribution
              ? "the gradient pass with every layer's weights w replaced by w ⊙ a₊ (seed: the logit)"
              : "the gradient pass with every layer's weights replaced by its pattern a₊ (seed: the logit)",
          {{"patterns", "", "pattern file from sieve fit-patterns (or --patterns)"}},
          attribution ? "heatmap" : "projection"},
         [attribution](Params& p, const AnalyzerContext& context) {
           return patterns::make_pattern_analyzer(attribution, p.text("patterns", context.patterns_file),
                                                  context.patterns);
         }});
  }
  return all;
}

const std::vector<Entry>& registry() {
  static const std::vector<Entry> entries = [] {
    std::vector<Entry> all;
    for (std::vector<Entry> (*family)() : {gradient_methods, perturbation_methods, activation_map_methods,
                                           relevance_methods, pattern_methods}) {
      for (Entry& e : family()) all.push_back(std::move(e));
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

Tensor lime_segments(const MethodSpec& spec, const Tensor& input) {
  if (spec.name != "lime") return {};
  Params params(spec);
  return analyzers::lime_segments(params, input);
}

Visualization method_visualization(const MethodSpec& spec, const std::string& choice) {
  if (!choice.empty()) return parse_visualization(choice);
  for (const MethodInfo& info : available_methods()) {
    if (info.name == spec.name) return parse_visualization(info.visualization);
  }
  throw Error("unknown method '" + spec.name + "' (sieve methods lists them)");
}

}  // namespace sieve
