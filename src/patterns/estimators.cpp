// Pattern estimators (METHODS.md §3.2; the paper's Eq. 4 and 8, iNNvestigate 1.x conventions).

#include <cstring>
#include <iomanip>
#include <sstream>

#include "sieve/error.hpp"
#include "sieve/patterns.hpp"

namespace sieve {
namespace {

// Element k of neuron j in a weight-shaped array.
struct NeuronLayout {
  int64_t neurons, fan_in, axis;
  size_t at(int64_t j, int64_t k) const {
    return static_cast<size_t>(axis == 0 ? j * fan_in + k : k * neurons + j);
  }
};

// a = (sxy/n − sx/n · ȳ) / wᵀ(…) for one neuron; zero when n or the denominator is zero.
void estimate(const NeuronLayout& l, int64_t j, const float* w, double n, double mean_y,
              const std::vector<double>& sum_x, const std::vector<double>& sum_xy, float* out,
              const std::vector<double>* minus_x = nullptr, const std::vector<double>* minus_xy = nullptr) {
  std::vector<double> num(static_cast<size_t>(l.fan_in), 0.0);
  double denom = 0.0;
  if (n > 0.0) {
    for (int64_t k = 0; k < l.fan_in; ++k) {
      const size_t i = l.at(j, k);
      const double sx = sum_x[i] - (minus_x ? (*minus_x)[i] : 0.0);
      const double sxy = sum_xy[i] - (minus_xy ? (*minus_xy)[i] : 0.0);
      num[static_cast<size_t>(k)] = sxy / n - sx / n * mean_y;
      denom += static_cast<double>(w[i]) * num[static_cast<size_t>(k)];
    }
  }
  for (int64_t k = 0; k < l.fan_in; ++k)
    out[l.at(j, k)] = denom == 0.0 ? 0.0f : static_cast<float>(num[static_cast<size_t>(k)] / denom);
}

uint64_t fnv1a(uint64_t h, const void* data, size_t bytes) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < bytes; ++i) {
    h ^= p[i];
    h *= 1099511628211ull;
  }
  return h;
}

uint64_t fnv1a(uint64_t h, const std::string& s) {
  return fnv1a(h, s.data(), s.size() + 1);
}

}  // namespace

PatternType parse_pattern_type(const std::string& text) {
  if (text == "relu") return PatternType::relu;
  if (text == "linear") return PatternType::linear;
  if (text == "linear_last") return PatternType::linear_last;
  throw Error("unknown pattern type '" + text + "' (relu, linear, linear_last)");
}

std::string to_string(PatternType type) {
  return type == PatternType::relu ? "relu" : type == PatternType::linear ? "linear" : "linear_last";
}

std::vector<LayerPatterns> estimate_patterns(const Model& model, const PatternStatistics& stats,
                                             PatternType type) {
  const Graph& graph = model.graph();
  const std::vector<size_t> layers = pattern_layers(model);
  if (layers.size() != stats.layers().size()) throw Error("pattern statistics were made for another model");
  std::vector<LayerPatterns> patterns;
  for (size_t l = 0; l < layers.size(); ++l) {
    const Node& node = graph.nodes()[layers[l]];
    const LayerStatistics& s = stats.layers()[l];
    const Tensor w = graph.value(node.inputs[1]).constant;
    if (s.node != node.name || w.shape() != s.weight_shape)
      throw Error("pattern statistics of layer '" + s.node + "' do not fit node '" + node.name + "'");
    const NeuronLayout layout{s.neurons, w.size() / std::max<int64_t>(s.neurons, 1), s.output_axis};
    const bool linear =
        type == PatternType::linear || (type == PatternType::linear_last && l + 1 == layers.size());
    LayerPatterns p{s.node, Tensor(w.shape()), Tensor(w.shape())};
    for (int64_t j = 0; j < s.neurons; ++j) {
      const size_t ju = static_cast<size_t>(j);
      const double mean_y = s.count > 0 ? s.sum_y[ju] / s.count : 0.0;
      if (linear) {
        estimate(layout, j, w.data(), s.count, mean_y, s.sum_x, s.sum_xy, p.positive.data());
        continue;
      }
      estimate(layout, j, w.data(), s.count_pos[ju], mean_y, s.sum_x_pos, s.sum_xy_pos, p.positive.data());
      estimate(layout, j, w.data(), s.count - s.count_pos[ju], mean_y, s.sum_x, s.sum_xy, p.negative.data(),
               &s.sum_x_pos, &s.sum_xy_pos);
    }
    if (linear) p.negative = p.positive;
    patterns.push_back(std::move(p));
  }
  return patterns;
}

std::string model_fingerprint(const Model& model) {
  const Graph& graph = model.graph();
  uint64_t h = 14695981039346656037ull;
  for (const Node& node : graph.nodes()) {
    h = fnv1a(h, node.spec.op_type);
    h = fnv1a(h, node.name);
    for (ValueId v : node.inputs) h = fnv1a(h, &v, sizeof v);
    for (ValueId v : node.outputs) h = fnv1a(h, &v, sizeof v);
  }
  for (const Value& v : graph.values()) {
    if (!v.is_constant()) continue;
    h = fnv1a(h, v.name);
    h = fnv1a(h, v.constant.shape().data(), v.constant.shape().size() * sizeof(int64_t));
    h = fnv1a(h, v.constant.data(), static_cast<size_t>(v.constant.size()) * sizeof(float));
  }
  std::ostringstream s;
  s << std::hex << std::setw(16) << std::setfill('0') << h;
  return s.str();
}

}  // namespace sieve
