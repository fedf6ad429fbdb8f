// Meaningful perturbation: the adjoints of the linear maps between the mask grid and the perturbed
// input (dot-product and finite-difference tests), the learnt deletion mask lowering the class
// probability on the bundled Fashion-MNIST model, the area and total variation of the mask against
// λ1 and λ2, seeded reproducibility, and one clear message for each bad parameter.

#include "analyzers/meaningful_perturbation.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>

#include "sieve/blur.hpp"
#include "sieve/io/inputs.hpp"
#include "sieve/io/profile.hpp"
#include "sieve/methods.hpp"
#include "support/errors.hpp"
#include "support/rounding.hpp"

namespace sieve {
namespace {

const std::string kExamples = std::string(SIEVE_TEST_DATA) + "/../../examples/";
constexpr double kFloat64UnitRoundoff = 0x1p-53;

std::vector<double> random_values(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> uniform(-1.0, 1.0);
  std::vector<double> v(n);
  for (double& x : v) x = uniform(rng);
  return v;
}

// ⟨a, b⟩ and Σ|a_i b_i|, in double.
std::pair<double, double> dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0.0, magnitude = 0.0;
  for (size_t i = 0; i < a.size(); ++i) {
    s += a[i] * b[i];
    magnitude += std::abs(a[i] * b[i]);
  }
  return {s, magnitude};
}

// The two sides of a dot-product test are float64 sums over the same products computed in different
// orders; each side is off by at most n·u₆₄ of the sum of the magnitudes of its terms, where n is the
// number of terms a value accumulates: the inner products' length plus the map's own terms per output.
void expect_adjoint(const std::vector<double>& forward_a, const std::vector<double>& b,
                    const std::vector<double>& a, const std::vector<double>& adjoint_b, double terms) {
  const auto [left, left_magnitude] = dot(forward_a, b);
  const auto [right, right_magnitude] = dot(a, adjoint_b);
  const double n = static_cast<double>(std::max(a.size(), b.size())) + terms;
  EXPECT_NEAR(left, right, 2.0 * n * kFloat64UnitRoundoff * std::max(left_magnitude, right_magnitude));
}

TEST(MeaningfulPerturbationAdjoints, BilinearUpsampling) {
  for (const auto& [rows, cols, height, width] :
       std::vector<std::array<int64_t, 4>>{{3, 4, 10, 13}, {7, 7, 28, 28}, {1, 1, 5, 6}, {4, 2, 4, 2}}) {
    const std::vector<double> grid = random_values(static_cast<size_t>(2 * rows * cols), 1);
    const std::vector<double> image = random_values(static_cast<size_t>(2 * height * width), 2);
    expect_adjoint(analyzers::upsample_bilinear(grid, 2, rows, cols, height, width), image, grid,
                   analyzers::upsample_bilinear_adjoint(image, 2, rows, cols, height, width), 4);
  }
}

TEST(MeaningfulPerturbationAdjoints, GaussianBlurBothEdgeModes) {
  const Shape shape{2, 3, 11, 9};
  const std::vector<bool> axes{false, false, true, true};
  for (const BlurEdges edges : {BlurEdges::repeat, BlurEdges::renormalize}) {
    for (const double sigma : {0.7, 2.5, 10.0}) {
      const std::vector<double> a = random_values(2 * 3 * 11 * 9, 3), b = random_values(2 * 3 * 11 * 9, 4);
      std::vector<double> blurred = a, adjoint = b;
      gaussian_blur(blurred, shape, axes, sigma, edges);
      gaussian_blur_adjoint(adjoint, shape, axes, sigma, edges);
      const double taps = 2.0 * (2.0 * std::ceil(3.0 * sigma) + 1.0);  // two separable passes
      expect_adjoint(blurred, b, a, adjoint, taps);
    }
  }
}

// Φ is affine in M, so its finite difference Φ(M + δ) − Φ(M) is its derivative applied to δ; both Φ are
// float32 values m·x + (1 − m)·b, each rounded three times (two products and a sum, plus the mask's
// conversion to float32), so each difference element is off by at most 8u·(|x| + |b|); weighted by
// |g| and summed, that bounds the difference of the two sides (the float64 sums add n·u₆₄, negligible).
TEST(MeaningfulPerturbationAdjoints, BlendAgainstFiniteDifferences) {
  const int64_t n = 2, channels = 3, positions = 20;
  const std::vector<double> mask = random_values(static_cast<size_t>(n * positions), 5);
  std::vector<double> m(mask.size()), delta = random_values(mask.size(), 6), moved(mask.size());
  for (size_t i = 0; i < m.size(); ++i) {
    m[i] = 0.5 + 0.4 * mask[i];
    delta[i] *= 0.05;
    moved[i] = m[i] + delta[i];
  }
  const size_t size = static_cast<size_t>(n * channels * positions);
  const std::vector<double> xd = random_values(size, 7), bd = random_values(size, 8),
                            gd = random_values(size, 9);
  std::vector<float> x(xd.begin(), xd.end()), b(bd.begin(), bd.end()), g(gd.begin(), gd.end());
  const std::vector<float> at = analyzers::blend(m, x, b, channels, positions);
  const std::vector<float> after = analyzers::blend(moved, x, b, channels, positions);
  double left = 0.0, bound = 0.0;
  for (size_t e = 0; e < size; ++e) {
    left += static_cast<double>(g[e]) * (static_cast<double>(after[e]) - static_cast<double>(at[e]));
    bound += 8.0 * kFloat32UnitRoundoff * std::abs(g[e]) * (std::abs(x[e]) + std::abs(b[e]));
  }
  const auto [right, magnitude] = dot(delta, analyzers::blend_mask_adjoint(g, x, b, channels, positions));
  EXPECT_NEAR(left, right, bound + 2.0 * static_cast<double>(size) * kFloat64UnitRoundoff * magnitude);
  // The mask is shared by the channels: every channel of a position uses the same value.
  std::vector<double> half(m.size(), 0.5);
  const std::vector<float> mid = analyzers::blend(half, x, b, channels, positions);
  for (size_t e = 0; e < size; ++e) EXPECT_FLOAT_EQ(mid[e], 0.5f * x[e] + 0.5f * b[e]);
}

struct Fashion {
  Model model = Model::load(kExamples + "fashion_cnn.onnx");
  Tensor batch;
  std::vector<int64_t> predicted;
  Fashion() {
    std::vector<std::string> paths;
    for (const char* f : {"00_ankle_boot.png", "01_pullover.png", "02_trouser.png", "03_trouser.png",
                          "04_shirt.png", "05_trouser.png"})
      paths.push_back(kExamples + "images/" + f);
    const Preprocessing p = model_preprocessing(find_profile(kExamples + "fashion_cnn.onnx"), 1);
    const std::vector<NamedInput> inputs = load_inputs(paths, p, model.input_shapes().at(0));
    batch = Tensor({static_cast<int64_t>(inputs.size()), 1, 28, 28});
    for (size_t i = 0; i < inputs.size(); ++i)
      std::copy(inputs[i].tensor.data(), inputs[i].tensor.data() + 784, batch.data() + i * 784);
    const Tensor logits = model.run({batch}).at(0);
    for (int64_t i = 0; i < batch.dim(0); ++i)
      predicted.push_back(std::max_element(logits.data() + i * 10, logits.data() + (i + 1) * 10) -
                          (logits.data() + i * 10));
  }
};

const Fashion& fashion() {
  static const Fashion f;
  return f;
}

analyzers::LearnedMasks learn(const std::string& spec) {
  const Fashion& f = fashion();
  const MethodSpec method = MethodSpec::parse(spec);
  Params p(method);
  const analyzers::MaskOptions options = analyzers::read_mask_options(p, 32);
  p.finish();
  const ForwardPass pass(f.model, f.batch);
  return analyzers::learn_masks(pass, f.predicted, options);
}

std::vector<double> probabilities(const Tensor& logits, int64_t row) {
  const float* z = logits.data() + row * 10;
  const double top = *std::max_element(z, z + 10);
  double total = 0.0;
  for (int j = 0; j < 10; ++j) total += std::exp(z[j] - top);
  std::vector<double> p(10);
  for (int j = 0; j < 10; ++j) p[static_cast<size_t>(j)] = std::exp(z[j] - top) / total;
  return p;
}

// The default deletion game (blur σ0 = 10, 300 Adam steps, λ1 = 1e-4, λ2 = 1e-2) on the bundled model's
// example images: blurring where the learnt saliency is high must take the predicted class's
// probability below 0.1 and below a quarter of its value on the image (0.44 to 1.0 on these images),
// checked here on the model run directly.
TEST(MeaningfulPerturbation, DeletionMaskRemovesTheClass) {
  const Fashion& f = fashion();
  const auto started = std::chrono::steady_clock::now();
  const analyzers::LearnedMasks learnt = learn("meaningful_perturbation");
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  const int64_t n = f.batch.dim(0);
  std::printf("300 iterations on %lld images: %.3f s (%.2f ms per iteration)\n", static_cast<long long>(n),
              seconds, 1000.0 * seconds / 300.0);
  std::vector<double> blurred(f.batch.data(), f.batch.data() + f.batch.size());
  gaussian_blur(blurred, {n, 1, 28, 28}, {false, false, true, true}, 10.0, BlurEdges::repeat);
  Tensor perturbed(f.batch.shape());
  for (int64_t e = 0; e < f.batch.size(); ++e) {
    const double keep = 1.0 - learnt.saliency[e];
    perturbed[e] = static_cast<float>(keep * f.batch[e] + (1.0 - keep) * blurred[static_cast<size_t>(e)]);
  }
  const Tensor before = f.model.run({f.batch}).at(0), after = f.model.run({perturbed}).at(0);
  const double cells = static_cast<double>(learnt.rows * learnt.cols);
  for (int64_t i = 0; i < n; ++i) {
    const size_t c = static_cast<size_t>(f.predicted[static_cast<size_t>(i)]);
    const double p0 = probabilities(before, i)[c], p1 = probabilities(after, i)[c];
    std::printf("image %lld class %zu: p %.4f -> %.4f, deleted area %.1f of %.0f cells, tv %.4f\n",
                static_cast<long long>(i), c, p0, p1, learnt.area[static_cast<size_t>(i)], cells,
                learnt.tv[static_cast<size_t>(i)]);
    EXPECT_LT(p1, 0.1) << "image " << i;
    EXPECT_LT(p1, 0.25 * p0) << "image " << i;
    // The method's own final score is the same probability (float32 rounding of the same forward pass).
    EXPECT_NEAR(learnt.score[static_cast<size_t>(i)], p1, 1e-3);
    // Not everything is deleted: the area term keeps cells where the score does not need them.
    EXPECT_LT(learnt.area[static_cast<size_t>(i)], cells);
  }
}

double mean(const std::vector<double>& v) {
  double s = 0.0;
  for (double x : v) s += x;
  return s / static_cast<double>(v.size());
}

TEST(MeaningfulPerturbation, AreaShrinksAsLambda1Grows) {
  std::vector<double> areas;
  for (const char* lambda1 : {"1e-3", "1e-2", "3e-2"}) {
    const analyzers::LearnedMasks learnt =
        learn(std::string("meaningful_perturbation:iterations=150,lambda1=") + lambda1);
    areas.push_back(mean(learnt.area));
    std::printf("lambda1 %s: mean deleted area %.3f cells, mean tv %.4f\n", lambda1, areas.back(),
                mean(learnt.tv));
  }
  EXPECT_GT(areas[0], areas[1]);
  EXPECT_GT(areas[1], areas[2]);
}

TEST(MeaningfulPerturbation, TotalVariationFallsAsLambda2Grows) {
  std::vector<double> tvs;
  for (const char* lambda2 : {"1e-3", "1e-1", "1"}) {
    const analyzers::LearnedMasks learnt =
        learn(std::string("meaningful_perturbation:iterations=150,lambda2=") + lambda2);
    tvs.push_back(mean(learnt.tv));
    std::printf("lambda2 %s: mean tv %.4f, mean deleted area %.3f\n", lambda2, tvs.back(), mean(learnt.area));
  }
  EXPECT_GT(tvs[0], tvs[1]);
  EXPECT_GT(tvs[1], tvs[2]);
}

TEST(MeaningfulPerturbation, SeededRunsAreBitIdentical) {
  for (const char* spec : {"meaningful_perturbation:iterations=40,perturbation=noise,seed=3",
                           "meaningful_perturbation:iterations=40,mode=preservation,perturbation=constant"}) {
    const analyzers::LearnedMasks a = learn(spec), b = learn(spec);
    ASSERT_EQ(a.masks.size(), b.masks.size());
    EXPECT_EQ(a.masks, b.masks) << spec;
    for (int64_t e = 0; e < a.saliency.size(); ++e) ASSERT_EQ(a.saliency[e], b.saliency[e]) << spec;
  }
  // Another seed draws other jitters and noise.
  EXPECT_NE(learn("meaningful_perturbation:iterations=40,perturbation=noise,seed=3").masks,
            learn("meaningful_perturbation:iterations=40,perturbation=noise,seed=4").masks);
}

// The preservation game keeps (saliency M near 1) enough of the image for the class to survive.
TEST(MeaningfulPerturbation, PreservationKeepsTheClass) {
  const analyzers::LearnedMasks learnt = learn("meaningful_perturbation:mode=preservation");
  const double cells = static_cast<double>(learnt.rows * learnt.cols);
  for (size_t i = 0; i < learnt.score.size(); ++i) {
    EXPECT_GT(learnt.score[i], 0.5) << "image " << i;
    EXPECT_LT(learnt.area[i], cells) << "image " << i;
  }
}

TEST(MeaningfulPerturbation, ExplainsThroughTheRegistry) {
  const Fashion& f = fashion();
  const auto analyzer = create_analyzer(MethodSpec::parse("meaningful_perturbation:iterations=5"));
  const ForwardPass pass(f.model, f.batch);
  const Tensor e = analyzer->explain(pass, f.predicted);
  EXPECT_EQ(e.shape(), f.batch.shape());
  for (float v : e.values()) {
    EXPECT_GE(v, 0.0f);
    EXPECT_LE(v, 1.0f);
  }
}

TEST(MeaningfulPerturbation, BadParametersAreRefused) {
  const Fashion& f = fashion();
  const auto message = [&](const std::string& spec) {
    return error_of([&] {
      const auto analyzer = create_analyzer(MethodSpec::parse(spec));
      const ForwardPass pass(f.model, f.batch);
      analyzer->explain(pass, f.predicted);
    });
  };
  EXPECT_NE(message("meaningful_perturbation:mode=both").find("mode"), std::string::npos);
  EXPECT_NE(message("meaningful_perturbation:perturbation=zero").find("perturbation"), std::string::npos);
  EXPECT_NE(message("meaningful_perturbation:lambda1=-1").find("lambda1"), std::string::npos);
  EXPECT_NE(message("meaningful_perturbation:iterations=0").find("iterations"), std::string::npos);
  EXPECT_NE(message("meaningful_perturbation:upsample=0").find("upsample"), std::string::npos);
  EXPECT_NE(message("meaningful_perturbation:beta=0.5").find("beta"), std::string::npos);
  EXPECT_NE(message("meaningful_perturbation:iteration=5").find("iteration"), std::string::npos);
  EXPECT_EQ(message("meaningful_perturbation:jitter=28,iterations=1"),
            "meaningful_perturbation: jitter=28 is not smaller than the input's spatial size 28x28");
  // A 1-D signal [N, C, L] has no two spatial axes.
  const Model conv1d = Model::load(std::string(SIEVE_TEST_DATA) + "/models/conv1d.onnx");
  EXPECT_NE(error_of([&] {
              const Tensor x({1, conv1d.input_shapes()[0][1], conv1d.input_shapes()[0][2]}, 0.1f);
              const ForwardPass pass(conv1d, x);
              const MethodSpec method = MethodSpec::parse("meaningful_perturbation");
              Params p(method);
              analyzers::learn_masks(pass, {0}, analyzers::read_mask_options(p, 32));
            }).find("two spatial axes"),
            std::string::npos);
  // The probability is defined for a class of a [batch, classes] output only.
  EXPECT_NE(error_of([&] {
              const ForwardPass pass(f.model, f.batch);
              const MethodSpec method = MethodSpec::parse("meaningful_perturbation");
              Params p(method);
              Tensor weights({f.batch.dim(0), 10}, 0.1f);
              analyzers::learn_masks(pass, Target::weighted(weights), analyzers::read_mask_options(p, 32));
            }).find("score=probability needs a class index"),
            std::string::npos);
}

}  // namespace
}  // namespace sieve
