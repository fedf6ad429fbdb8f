#include "analyzers/gradient_family.hpp"
#include "sieve/error.hpp"

namespace sieve {
namespace {

using Factory = std::unique_ptr<Analyzer> (*)(analyzers::Params&);

struct Entry {
  MethodInfo info;
  Factory make;
};

const std::vector<Entry>& registry() {
  static const std::vector<Entry> entries{
      {{"gradient",
        "∂f_target/∂x (sensitivity)",
        {{"postprocess", "none", "none, abs or square"}},
        "graymap"},
       analyzers::make_gradient},
      {{"input_x_gradient", "x ⊙ ∂f_target/∂x", {}, "heatmap"}, analyzers::make_input_x_gradient},
      {{"integrated_gradients",
        "(x − x̄) ⊙ mean gradient on the straight path from x̄, midpoints (k+½)/m",
        {{"steps", "32", "number of path points m"},
         {"baseline", "0", "a constant, or a .npy file shaped like one sample or the whole batch"},
         {"batch", "32", "path points per forward pass"}},
        "heatmap"},
       analyzers::make_integrated_gradients},
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
       analyzers::make_smoothgrad},
      {{"deconvnet", "gradient with ReLU backward = relu(gradient), forward gate ignored", {}, "projection"},
       analyzers::make_deconvnet},
      {{"guided_backprop", "gradient with ReLU backward = relu(gradient) · 1[forward > 0]", {}, "projection"},
       analyzers::make_guided_backprop},
  };
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

std::unique_ptr<Analyzer> create_analyzer(const MethodSpec& spec) {
  for (const Entry& e : registry()) {
    if (e.info.name != spec.name) continue;
    analyzers::Params params(spec);
    std::unique_ptr<Analyzer> analyzer = e.make(params);
    params.finish();
    return analyzer;
  }
  throw Error("unknown method '" + spec.name + "' (sieve methods lists them)");
}

}  // namespace sieve
