// Prediction difference analysis: with a one-pixel window and marginal sampling over the whole data set,
// the score difference on a linear model is occlusion with the data's mean as the fill, and the weight
// of evidence is the Laplace-corrected log-odds formula on the model's own probabilities; the Gaussian
// conditioning against its closed form in three dimensions; one clear message per bad input.

#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <random>

#include "analyzers/gaussian_condition.hpp"
#include "sieve/analyzer.hpp"
#include "sieve/io/npy.hpp"
#include "sieve/methods.hpp"
#include "support/errors.hpp"
#include "support/rounding.hpp"

namespace sieve {
namespace {

constexpr int64_t kSide = 5, kClasses = 3, kData = 16;

// f(x) = W · flatten(x) + b on inputs [N, 1, 5, 5]: logits [N, 3].
Model linear_model(const std::vector<float>& weights, const std::vector<float>& bias) {
  onnx::ModelProto m;
  m.set_ir_version(8);
  m.add_opset_import()->set_version(13);
  auto* g = m.mutable_graph();
  g->set_name("linear");
  auto declare = [](onnx::ValueInfoProto* v, const std::string& name, std::vector<int64_t> dims) {
    v->set_name(name);
    auto* t = v->mutable_type()->mutable_tensor_type();
    t->set_elem_type(onnx::TensorProto::FLOAT);
    t->mutable_shape()->add_dim()->set_dim_param("N");
    for (int64_t d : dims) t->mutable_shape()->add_dim()->set_dim_value(d);
  };
  declare(g->add_input(), "x", {1, kSide, kSide});
  declare(g->add_output(), "y", {kClasses});
  auto initializer = [&](const std::string& name, std::vector<int64_t> dims,
                         const std::vector<float>& values) {
    auto* t = g->add_initializer();
    t->set_name(name);
    t->set_data_type(onnx::TensorProto::FLOAT);
    for (int64_t d : dims) t->add_dims(d);
    for (float v : values) t->add_float_data(v);
  };
  initializer("W", {kClasses, kSide * kSide}, weights);
  initializer("b", {kClasses}, bias);
  auto* flatten = g->add_node();
  flatten->set_op_type("Flatten");
  flatten->add_input("x");
  flatten->add_output("flat");
  auto* gemm = g->add_node();
  gemm->set_op_type("Gemm");
  gemm->add_input("flat");
  gemm->add_input("W");
  gemm->add_input("b");
  gemm->add_output("y");
  auto* trans = gemm->add_attribute();
  trans->set_name("transB");
  trans->set_type(onnx::AttributeProto::INT);
  trans->set_i(1);
  std::string bytes;
  m.SerializeToString(&bytes);
  return Model::from_bytes(bytes, "linear.onnx");
}

Tensor random_tensor(Shape shape, uint64_t seed, float scale) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, scale);
  Tensor t(std::move(shape));
  for (float& v : t.values()) v = normal(rng);
  return t;
}

struct Fixture {
  Tensor w = random_tensor({kClasses, kSide*kSide}, 1, 0.5f), b = random_tensor({kClasses}, 2, 0.3f);
  Model model = linear_model({w.values().begin(), w.values().end()}, {b.values().begin(), b.values().end()});
  Tensor x = random_tensor({2, 1, kSide, kSide}, 3, 1.0f);
  std::shared_ptr<const Tensor> data =
      std::make_shared<const Tensor>(random_tensor({kData, 1, kSide, kSide}, 4, 1.0f));
};

Tensor explain(const Model& model, const std::string& method, const Tensor& x, const Target& target,
               std::shared_ptr<const Tensor> data) {
  AnalyzerContext context;
  context.data = std::move(data);
  const auto analyzer = create_analyzer(MethodSpec::parse(method), context);
  const ForwardPass pass(model, x, analyzer->trace_values(model));
  return analyzer->explain(pass, target);
}

// Σ|w·x| + |b| of the largest logit over the inputs and data: what τ multiplies (support/rounding.hpp).
double logit_magnitude(const Fixture& f) {
  double largest = 0.0;
  for (const Tensor* t : {&f.x, f.data.get()}) {
    for (int64_t i = 0; i < t->dim(0); ++i) {
      for (int64_t c = 0; c < kClasses; ++c) {
        double m = std::abs(f.b[c]);
        for (int64_t j = 0; j < kSide * kSide; ++j)
          m += std::abs(f.w[c * kSide * kSide + j] * (*t)[i * kSide * kSide + j]);
        largest = std::max(largest, m);
      }
    }
  }
  return largest;
}

