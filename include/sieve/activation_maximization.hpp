#pragma once

// Activation maximization (METHODS.md "Activation maximization", BK ch.4, MSM §3): gradient ascent on
// the input of a model towards the largest value of one class or of one channel of a hidden layer, with
// the regularizers of the literature — an ℓ2 penalty, a Gaussian blur between steps, random jitter, and
// the data-density prior of MSM §3.2 as a Gaussian fitted to data. The result is a prototype of what the
// unit responds to, not an explanation of one input.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "sieve/io/preprocess.hpp"
#include "sieve/model.hpp"
#include "sieve/tensor.hpp"

namespace sieve {

// What is maximized: a class (a flat index into one sample of the model's first output) or the mean
// activation of one channel (axis 1) of a node's output.
struct NeuronTarget {
  std::string node;   // empty: a class
  int64_t index = 0;  // the class, or the channel
  std::string label;  // the text it was given as, or the class name
};
// "CLASS" (an index, or one of `class_names`) or "NODE:CHANNEL" (a node name, or a value name). Throws
// for text that is neither; the node and the ranges are checked against the model by visualize_neuron.
NeuronTarget parse_neuron_target(const std::string& text, const std::vector<std::string>& class_names);

// A Gaussian density fitted to data: the mean and the inverse of the regularised covariance
// Σ + regularization · (tr Σ / D) · I over the D elements of a sample.
struct GaussianPrior {
  Tensor mean;                    // [1, ...] shaped like a sample
  std::vector<double> precision;  // D × D, row-major
};
// Largest D the prior's D × D covariance is formed for.
inline constexpr int64_t kMaxPriorElements = 4096;
// From samples [1, ...] of one shape; throws for fewer than two samples, mixed shapes or D above
// kMaxPriorElements.
GaussianPrior fit_gaussian_prior(const std::vector<Tensor>& samples, double regularization);

struct ActivationMaximizationOptions {
  // For a class: its logit, or its log-softmax log p(c|x) (BK Table 4.1 (a) and (c)).
  enum class Objective { logit, log_softmax } objective = Objective::logit;
  int64_t steps = 200;
  double learning_rate = 0.1;  // x ← x + lr · (∂a/∂x − ∂R/∂x)
  double l2 = 0.0;             // λ of the penalty λ‖x‖²
  int64_t blur_every = 0;      // a Gaussian blur of the image every k steps (0: never)
  double blur_sigma = 0.5;     // its σ in elements
  int64_t jitter = 0;  // each step's gradient is taken at the image rolled by up to ± this many elements
  uint64_t seed = 0;   // the random start and the jitter
  Tensor start;        // the start image [1, ...]; empty: N(0, init_scale²) per element
  double init_scale = 0.1;
  const GaussianPrior* prior = nullptr;  // its log-density's gradient is added with `prior_weight`
  double prior_weight = 0.0;
  std::optional<InputRange> range;  // the image is clamped to it after every step
};

struct NeuronVisualization {
  Tensor image;  // [1, ...], the model input
  // The maximized value (logit, log-softmax or mean activation, without the penalties) at the input each
  // step's gradient was taken at (jittered when jitter > 0), and last at the final image: steps + 1 values.
  std::vector<double> values;
};

// Gradient ascent on the one input of `model` (its declared shape with batch 1). Throws for an unknown
// node, a channel or class out of range, an input shape with unknown dimensions, or options that do
// not fit the input (jitter or blur without spatial axes, a prior or start of another shape).
NeuronVisualization visualize_neuron(const Model& model, const NeuronTarget& target,
                                     const ActivationMaximizationOptions& options);

}  // namespace sieve
