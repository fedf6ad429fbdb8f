// Activation maximization on the bundled Fashion-MNIST model: plain gradient ascent raises the class
// logit at every step, with jitter and blur the trend still rises, channel targets and the
// log-softmax objective rise, the Gaussian data prior pulls the image towards the data, runs are
// reproducible, and bad targets and options get one clear message each.

#include "sieve/activation_maximization.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>

#include "sieve/io/inputs.hpp"
#include "sieve/io/profile.hpp"
#include "support/errors.hpp"
#include "support/rounding.hpp"

namespace sieve {
namespace {

const std::string kExamples = std::string(SIEVE_TEST_DATA) + "/../../examples/";

const Model& fashion_model() {
  static const Model model = Model::load(kExamples + "fashion_cnn.onnx");
  return model;
}

const std::vector<std::string>& class_names() {
  static const std::vector<std::string> names = find_profile(kExamples + "fashion_cnn.onnx")->class_names;
  return names;
}

ActivationMaximizationOptions plain(int64_t steps, double lr) {
  ActivationMaximizationOptions o;
  o.steps = steps;
  o.learning_rate = lr;
  o.range = find_profile(kExamples + "fashion_cnn.onnx")->input_range;
  return o;
}

double mean_of(const std::vector<double>& v, size_t begin, size_t end) {
  double s = 0.0;
  for (size_t i = begin; i < end; ++i) s += v[i];
  return s / static_cast<double>(end - begin);
}

// A logit computed in float32 is off by at most τ of its magnitude (support/rounding.hpp); the
// magnitude Σ|w·a| + |b| is bounded here by 4·max(1, |logit|), the logits of this model being sums of
// terms of both signs that cancel at most to a quarter (checked on its training data when the bound was
// set). Two successive values compared: twice that.
double logit_rounding(const Model& model, double logit) {
  return 2.0 * forward_rounding_bound(model) * 4.0 * std::max(1.0, std::abs(logit));
}

// Without jitter, blur and clamp-free steps taken small, ascent on a piecewise-linear network raises
// the logit at every step: within a linear region by lr·‖∇a‖², and a region crossed is entered along
// a direction that was ascending in the last one.
TEST(ActivationMaximization, ClassLogitRisesAtEveryStepWithoutRegularizers) {
  const Model& model = fashion_model();
  for (int64_t c = 0; c < 10; ++c) {
    ActivationMaximizationOptions o = plain(100, 0.01);
    o.range.reset();
    const NeuronVisualization v = visualize_neuron(model, {"", c, class_names()[static_cast<size_t>(c)]}, o);
    ASSERT_EQ(v.values.size(), 101u);
    for (size_t t = 1; t < v.values.size(); ++t)
      ASSERT_GE(v.values[t], v.values[t - 1] - logit_rounding(model, v.values[t]))
          << "class " << c << " step " << t;
    EXPECT_GT(v.values.back(), v.values.front() + 1.0) << "class " << c;
  }
}

// With jitter and blur the value of a step is taken at a shifted image and the blur undoes part of the
// steps, so single steps may fall; the trend (the mean of the last 20 steps against the first 20) rises.
TEST(ActivationMaximization, RegularizedAscentRisesOnAverage) {
  const Model& model = fashion_model();
  for (int64_t c = 0; c < 10; ++c) {
    ActivationMaximizationOptions o = plain(200, 0.1);
    o.jitter = 1;
    o.blur_every = 4;
    o.blur_sigma = 0.5;
    o.l2 = 0.01;
    o.seed = 5;
    const NeuronVisualization v = visualize_neuron(model, {"", c, ""}, o);
    const double first = mean_of(v.values, 0, 20), last = mean_of(v.values, 181, 201);
    std::printf("class %lld (%s): logit %.3f -> %.3f (first 20 steps %.3f, last 20 %.3f)\n",
                static_cast<long long>(c), class_names()[static_cast<size_t>(c)].c_str(), v.values.front(),
                v.values.back(), first, last);
    EXPECT_GT(last, first + 1.0) << "class " << c;
    EXPECT_GT(v.values.back(), v.values.front()) << "class " << c;
    // Clamped to the profile's input range.
    for (float x : v.image.values()) {
      EXPECT_GE(x, o.range->low[0]);
      EXPECT_LE(x, o.range->high[0]);
    }
  }
}

TEST(ActivationMaximization, LogSoftmaxMakesTheClassProbable) {
  ActivationMaximizationOptions o = plain(100, 0.1);
  o.objective = ActivationMaximizationOptions::Objective::log_softmax;
  const NeuronVisualization v = visualize_neuron(fashion_model(), {"", 3, ""}, o);
  EXPECT_LE(v.values.back(), 0.0);
  EXPECT_GT(std::exp(v.values.back()), 0.9);
  EXPECT_GT(v.values.back(), v.values.front());
}

TEST(ActivationMaximization, ChannelTargetsRise) {
  for (const char* node : {"/6/Relu", "/0/Conv", "/9/Gemm"}) {
    ActivationMaximizationOptions o = plain(50, 0.1);
    const NeuronVisualization v =
        visualize_neuron(fashion_model(), parse_neuron_target(std::string(node) + ":3", {}), o);
    EXPECT_GT(v.values.back(), v.values.front()) << node;
    EXPECT_GT(v.values.back(), 0.0) << node;
  }
}

// A heavy prior keeps the image near the data mean: the distance to it falls as the weight grows.
TEST(ActivationMaximization, GaussianPriorPullsTowardsTheData) {
  const Model& model = fashion_model();
  const Preprocessing p = model_preprocessing(find_profile(kExamples + "fashion_cnn.onnx"), 1);
  std::vector<Tensor> samples;
  for (const NamedInput& in :
       load_inputs({kExamples + "fashion_train_2000.idx.gz"}, p, model.input_shapes().at(0))) {
    samples.push_back(in.tensor);
    if (samples.size() == 500) break;
  }
  const GaussianPrior prior = fit_gaussian_prior(samples, 0.1);
  std::vector<double> distances;
  for (const double weight : {0.0, 0.01, 0.1}) {
    ActivationMaximizationOptions o = plain(100, 0.1);
    o.prior = &prior;
    o.prior_weight = weight;
    o.start = prior.mean;
    const NeuronVisualization v = visualize_neuron(model, {"", 8, ""}, o);
    double d = 0.0;
    for (int64_t j = 0; j < v.image.size(); ++j) d += std::pow(v.image[j] - prior.mean[j], 2);
    distances.push_back(std::sqrt(d));
    EXPECT_GT(v.values.back(), v.values.front()) << weight;
  }
  EXPECT_GT(distances[0], distances[1]);
  EXPECT_GT(distances[1], distances[2]);
}

TEST(ActivationMaximization, SeededRunsAreIdentical) {
  ActivationMaximizationOptions o = plain(30, 0.1);
  o.jitter = 2;
  o.blur_every = 3;
  o.seed = 11;
  const NeuronVisualization a = visualize_neuron(fashion_model(), {"", 1, ""}, o);
  const NeuronVisualization b = visualize_neuron(fashion_model(), {"", 1, ""}, o);
  EXPECT_EQ(a.values, b.values);
  for (int64_t j = 0; j < a.image.size(); ++j) ASSERT_EQ(a.image[j], b.image[j]);
}

TEST(ActivationMaximization, TargetsAreParsed) {
  const NeuronTarget named = parse_neuron_target("Bag", class_names());
  EXPECT_TRUE(named.node.empty());
  EXPECT_EQ(named.index, 8);
  const NeuronTarget index = parse_neuron_target("9", class_names());
  EXPECT_EQ(index.index, 9);
  EXPECT_EQ(index.label, "Ankle boot");
  const NeuronTarget channel = parse_neuron_target("/6/Relu:12", class_names());
  EXPECT_EQ(channel.node, "/6/Relu");
  EXPECT_EQ(channel.index, 12);
}

TEST(ActivationMaximization, BadTargetsAndOptionsAreRefused) {
  const Model& model = fashion_model();
  const ActivationMaximizationOptions o = plain(2, 0.1);
  const auto run = [&](const std::string& target) {
    return error_of([&] { visualize_neuron(model, parse_neuron_target(target, class_names()), o); });
  };
  EXPECT_EQ(
      run("Bagg"),
      "visualize-neuron: target 'Bagg' is neither a class (an index or a class name of the profile) nor "
      "NODE:CHANNEL (did you mean 'Bag'?)");
  EXPECT_EQ(run("10"),
            "visualize-neuron: class 10 out of range: the output 'logits' has 10 values per sample");
  EXPECT_EQ(run("-1"),
            "visualize-neuron: class -1 out of range: the output 'logits' has 10 values per sample");
  EXPECT_EQ(run("/6/Rel:0"),
            "visualize-neuron: unknown node '/6/Rel': no node or value of the model has that name (did you "
            "mean '/6/Relu'?)");
  EXPECT_NE(run("/6/Relu:999").find("channel 999 out of range: node '/6/Relu' has "), std::string::npos);
  ActivationMaximizationOptions wrong_start = o;
  wrong_start.start = Tensor({1, 1, 14, 14});
  EXPECT_EQ(error_of([&] {
              visualize_neuron(model, {"", 0, ""}, wrong_start);
            }),
            "visualize-neuron: the start image is shaped [1,1,14,14], the model's input [1,1,28,28]");
  EXPECT_NE(error_of([] {
              fit_gaussian_prior({Tensor({1, 4}, 1.0f)}, 0.1);
            }).find("at least two"),
            std::string::npos);
  EXPECT_NE(error_of([] {
              fit_gaussian_prior({Tensor({1, 4}, 1.0f), Tensor({1, 4}, 1.0f)}, 0.1);
            }).find("singular"),
            std::string::npos);
  EXPECT_NE(error_of([] {
              fit_gaussian_prior({Tensor({1, 5000}), Tensor({1, 5000})}, 0.1);
            }).find("at most 4096"),
            std::string::npos);
}

}  // namespace
}  // namespace sieve