// One pixel at a time, every data image once (n = M): the mean of f(x̃) over the data is f at the
// data's mean for a linear f, so PDA's score difference is occlusion of that pixel with the mean fill.
TEST(PredictionDifference, MarginalScoreDifferenceOfOnePixelIsOcclusionWithTheDataMean) {
  const Fixture f;
  Tensor mean(Shape{1, 1, kSide, kSide});
  for (int64_t j = 0; j < mean.size(); ++j) {
    double sum = 0.0;
    for (int64_t s = 0; s < kData; ++s) sum += (*f.data)[s * kSide * kSide + j];
    mean[j] = static_cast<float>(sum / kData);
  }
  const std::string fill = ::testing::TempDir() + "/pda_mean_" + std::to_string(getpid()) + ".npy";
  write_npy(fill, mean);
  const Target target(std::vector<int64_t>{2, 0});
  const Tensor pda = explain(
      f.model, "prediction_difference:mode=marginal,measure=difference,window=1,n=" + std::to_string(kData),
      f.x, target, f.data);
  const Tensor occlusion =
      explain(f.model, "occlusion:window=1,fill=baseline,baseline=" + fill, f.x, target, nullptr);
  std::remove(fill.c_str());
  // Each side is a difference of float32 logits (dot products of length 25, each off by 25u of the
  // magnitude), and the fill is the float32 rounding of the mean (u of it, times |w| ≤ magnitude).
  const double tol = (2.0 * 25.0 + 1.0) * kFloat32UnitRoundoff * logit_magnitude(f) * 2.0;
  ASSERT_EQ(pda.shape(), occlusion.shape());
  double largest = 0.0;
  for (int64_t j = 0; j < pda.size(); ++j) {
    EXPECT_NEAR(pda[j], occlusion[j], tol) << "at " << j;
    largest = std::max(largest, static_cast<double>(std::abs(occlusion[j])));
  }
  EXPECT_GT(largest, 100.0 * tol);
}

// The weight of evidence of one pixel against the formula: log2 odds of the Laplace-corrected
// probabilities (p·N + 1)/(N + K), N the data's sample count, K the classes.
TEST(PredictionDifference, WeightOfEvidenceFollowsTheLaplaceCorrectedLogOdds) {
  const Fixture f;
  const std::vector<int64_t> classes{1, 2};
  const Tensor pda =
      explain(f.model, "prediction_difference:mode=marginal,window=1,n=" + std::to_string(kData), f.x,
              Target(classes), f.data);
  const int64_t per = kSide * kSide;
  const auto probability = [&](const float* image, int64_t c) {
    std::vector<double> logits(kClasses);
    for (int64_t k = 0; k < kClasses; ++k) {
      logits[k] = f.b[k];
      for (int64_t j = 0; j < per; ++j) logits[k] += static_cast<double>(f.w[k * per + j]) * image[j];
    }
    double sum = 0.0;
    for (double l : logits) sum += std::exp(l);
    return std::exp(logits[c]) / sum;
  };
  const auto log2_odds = [&](double p) {
    const double q = (p * kData + 1.0) / (kData + kClasses);
    return std::log2(q / (1.0 - q));
  };
  for (int64_t i = 0; i < 2; ++i) {
    const int64_t c = classes[i];
    const double with = log2_odds(probability(f.x.data() + i * per, c));
    for (int64_t j = 0; j < per; ++j) {
      double without = 0.0;
      for (int64_t s = 0; s < kData; ++s) {
        std::vector<float> altered(f.x.data() + i * per, f.x.data() + (i + 1) * per);
        altered[j] = (*f.data)[s * per + j];
        without += probability(altered.data(), c) / kData;
      }
      const double expected = with - log2_odds(without);
      // Logits off by 25u of their magnitude move a probability by at most that much relative to p(1−p),
      // and the log-odds by that divided by ln 2, twice (with and without the pixel).
      const double tol = 2.0 * 25.0 * kFloat32UnitRoundoff * logit_magnitude(f) / std::log(2.0) * 4.0;
      EXPECT_NEAR(pda[i * per + j], expected, tol) << "sample " << i << " pixel " << j;
    }
  }
}

