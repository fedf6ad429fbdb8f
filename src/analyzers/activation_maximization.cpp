// Activation maximization by gradient ascent on the input (BK ch.4 eqs. 4.1–4.5, MSM §3.1–3.2):
//   x ← r(x + lr · (∂a/∂x − 2λx − w · P(x − μ)))
// a the target's value (a logit, its log-softmax, or a channel's mean activation) at the jittered image,
// 2λx the ℓ2 penalty's gradient, P(x − μ) the gradient of −log N(x; μ, Σ) of a Gaussian fitted to data,
// r a Gaussian blur every k steps followed by the clamp to the input range. The gradient comes from the
// model's reverse pass, from the target's value to the input.

#include "sieve/activation_maximization.hpp"

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <random>

#include "sieve/blur.hpp"
#include "sieve/error.hpp"
#include "sieve/executor.hpp"
#include "sieve/parse.hpp"
#include "sieve/reverse.hpp"

namespace sieve {
namespace {

constexpr const char* kCommand = "visualize-neuron";

// The value a node name stands for (the node's first output), or a computed value of that name.
ValueId resolve_node(const Graph& graph, const std::string& name) {
  for (const Node& node : graph.nodes()) {
    if (node.name == name) return node.outputs.at(0);
  }
  for (size_t v = 0; v < graph.values().size(); ++v) {
    if (graph.values()[v].name == name && !graph.values()[v].is_constant()) return static_cast<ValueId>(v);
  }
  std::vector<std::string> names;
  for (const Node& node : graph.nodes()) names.push_back(node.name);
  const std::string near = closest_match(name, names);
  throw Error(std::string(kCommand) + ": unknown node '" + name +
              "': no node or value of the model has that name" +
              (near.empty() ? "" : " (did you mean '" + near + "'?)"));
}

// Rolls the last two axes of [1, C, H, W] (or [1, H, W]) circularly by (dy, dx); a roll is a
// permutation, so rolling by (−dy, −dx) is its adjoint.
Tensor rolled(const Tensor& x, int64_t dy, int64_t dx) {
  const int64_t h = x.dim(x.rank() - 2), w = x.dim(x.rank() - 1), planes = x.size() / (h * w);
  Tensor out = Tensor::uninitialized(x.shape());
  for (int64_t p = 0; p < planes; ++p) {
    for (int64_t y = 0; y < h; ++y) {
      const int64_t ty = ((y + dy) % h + h) % h;
      for (int64_t c = 0; c < w; ++c) out[(p * h + ty) * w + ((c + dx) % w + w) % w] = x[(p * h + y) * w + c];
    }
  }
  return out;
}

// The target's value in `values` (the output, or the node's activation) and its gradient there.
double value_and_seed(const NeuronTarget& target, ActivationMaximizationOptions::Objective objective,
                      const Tensor& values, Tensor& seed) {
  seed = Tensor(values.shape(), 0.0f);
  if (!target.node.empty()) {
    const int64_t channels = values.dim(1), per_channel = values.size() / channels;
    double sum = 0.0;
    for (int64_t j = 0; j < per_channel; ++j) {
      sum += values[target.index * per_channel + j];
      seed[target.index * per_channel + j] = static_cast<float>(1.0 / static_cast<double>(per_channel));
    }
    return sum / static_cast<double>(per_channel);
  }
  if (objective == ActivationMaximizationOptions::Objective::logit) {
    seed[target.index] = 1.0f;
    return values[target.index];
  }
  // log p_c = z_c − log Σ_j exp z_j; its gradient δ_cj − p_j.
  const double top = *std::max_element(values.data(), values.data() + values.size());
  double total = 0.0;
  for (float z : values.values()) total += std::exp(static_cast<double>(z) - top);
  for (int64_t j = 0; j < values.size(); ++j)
    seed[j] = static_cast<float>((j == target.index ? 1.0 : 0.0) -
                                 std::exp(static_cast<double>(values[j]) - top) / total);
  return static_cast<double>(values[target.index]) - top - std::log(total);
}

}  // namespace

NeuronTarget parse_neuron_target(const std::string& text, const std::vector<std::string>& class_names) {
  for (size_t c = 0; c < class_names.size(); ++c) {
    if (class_names[c] == text) return {"", static_cast<int64_t>(c), text};
  }
  if (const auto index = parse_integer(text)) {
    const std::string name = *index >= 0 && static_cast<size_t>(*index) < class_names.size()
                                 ? class_names[static_cast<size_t>(*index)]
                                 : text;
    return {"", *index, name};
  }
  const size_t colon = text.rfind(':');
  if (colon != std::string::npos && colon > 0) {
    if (const auto channel = parse_integer(text.substr(colon + 1)))
      return {text.substr(0, colon), *channel, text};
  }
  const std::string near = closest_match(text, class_names);
  throw Error(std::string(kCommand) + ": target '" + text +
              "' is neither a class (an index or a class name of the profile) nor NODE:CHANNEL" +
              (near.empty() ? "" : " (did you mean '" + near + "'?)"));
}

GaussianPrior fit_gaussian_prior(const std::vector<Tensor>& samples, double regularization) {
  if (samples.size() < 2)
    throw Error("the Gaussian prior needs at least two data samples, got " + std::to_string(samples.size()));
  const Shape shape = samples[0].shape();
  const int64_t d = samples[0].size();
  if (d > kMaxPriorElements) {
    throw Error("the Gaussian prior's covariance would be " + std::to_string(d) + " x " + std::to_string(d) +
                " for samples " + to_string(shape) + "; it is formed for at most " +
                std::to_string(kMaxPriorElements) + " elements per sample");
  }
  Eigen::MatrixXd data(static_cast<Eigen::Index>(samples.size()), d);
  for (size_t i = 0; i < samples.size(); ++i) {
    if (samples[i].shape() != shape) {
      throw Error("the Gaussian prior's data sample " + std::to_string(i) + " is shaped " +
                  to_string(samples[i].shape()) + ", sample 0 " + to_string(shape));
    }
    for (int64_t j = 0; j < d; ++j) data(static_cast<Eigen::Index>(i), j) = samples[i][j];
  }
  const Eigen::RowVectorXd mean = data.colwise().mean();
  const Eigen::MatrixXd centred = data.rowwise() - mean;
  Eigen::MatrixXd covariance = centred.transpose() * centred / static_cast<double>(samples.size() - 1);
  const double ridge = regularization * covariance.trace() / static_cast<double>(d);
  if (!(ridge > 0.0)) {
    throw Error("the Gaussian prior's covariance is singular: the data do not vary or regularization is 0 (" +
                format_number(regularization) + ")");
  }
  covariance.diagonal().array() += ridge;
  const Eigen::MatrixXd precision = covariance.ldlt().solve(Eigen::MatrixXd::Identity(d, d));
  GaussianPrior prior;
  prior.mean = Tensor::uninitialized(shape);
  for (int64_t j = 0; j < d; ++j) prior.mean[j] = static_cast<float>(mean(j));
  prior.precision.resize(static_cast<size_t>(d * d));
  for (int64_t r = 0; r < d; ++r) {
    for (int64_t c = 0; c < d; ++c) prior.precision[static_cast<size_t>(r * d + c)] = precision(r, c);
  }
  return prior;
}

NeuronVisualization visualize_neuron(const Model& model, const NeuronTarget& target,
                                     const ActivationMaximizationOptions& o) {
  const Graph& graph = model.graph();
  if (model.input_names().size() != 1) {
    throw Error(std::string(kCommand) + ": the model has " + std::to_string(model.input_names().size()) +
                " inputs; activation maximization runs on models with one input");
  }
  Shape shape = model.input_shapes().at(0);
  if (shape.empty()) throw Error(std::string(kCommand) + ": the model's input has no batch axis");
  shape[0] = 1;
  if (std::any_of(shape.begin(), shape.end(), [](int64_t d) { return d < 0; })) {
    throw Error(std::string(kCommand) + ": the model's input '" + model.input_names()[0] +
                "' has the shape " + to_string(model.input_shapes()[0]) +
                " with unknown dimensions besides the batch");
  }
  const bool spatial = shape.size() >= 3;
  if (!spatial && (o.jitter > 0 || o.blur_every > 0)) {
    throw Error(std::string(kCommand) + ": jitter and blur move over two spatial axes; the input " +
                to_string(shape) + " has none");
  }
  if (!o.start.empty() && o.start.shape() != shape) {
    throw Error(std::string(kCommand) + ": the start image is shaped " + to_string(o.start.shape()) +
                ", the model's input " + to_string(shape));
  }
  if (o.prior != nullptr && o.prior->mean.shape() != shape) {
    throw Error(std::string(kCommand) + ": the Gaussian prior was fitted to samples " +
                to_string(o.prior->mean.shape()) + ", the model's input is " + to_string(shape));
  }
  const ValueId input = graph.inputs.at(0);
  const ValueId at = target.node.empty() ? graph.outputs.at(0) : resolve_node(graph, target.node);
  const ReversePlan plan(graph, at, input);
  if (!plan.on_path_value(input)) {
    throw Error(std::string(kCommand) + ": node '" + target.node + "' does not depend on the model's input");
  }
  const std::vector<bool> keep = plan.trace_keep({at});
  const Executor executor(graph);

  std::mt19937_64 rng(o.seed);
  Tensor x = o.start.empty() ? Tensor(shape) : o.start.clone();
  if (o.start.empty()) {
    std::normal_distribution<float> normal(0.0f, static_cast<float>(o.init_scale));
    for (float& v : x.values()) v = normal(rng);
  }
  const int64_t channels = shape.size() >= 4 ? shape[1] : 1, per_channel = x.size() / channels;
  const auto clamp_to_range = [&](Tensor& t) {
    if (!o.range) return;
    for (int64_t c = 0; c < channels; ++c) {
      const size_t k = o.range->low.size() == 1 ? 0 : static_cast<size_t>(c);
      for (int64_t j = 0; j < per_channel; ++j)
        t[c * per_channel + j] = std::clamp(t[c * per_channel + j], o.range->low.at(k), o.range->high.at(k));
    }
  };
  clamp_to_range(x);

  // The target's value at `image` and, with `gradient`, its gradient there.
  const auto evaluate = [&](const Tensor& image, Tensor* gradient) {
    Trace trace;
    const std::vector<Tensor> outputs = executor.run({image}, &trace, keep);
    const Tensor& values = target.node.empty() ? outputs.at(0) : trace.values.at(static_cast<size_t>(at));
    if (target.node.empty() && (target.index < 0 || target.index >= values.size())) {
      throw Error(std::string(kCommand) + ": class " + std::to_string(target.index) +
                  " out of range: the output '" + model.output_names().at(0) + "' has " +
                  std::to_string(values.size()) + " values per sample");
    }
    if (!target.node.empty() && (values.rank() < 2 || target.index < 0 || target.index >= values.dim(1))) {
      throw Error(std::string(kCommand) + ": channel " + std::to_string(target.index) +
                  " out of range: node '" + target.node + "' has " +
                  std::to_string(values.rank() < 2 ? 0 : values.dim(1)) + " channels (its output is " +
                  to_string(values.shape()) + ")");
    }
    Tensor seed;
    const double value = value_and_seed(target, o.objective, values, seed);
    if (gradient != nullptr) *gradient = reverse_pass(graph, plan, trace, seed);
    return value;
  };

  NeuronVisualization result;
  std::uniform_int_distribution<int64_t> shift(-o.jitter, o.jitter);
  const int64_t d = x.size();
  std::vector<double> offset(static_cast<size_t>(d));
  for (int64_t step = 0; step < o.steps; ++step) {
    const int64_t dy = o.jitter > 0 ? shift(rng) : 0, dx = o.jitter > 0 ? shift(rng) : 0;
    Tensor gradient;
    result.values.push_back(evaluate(o.jitter > 0 ? rolled(x, dy, dx) : x, &gradient));
    if (o.jitter > 0) gradient = rolled(gradient, -dy, -dx);
    if (o.prior != nullptr) {
      for (int64_t j = 0; j < d; ++j) offset[static_cast<size_t>(j)] = x[j] - o.prior->mean[j];
    }
    Tensor next = Tensor::uninitialized(shape);
    for (int64_t j = 0; j < d; ++j) {
      double ascent = gradient[j] - 2.0 * o.l2 * x[j];
      if (o.prior != nullptr) {
        const double* row = o.prior->precision.data() + j * d;
        double pull = 0.0;
        for (int64_t k = 0; k < d; ++k) pull += row[k] * offset[static_cast<size_t>(k)];
        ascent -= o.prior_weight * pull;
      }
      next[j] = static_cast<float>(x[j] + o.learning_rate * ascent);
    }
    if (o.blur_every > 0 && (step + 1) % o.blur_every == 0) {
      std::vector<double> v(next.data(), next.data() + d);
      Shape planes(shape.begin() + 1, shape.end());
      std::vector<bool> axes(planes.size(), false);
      axes[axes.size() - 1] = axes[axes.size() - 2] = true;
      gaussian_blur(v, planes, axes, o.blur_sigma, BlurEdges::repeat);
      for (int64_t j = 0; j < d; ++j) next[j] = static_cast<float>(v[static_cast<size_t>(j)]);
    }
    clamp_to_range(next);
    x = next;
  }
  result.values.push_back(evaluate(x, nullptr));
  result.image = x;
  return result;
}

}  // namespace sieve
