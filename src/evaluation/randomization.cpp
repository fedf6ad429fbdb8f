// Model-parameter randomisation (Adebayo et al. 2018): how much an explanation changes as the layers of
// the model are randomised, cascading from the output down.

#include <cmath>
#include <random>

#include "evaluation/common.hpp"
#include "sieve/error.hpp"
#include "sieve/evaluation.hpp"

namespace sieve {

namespace {

// Layers with constant weights, from the output down.
std::vector<size_t> layers_from_output(const Model& model) {
  std::vector<size_t> layers;
  const Graph& graph = model.graph();
  for (size_t n = graph.nodes().size(); n-- > 0;) {
    const Node& node = graph.nodes()[n];
    const LinearOp* linear = node.op->as_linear();
    if (linear != nullptr && linear->is_layer() && node.inputs.size() >= 2 && node.inputs[1] >= 0 &&
        graph.value(node.inputs[1]).is_constant())
      layers.push_back(n);
  }
  return layers;
}

Tensor absolute(const Tensor& t) {
  Tensor out(t.shape());
  for (int64_t i = 0; i < t.size(); ++i) out[i] = std::abs(t[i]);
  return out;
}

double mean(const std::vector<double>& v) {
  double sum = 0.0;
  for (double x : v) sum += x;
  return v.empty() ? 0.0 : sum / static_cast<double>(v.size());
}

}  // namespace

std::vector<LayerRandomization> randomization(const Model& model, const Analyzer& analyzer, Model& copy,
                                              const std::function<std::unique_ptr<Analyzer>()>& make_analyzer,
                                              const std::vector<Tensor>& samples,
                                              const std::vector<int64_t>& targets, uint64_t seed,
                                              int64_t max_batch) {
  evaluation::check_samples(samples);
  evaluation::check_targets(model, targets, samples.size());
  const std::vector<size_t> layers = layers_from_output(copy);
  if (layers.empty())
    throw Error("randomization: the model has no convolution or dense layer with constant weights");
  const std::vector<Tensor> original = explain_targets(model, analyzer, samples, targets, max_batch);
  std::mt19937_64 engine(seed);
  std::vector<LayerRandomization> out;
  for (size_t layer : layers) {
    Node& node = copy.graph().nodes()[layer];
    const Tensor& weights = copy.graph().value(node.inputs[1]).constant;
    double sum = 0.0, squares = 0.0;
    for (float w : weights.values()) sum += w, squares += static_cast<double>(w) * w;
    const double n = static_cast<double>(weights.size()), mean_w = sum / n;
    const double sigma = std::sqrt(std::max(0.0, squares / n - mean_w * mean_w));
    // A new tensor rather than new values in the old one: kernels cache weights per tensor.
    Tensor random(weights.shape());
    std::normal_distribution<double> normal(0.0, sigma);
    for (int64_t i = 0; i < random.size(); ++i) random[i] = static_cast<float>(normal(engine));
    copy.graph().value(node.inputs[1]).constant = random;
    const std::unique_ptr<Analyzer> randomized = make_analyzer();
    randomized->prepare(copy);
    const std::vector<Tensor> after = explain_targets(copy, *randomized, samples, targets, max_batch);
    LayerRandomization r;
    r.layer = node.name;
    for (size_t i = 0; i < samples.size(); ++i) {
      const Tensor a = absolute(original[i]), b = absolute(after[i]);
      r.spearman_abs.push_back(spearman(a.values(), b.values()));
      r.spearman.push_back(spearman(original[i].values(), after[i].values()));
      r.ssim.push_back(ssim(a, b));
    }
    r.mean_spearman_abs = mean(r.spearman_abs);
    r.mean_spearman = mean(r.spearman);
    r.mean_ssim = mean(r.ssim);
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace sieve
