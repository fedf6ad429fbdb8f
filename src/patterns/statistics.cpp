// Streaming pattern statistics: one forward pass per batch, then per layer the sums Σx·g for the
// "gradients" g = y, y·1[z>0] and 1[z>0] (and 1 for Σx). A convolution gets them from its
// backward-weights kernel, one image at a time, so every image's float32 partial sum is the same
// whatever batch it came in and the float64 totals depend on batch size, order and splitting only by
// float64 rounding. Dense layers multiply in float64 directly (products of floats are exact there).

#include <Eigen/Dense>
#include <algorithm>

#include "patterns/layer_pass.hpp"
#include "sieve/error.hpp"
#include "sieve/patterns.hpp"
#include "sieve/reverse.hpp"

namespace sieve {
namespace {

// Per-neuron sums of t over every other axis, added to `into`.
void add_neuron_sums(std::vector<double>& into, const Tensor& t, int64_t axis) {
  const int64_t c = t.dim(axis);
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < axis; ++d) outer *= t.dim(d);
  for (int64_t d = axis + 1; d < t.rank(); ++d) inner *= t.dim(d);
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t j = 0; j < c; ++j) {
      const float* p = t.data() + (o * c + j) * inner;
      double s = 0.0;
      for (int64_t k = 0; k < inner; ++k) s += p[k];
      into[static_cast<size_t>(j)] += s;
    }
  }
}

void add_to(std::vector<double>& into, const Tensor& t) {
  const float* p = t.data();
  for (size_t i = 0; i < into.size(); ++i) into[i] += p[i];
}

Tensor sample(const Tensor& t, int64_t i) {
  Shape shape = t.shape();
  shape[0] = 1;
  const int64_t per = t.size() / t.dim(0);
  return Tensor(shape, std::span<const float>(t.data() + i * per, static_cast<size_t>(per)));
}

// Σx·g per image through Conv backward-weights. Σx (g = 1) is the same for every output channel of a
// group, so it runs with one output channel per group and is copied to the others.
void accumulate_convolution(const LinearOp& op, const Tensor& x, const Tensor& y, const Tensor& y_pos,
                            const Tensor& mask, LayerStatistics& s) {
  const int64_t groups = s.weight_shape[0] == 0 ? 1 : x.dim(1) / s.weight_shape[1];
  Shape shared_shape = s.weight_shape;
  shared_shape[0] = groups;
  const int64_t per_neuron = element_count(s.weight_shape) / s.neurons, per_group = s.neurons / groups;
  for (int64_t i = 0; i < x.dim(0); ++i) {
    const Tensor xi = sample(x, i);
    add_to(s.sum_xy, op.weight_gradient(xi, sample(y, i), s.weight_shape));
    add_to(s.sum_xy_pos, op.weight_gradient(xi, sample(y_pos, i), s.weight_shape));
    add_to(s.sum_x_pos, op.weight_gradient(xi, sample(mask, i), s.weight_shape));
    Shape ones_shape = y.shape();
    ones_shape[0] = 1;
    ones_shape[1] = groups;
    const Tensor shared = op.weight_gradient(xi, Tensor(ones_shape, 1.0f), shared_shape);
    for (int64_t j = 0; j < s.neurons; ++j) {
      const float* g = shared.data() + (j / per_group) * per_neuron;
      double* out = s.sum_x.data() + j * per_neuron;
      for (int64_t k = 0; k < per_neuron; ++k) out[k] += g[k];
    }
  }
}

// Dense layers: X [rows, K] and G [rows, N] multiplied in float64, stored in the weight's layout.
void accumulate_dense(const Node& node, const Tensor& x, const Tensor& y, const Tensor& y_pos,
                      const Tensor& mask, LayerStatistics& s) {
  using Matrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  using FloatMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const int64_t n = s.neurons, k = element_count(s.weight_shape) / n;
  const int64_t rows = y.size() / n;
  const bool trans_a = node.spec.attributes.get_int("transA", 0) != 0;
  Matrix xd;
  if (trans_a) {
    xd = Eigen::Map<const FloatMatrix>(x.data(), k, rows).cast<double>().transpose();
  } else {
    xd = Eigen::Map<const FloatMatrix>(x.data(), rows, k).cast<double>();
  }
  // Neuron-major [N, K] when the weight is [N, K] (output axis 0), else [K, N].
  auto add = [&](std::vector<double>& into, const Tensor& g) {
    const Matrix gd = Eigen::Map<const FloatMatrix>(g.data(), rows, n).cast<double>();
    if (s.output_axis == 0) {
      Eigen::Map<Matrix>(into.data(), n, k).noalias() += gd.transpose() * xd;
    } else {
      Eigen::Map<Matrix>(into.data(), k, n).noalias() += xd.transpose() * gd;
    }
  };
  add(s.sum_xy, y);
  add(s.sum_xy_pos, y_pos);
  add(s.sum_x_pos, mask);
  const Eigen::VectorXd column_sums = xd.colwise().sum().transpose();
  for (int64_t j = 0; j < n; ++j) {
    for (int64_t c = 0; c < k; ++c)
      s.sum_x[static_cast<size_t>(s.output_axis == 0 ? j * k + c : c * n + j)] += column_sums[c];
  }
}

}  // namespace