// x_w | x_g against the closed forms: a window of one coordinate given two (the 2 × 2 inverse written
// out), and a window of two given one.
TEST(PredictionDifference, GaussianConditioningMatchesTheClosedForm) {
  Eigen::Vector3d mean(0.5, -1.0, 2.0);
  Eigen::Matrix3d s;
  s << 2.0, 0.6, -0.4, 0.6, 1.5, 0.3, -0.4, 0.3, 1.0;
  {
    const analyzers::GaussianCondition c = analyzers::condition_gaussian(mean, s, {0}, {1, 2}, 0.0);
    const double det = s(1, 1) * s(2, 2) - s(1, 2) * s(2, 1);
    const double g1 = (s(0, 1) * s(2, 2) - s(0, 2) * s(2, 1)) / det;
    const double g2 = (s(0, 2) * s(1, 1) - s(0, 1) * s(1, 2)) / det;
    const double variance = s(0, 0) - g1 * s(1, 0) - g2 * s(2, 0);
    // Double precision on numbers of order 1: 1e-12 is thousands of ulps.
    EXPECT_NEAR(c.gain(0, 0), g1, 1e-12);
    EXPECT_NEAR(c.gain(0, 1), g2, 1e-12);
    EXPECT_NEAR((c.factor * c.factor.transpose())(0, 0), variance, 1e-12);
    EXPECT_NEAR(c.mean_window[0], 0.5, 0.0);
    EXPECT_NEAR(c.mean_given[1], 2.0, 0.0);
  }
  {
    const analyzers::GaussianCondition c = analyzers::condition_gaussian(mean, s, {0, 2}, {1}, 0.0);
    const Eigen::MatrixXd cov = c.factor * c.factor.transpose();
    EXPECT_NEAR(c.gain(0, 0), s(0, 1) / s(1, 1), 1e-12);
    EXPECT_NEAR(c.gain(1, 0), s(2, 1) / s(1, 1), 1e-12);
    EXPECT_NEAR(cov(0, 0), s(0, 0) - s(0, 1) * s(0, 1) / s(1, 1), 1e-12);
    EXPECT_NEAR(cov(0, 1), s(0, 2) - s(0, 1) * s(1, 2) / s(1, 1), 1e-12);
    EXPECT_NEAR(cov(1, 1), s(2, 2) - s(2, 1) * s(2, 1) / s(1, 1), 1e-12);
  }
}

// Conditional sampling from data in two clusters, a flat image of ones and its negative, plus a little
// noise: given its neighbours the window is drawn close to their value, so the prediction barely changes,
// unlike marginal sampling from the same data, which draws either cluster.
TEST(PredictionDifference, ConditionalSamplesFollowTheirSurroundings) {
  const Fixture f;
  Tensor data = random_tensor({64, 1, kSide, kSide}, 5, 0.01f);
  const int64_t per = kSide * kSide;
  for (int64_t s = 0; s < 64; ++s) {
    for (int64_t j = 0; j < per; ++j) data[s * per + j] += s % 2 == 0 ? 1.0f : -1.0f;
  }
  const Tensor base(Shape{1, 1, kSide, kSide}, 1.0f);
  const auto shared = std::make_shared<const Tensor>(data);
  const Tensor& x = base;
  const std::string common = "prediction_difference:measure=difference,window=1,padding=1,n=32";
  const Tensor conditional = explain(f.model, common + ",mode=conditional", x, Target({0}), shared);
  const Tensor marginal = explain(f.model, common + ",mode=marginal", x, Target({0}), shared);
  double c = 0.0, m = 0.0;
  for (int64_t j = 0; j < per; ++j) {
    c += std::abs(conditional[j]);
    m += std::abs(marginal[j]);
  }
  std::printf("prediction_difference on two clusters: mean |difference| conditional %.4f, marginal %.4f\n",
              c / per, m / per);
  EXPECT_LT(c, 0.2 * m);
}

TEST(PredictionDifference, OneClearMessageEach) {
  const Fixture f;
  EXPECT_EQ(error_of([&] { create_analyzer(MethodSpec::parse("prediction_difference")); }),
            "method 'prediction_difference' samples its windows from data: give --data (the library: "
            "AnalyzerContext::data)");
  EXPECT_EQ(
      error_of([&] {
        explain(f.model, "prediction_difference:window=6", f.x, Target({0, 0}), f.data);
      }),
      "prediction_difference: the patch of window + 2·padding = 10 pixels is larger than the data's 5x5 "
      "images");
  EXPECT_EQ(error_of([&] {
              explain(f.model, "prediction_difference:mode=marginal,window=6", f.x, Target({0, 0}), f.data);
            }),
            "prediction_difference: window 6 is larger than the input's 5x5 pixels");
  const auto other = std::make_shared<const Tensor>(Shape{3, 1, 4, 4});
  EXPECT_EQ(error_of([&] {
              explain(f.model, "prediction_difference:mode=marginal", f.x, Target({0, 0}), other);
            }),
            "prediction_difference: the data's samples [1,4,4] differ from the input's [1,5,5]");
  EXPECT_EQ(error_of([&] {
              explain(f.model, "prediction_difference:mode=marginal", f.x,
                      Target::weighted(Tensor(Shape{2, kClasses}, 1.0f)), f.data);
            }),
            "prediction_difference: measure=evidence needs a class target of a [batch, classes] output (its "
            "softmax probability); measure=difference takes any target");
}

}  // namespace
}  // namespace sieve