void LayerStatistics::merge(const LayerStatistics& other) {
  if (other.node != node || other.weight_shape != weight_shape || other.neurons != neurons)
    throw Error("pattern statistics of layer '" + other.node + "' " + to_string(other.weight_shape) +
                " cannot be merged with layer '" + node + "' " + to_string(weight_shape));
  auto add = [](std::vector<double>& a, const std::vector<double>& b) {
    for (size_t i = 0; i < a.size() && i < b.size(); ++i) a[i] += b[i];
  };
  count += other.count;
  add(count_pos, other.count_pos);
  add(sum_y, other.sum_y);
  add(sum_y_pos, other.sum_y_pos);
  add(sum_x, other.sum_x);
  add(sum_x_pos, other.sum_x_pos);
  add(sum_xy, other.sum_xy);
  add(sum_xy_pos, other.sum_xy_pos);
}

std::vector<size_t> pattern_layers(const Model& model) {
  const Graph& graph = model.graph();
  const ReversePlan plan(graph, graph.outputs.at(0), graph.inputs.at(0));
  std::vector<size_t> layers;
  for (size_t n = 0; n < graph.nodes().size(); ++n) {
    const Node& node = graph.nodes()[n];
    if (!plan.on_path(n) || graph.role(node) != OpRole::linear) continue;
    const LinearOp::Form form = node.op->as_linear()->form();
    if (form != LinearOp::Form::convolution && form != LinearOp::Form::dense) continue;
    if (node.spec.attributes.get_float("alpha", 1.0f) != 1.0f)
      throw Error(node.spec.where() + ": patterns need Gemm with alpha = 1 (fold alpha into the weights)");
    layers.push_back(n);
  }
  return layers;
}

PatternStatistics::PatternStatistics(const Model& model) {
  const Graph& graph = model.graph();
  for (size_t n : pattern_layers(model)) {
    const Node& node = graph.nodes()[n];
    const LinearOp& op = *node.op->as_linear();
    const Tensor w = op.weight(patterns::constant_inputs(graph, node, Tensor()));
    LayerStatistics s;
    s.node = node.name;
    s.weight_shape = w.shape();
    s.output_axis = op.weight_output_axis();
    if (s.output_axis != 0 && (w.rank() != 2 || s.output_axis != 1))
      throw Error(node.spec.where() + ": patterns need output neurons on weight axis 0, or 1 of a matrix");
    s.neurons = w.dim(s.output_axis);
    const size_t wn = static_cast<size_t>(w.size()), nn = static_cast<size_t>(s.neurons);
    s.count_pos.assign(nn, 0.0);
    s.sum_y.assign(nn, 0.0);
    s.sum_y_pos.assign(nn, 0.0);
    s.sum_x.assign(wn, 0.0);
    s.sum_x_pos.assign(wn, 0.0);
    s.sum_xy.assign(wn, 0.0);
    s.sum_xy_pos.assign(wn, 0.0);
    layers_.push_back(std::move(s));
  }
  if (layers_.empty())
    throw Error("the model has no Conv, Gemm or MatMul layer with constant weights to fit");
}

void PatternStatistics::accumulate(const Model& model, const Tensor& batch) {
  if (pattern_layers(model).size() != layers_.size())
    throw Error("pattern statistics were made for another model");
  const std::vector<patterns::LayerPass> passes =
      patterns::run_pattern_layers(model, batch, "pattern fitting");
  for (size_t l = 0; l < passes.size(); ++l) {
    const patterns::LayerPass& p = passes[l];
    const Node& node = *p.node;
    LayerStatistics& s = layers_[l];
    if (node.name != s.node) throw Error("pattern statistics were made for another model");
    const LinearOp& op = *p.op;
    const Tensor &x = p.x, &z = p.z, &y = p.y;
    const int64_t axis = p.axis;
    Tensor mask = Tensor::uninitialized(z.shape()), y_pos = Tensor::uninitialized(z.shape());
    const int64_t size = z.size();
#pragma omp parallel for simd if (size > 65536)
    for (int64_t i = 0; i < size; ++i) {
      const bool on = z[i] > 0.0f;
      mask[i] = on ? 1.0f : 0.0f;
      y_pos[i] = on ? y[i] : 0.0f;
    }
    s.count += static_cast<double>(y.size() / y.dim(axis));
    add_neuron_sums(s.count_pos, mask, axis);
    add_neuron_sums(s.sum_y, y, axis);
    add_neuron_sums(s.sum_y_pos, y_pos, axis);
    if (op.form() == LinearOp::Form::convolution) {
      accumulate_convolution(op, x, y, y_pos, mask, s);
    } else {
      accumulate_dense(node, x, y, y_pos, mask, s);
    }
  }
  images += batch.dim(0);
}

void PatternStatistics::merge(const PatternStatistics& other) {
  if (other.layers_.size() != layers_.size())
    throw Error("pattern statistics with " + std::to_string(other.layers_.size()) +
                " layers cannot be merged with " + std::to_string(layers_.size()));
  for (size_t l = 0; l < layers_.size(); ++l) layers_[l].merge(other.layers_[l]);
  images += other.images;
}

PatternStatistics fit_pattern_statistics(const Model& model, InputStream& data, int64_t batch,
                                         const std::function<void(int64_t, int64_t)>& progress) {
  PatternStatistics stats(model);
  patterns::for_each_batch(
      model, data, batch, [&](const Tensor& x) { stats.accumulate(model, x); }, progress, "pattern fitting");
  return stats;
}

}  // namespace sieve
