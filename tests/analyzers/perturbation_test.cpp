// Properties of the perturbation methods: occlusion windows on 1-D signals and token positions against
// the model run directly, ablation with a block mask equal to occlusion with those blocks, RISE
// converging as the number of masks grows, and one clear message for each bad input.

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <set>

#include "sieve/analyzer.hpp"
#include "sieve/error.hpp"
#include "sieve/io/npy.hpp"
#include "sieve/methods.hpp"
#include "support/errors.hpp"
#include "support/rounding.hpp"

namespace sieve {
namespace {

const std::string kData = std::string(SIEVE_TEST_DATA);
const std::string kShared = kData + "/shared/models/";

Tensor first_rows(const Tensor& all, int64_t n) {
  const int64_t per = all.size() / all.dim(0);
  Shape s = all.shape();
  s[0] = n;
  return Tensor(s, std::span<const float>(all.data(), static_cast<size_t>(n * per)));
}

Tensor explain(const Model& model, const std::string& method, const Tensor& x,
               const std::vector<int64_t>& targets) {
  const auto analyzer = create_analyzer(MethodSpec::parse(method));
  const ForwardPass pass(model, x, analyzer->trace_values(model));
  return analyzer->explain(pass, targets);
}

double max_abs(const Tensor& t) {
  double m = 0.0;
  for (float v : t.values()) m = std::max(m, static_cast<double>(std::abs(v)));
  return m;
}

// A difference of two target logits, each a float32 forward pass off by at most τ of its magnitudes
// (support/rounding.hpp), bounded here by the largest logit of the batch: 2τ·max|logit|.
double logit_difference_tolerance(const Model& model, const Tensor& logits) {
  return 2.0 * forward_rounding_bound(model) * max_abs(logits);
}

// Non-overlapping windows of 8 along the 64 steps of a 2-channel 1-D signal, both channels at once:
// every step of window k gets f(x) − f(x with window k zeroed).
TEST(Occlusion, WindowsOverOneDimensionalSignals) {
  const Model model = Model::load(kData + "/models/conv1d.onnx");
  const Tensor x = read_npy(kData + "/models/conv1d_input.npy");
  ASSERT_EQ(x.rank(), 3);
  const int64_t n = x.dim(0), channels = x.dim(1), steps = x.dim(2), classes = model.run({x}).at(0).dim(1);
  const Tensor logits = model.run({x}).at(0);
  const std::vector<int64_t> targets(static_cast<size_t>(n), 1);
  const Tensor e = explain(model, "occlusion:window=8", x, targets);
  ASSERT_EQ(e.shape(), x.shape());
  const double tol = logit_difference_tolerance(model, logits);
  for (int64_t k = 0; k < steps / 8; ++k) {
    Tensor occluded = x.clone();
    for (int64_t i = 0; i < n; ++i) {
      for (int64_t c = 0; c < channels; ++c) {
        for (int64_t t = 8 * k; t < 8 * k + 8; ++t) occluded[(i * channels + c) * steps + t] = 0.0f;
      }
    }
    const Tensor changed = model.run({occluded}).at(0);
    for (int64_t i = 0; i < n; ++i) {
      const double want = logits[i * classes + 1] - changed[i * classes + 1];
      for (int64_t c = 0; c < channels; ++c) {
        for (int64_t t = 8 * k; t < 8 * k + 8; ++t)
          EXPECT_NEAR(e[(i * channels + c) * steps + t], want, tol) << "sample " << i << " window " << k;
      }
    }
  }
}

// A model with a fixed batch size runs the altered copies in batches of its own size whatever `batch`
// asks: the same numbers as the model with a dynamic batch and the same weights, up to the rounding of
// two logit differences.
TEST(Occlusion, RunsInTheBatchesOfAFixedBatchModel) {
  const Model fixed = Model::load(kData + "/models/mlp_batch4.onnx");
  const Model dynamic = Model::load(kData + "/models/mlp.onnx");
  const Tensor x = read_npy(kData + "/models/mlp_input.npy");
  ASSERT_EQ(x.dim(0), 4);
  const std::vector<int64_t> targets{0, 1, 2, 3};
  const Tensor a = explain(fixed, "occlusion:window=5,stride=3,batch=7", x, targets);
  const Tensor b = explain(dynamic, "occlusion:window=5,stride=3,batch=32", x, targets);
  const double tol = 2.0 * logit_difference_tolerance(dynamic, dynamic.run({x}).at(0));
  ASSERT_EQ(a.shape(), b.shape());
  for (int64_t j = 0; j < a.size(); ++j) EXPECT_NEAR(a[j], b[j], tol) << j;
}

// Token ids: a window of one position removes one token's embedding vector, and the token's reported
// value is the change of the target.
TEST(Occlusion, WindowsOverTokenPositions) {
  const Model model = Model::load(kData + "/models/multi_input.onnx");
  ExplainSetup setup;
  setup.wrt = "ids";
  for (const std::string name : {"x", "h", "offset"})
    setup.fixed[name] = FixedInput{read_npy(kData + "/models/multi_input_" + name + ".npy"), true};
  const Tensor ids = read_npy(kData + "/models/multi_input_ids.npy");
  const auto analyzer = create_analyzer(MethodSpec::parse("occlusion:window=1"));
  const ForwardPass pass(model, ids, setup);
  ASSERT_TRUE(pass.explains_embedding());
  const std::vector<int64_t> targets(static_cast<size_t>(ids.dim(0)), 2);
  const Tensor e = pass.reported(analyzer->explain(pass, targets));
  ASSERT_EQ(e.shape(), ids.shape());
  const Tensor& embedded = pass.input();  // [N, T, E]
  const int64_t n = embedded.dim(0), tokens = embedded.dim(1), dims = embedded.dim(2);
  const int64_t classes = pass.output().size() / n;
  std::vector<int64_t> rows;
  for (int64_t i = 0; i < n; ++i) rows.push_back(i);
  const double tol = logit_difference_tolerance(model, pass.output());
  for (int64_t t = 0; t < tokens; ++t) {
    Tensor without = embedded.clone();
    for (int64_t i = 0; i < n; ++i) {
      for (int64_t d = 0; d < dims; ++d) without[(i * tokens + t) * dims + d] = 0.0f;
    }
    const Tensor changed = pass.output_at(without, rows);
    for (int64_t i = 0; i < n; ++i) {
      // The per-token value is a sum of `dims` equal shares: dims more roundings of its size.
      EXPECT_NEAR(e[i * tokens + t], pass.output()[i * classes + 2] - changed[i * classes + 2],
                  tol + dims * kFloat32UnitRoundoff * std::abs(e[i * tokens + t]))
          << "sample " << i << " token " << t;
    }
  }
}

// A mask of 4×4 blocks groups exactly the windows of occlusion:window=4: the same altered copies, here
// run in batches of different sizes, so equal up to the rounding of two logit differences.
TEST(Ablation, BlockMaskEqualsOcclusion) {
  const Model model = Model::load(kShared + "cnn_dynbatch.onnx");
  const Tensor x = first_rows(read_npy(kShared + "cnn_inputs.npy"), 3);
  Tensor blocks(Shape{1, 28, 28}, 0.0f);
  for (int64_t y = 0; y < 28; ++y) {
    for (int64_t c = 0; c < 28; ++c) blocks[y * 28 + c] = static_cast<float>((y / 4) * 7 + c / 4);
  }
  const std::string mask = ::testing::TempDir() + "/blocks_" + std::to_string(getpid()) + ".npy";
  write_npy(mask, blocks);
  const std::vector<int64_t> targets{0, 3, 9};
  const Tensor occlusion = explain(model, "occlusion:window=4,batch=5", x, targets);
  const Tensor ablation = explain(model, "ablation:mask=" + mask + ",batch=16", x, targets);
  const double tol = 2.0 * logit_difference_tolerance(model, model.run({x}).at(0));
  ASSERT_EQ(ablation.shape(), occlusion.shape());
  for (int64_t j = 0; j < x.size(); ++j) EXPECT_NEAR(ablation[j], occlusion[j], tol) << j;
  std::remove(mask.c_str());
}

// RISE is a Monte-Carlo mean over masks: its error against a long run shrinks like 1/√n. Four times
// the masks should halve it; the test asks for a drop by at least a third per step (while the long run's
// own error, half of the last step's, stays small) and prints the errors.
TEST(Rise, ConvergesAsMasksGrow) {
  const Model model = Model::load(kShared + "mlp_dynbatch.onnx");
  const Tensor x = first_rows(read_npy(kShared + "mlp_inputs.npy"), 1);
  const std::vector<int64_t> targets{9};
  const Tensor reference = explain(model, "rise:n=16384,seed=99", x, targets);
  double previous = INFINITY;
  for (const int n : {64, 256, 1024}) {
    const Tensor e = explain(model, "rise:n=" + std::to_string(n), x, targets);
    double squared = 0.0, scale = 0.0;
    for (int64_t j = 0; j < x.size(); ++j) {
      squared += std::pow(static_cast<double>(e[j]) - reference[j], 2);
      scale += std::pow(static_cast<double>(reference[j]), 2);
    }
    const double error = std::sqrt(squared / scale);
    std::printf("rise n=%d: relative RMS error against n=16384: %.4f\n", n, error);
    EXPECT_LT(error, previous / 1.5) << "n = " << n;
    previous = error;
  }
}

// On a linear model f(x) = wᵀx with zero fill, the score of an on/off state z is Σ_g z_g c_g with
// c_g = Σ_{i∈g} w_i x_i: exactly linear in z, so least squares (alpha=0) recovers c up to the rounding of
// the scores (2u·Σ|w_i x_i| each) amplified by the fit over 1000 balanced states, far below 1e-5 of it.
// The default ridge (α = 1) moves c by (A + αI)⁻¹α·c, A the kernel-weighted Gram matrix of the centred
// states, whose eigenvalues grow with n (a shrinkage of the vector, not of each coordinate): the test
// prints it per coefficient and asks for less than 5 % of Σ|c|.
TEST(Lime, RecoversTheWeightsOfALinearModel) {
  const Model model = Model::load(kData + "/../../examples/linear_toy/model.onnx");
  const Tensor x = read_npy(kData + "/../../examples/linear_toy/explain.npy");
  const Tensor& w = model.graph().value(model.graph().nodes().at(0).inputs.at(1)).constant;  // [1, 2]
  const std::string mask = ::testing::TempDir() + "/pair_" + std::to_string(getpid()) + ".npy";
  const std::vector<float> one_group_each{0.0f, 1.0f};
  write_npy(mask, Tensor(Shape{1, 2}, one_group_each));
  const std::vector<int64_t> targets(static_cast<size_t>(x.dim(0)), 0);
  const Tensor exact = explain(model, "lime:alpha=0,mask=" + mask, x, targets);
  const Tensor ridge = explain(model, "lime:mask=" + mask, x, targets);
  std::remove(mask.c_str());
  for (int64_t i = 0; i < x.dim(0); ++i) {
    const double c0 = static_cast<double>(w[0]) * x[i * 2], c1 = static_cast<double>(w[1]) * x[i * 2 + 1];
    const double magnitude = std::abs(c0) + std::abs(c1);
    EXPECT_NEAR(exact[i * 2], c0, 1e-5 * magnitude) << "sample " << i;
    EXPECT_NEAR(exact[i * 2 + 1], c1, 1e-5 * magnitude) << "sample " << i;
    const double shrink0 = 1.0 - ridge[i * 2] / c0, shrink1 = 1.0 - ridge[i * 2 + 1] / c1;
    std::printf("lime on the linear toy, sample %lld: ridge (α = 1) shrinks the weights by %.4f and %.4f\n",
                static_cast<long long>(i), shrink0, shrink1);
    EXPECT_LT(std::abs(ridge[i * 2] - c0) + std::abs(ridge[i * 2 + 1] - c1), 0.05 * magnitude)
        << "sample " << i;
  }
}

// LIME's coefficients are a fit to random states: their error against a long run shrinks as n grows.
TEST(Lime, ConvergesAsSamplesGrow) {
  const Model model = Model::load(kShared + "mlp_dynbatch.onnx");
  const Tensor x = first_rows(read_npy(kShared + "mlp_inputs.npy"), 1);
  Tensor blocks(Shape{1, 28, 28}, 0.0f);
  for (int64_t j = 0; j < blocks.size(); ++j) blocks[j] = static_cast<float>((j / 28 / 7) * 4 + j % 28 / 7);
  const std::string mask = ::testing::TempDir() + "/lime_blocks_" + std::to_string(getpid()) + ".npy";
  write_npy(mask, blocks);
  const std::vector<int64_t> targets{9};
  const Tensor reference = explain(model, "lime:n=32000,seed=7,mask=" + mask, x, targets);
  double previous = INFINITY;
  for (const int n : {250, 1000, 4000}) {
    const Tensor e = explain(model, "lime:n=" + std::to_string(n) + ",mask=" + mask, x, targets);
    double squared = 0.0, scale = 0.0;
    for (int64_t j = 0; j < x.size(); ++j) {
      squared += std::pow(static_cast<double>(e[j]) - reference[j], 2);
      scale += std::pow(static_cast<double>(reference[j]), 2);
    }
    const double error = std::sqrt(squared / scale);
    std::printf("lime n=%d: relative RMS error against n=32000: %.4f\n", n, error);
    EXPECT_LT(error, previous / 1.5) << "n = " << n;
    previous = error;
  }
  std::remove(mask.c_str());
}

// Two flat halves, dark and bright, with a faint ramp inside each so SLIC has something to do: every
// superpixel lies on one side of the edge, whatever the normalisation of the values.
TEST(Lime, SuperpixelsFollowAClearEdge) {
  for (const float scale : {1.0f, 50.0f}) {
    Tensor image(Shape{1, 3, 32, 32});
    for (int64_t c = 0; c < 3; ++c) {
      for (int64_t y = 0; y < 32; ++y) {
        for (int64_t x = 0; x < 32; ++x)
          image[(c * 32 + y) * 32 + x] = scale * ((x < 13 ? 0.1f : 0.9f) + 0.002f * static_cast<float>(y));
      }
    }
    for (const std::string algorithm : {"slic", "lsc"}) {
      const Tensor segments =
          lime_segments(MethodSpec::parse("lime:region_size=8,segmentation=" + algorithm), image);
      ASSERT_EQ(segments.shape(), (Shape{1, 32, 32}));
      std::map<int64_t, std::set<bool>> sides;
      for (int64_t e = 0; e < segments.size(); ++e)
        sides[static_cast<int64_t>(segments[e])].insert(e % 32 < 13);
      EXPECT_GE(sides.size(), 4u) << algorithm;
      for (const auto& [segment, side] : sides)
        EXPECT_EQ(side.size(), 1u) << algorithm << ": segment " << segment << " crosses the edge";
      EXPECT_EQ(sides.rbegin()->first + 1, static_cast<int64_t>(sides.size())) << "consecutive from 0";
    }
  }
}

// Without a mask every pixel of a superpixel, in every channel, gets its segment's coefficient.
TEST(Lime, SuperpixelExplanationsAreConstantOnEachSegment) {
  const Model model = Model::load(kShared + "cnn_dynbatch.onnx");
  const Tensor x = first_rows(read_npy(kShared + "cnn_inputs.npy"), 2);
  const std::string method = "lime:n=200,region_size=7";
  const Tensor e = explain(model, method, x, {1, 2});
  const Tensor segments = lime_segments(MethodSpec::parse(method), x);
  ASSERT_EQ(segments.shape(), (Shape{2, 28, 28}));
  for (int64_t i = 0; i < 2; ++i) {
    std::map<int64_t, float> value;
    for (int64_t p = 0; p < 28 * 28; ++p) {
      const auto [it, first] = value.try_emplace(static_cast<int64_t>(segments[i * 784 + p]), e[i * 784 + p]);
      if (!first) {
        EXPECT_EQ(e[i * 784 + p], it->second) << "sample " << i << " pixel " << p;
      }
    }
    EXPECT_GE(value.size(), 8u);
  }
  EXPECT_TRUE(lime_segments(MethodSpec::parse("lime:mask=m.npy"), x).empty());
}

TEST(PerturbationErrors, OneClearMessageEach) {
  const Model model = Model::load(kShared + "cnn_dynbatch.onnx");
  const Tensor x = first_rows(read_npy(kShared + "cnn_inputs.npy"), 2);
  const std::vector<int64_t> targets{0, 0};
  EXPECT_EQ(error_of([&] { explain(model, "occlusion:window=30", x, targets); }),
            "occlusion: window 1x30x30 is larger than the input's samples [1,28,28] on axis 2 (30 > 28)");
  EXPECT_EQ(error_of([&] { explain(model, "occlusion:window=6x6", x, targets); }),
            "occlusion: window=6x6 has 2 entries but the input's samples [1,28,28] have 3 axes (give one "
            "number, or one per axis)");
  EXPECT_EQ(
      error_of([&] { create_analyzer(MethodSpec::parse("occlusion:window=0")); }),
      "method 'occlusion': parameter window=0 must be a positive integer or one per axis, such as 1x6x6");
  const std::string mask = ::testing::TempDir() + "/small_mask_" + std::to_string(getpid()) + ".npy";
  write_npy(mask, Tensor(Shape{1, 14, 14}, 0.0f));
  EXPECT_EQ(error_of([&] { explain(model, "ablation:mask=" + mask, x, targets); }),
            "ablation: mask " + mask +
                " of shape [1,14,14] does not match the input's samples [1,28,28] (784 elements; or one "
                "mask per sample, 1568)");
  std::remove(mask.c_str());
  EXPECT_EQ(error_of([&] { create_analyzer(MethodSpec::parse("ablation")); }),
            "method 'ablation' needs mask=FILE.npy (one integer group per element)");
  const Model conv1d = Model::load(kData + "/models/conv1d.onnx");
  const Tensor signal = read_npy(kData + "/models/conv1d_input.npy");
  EXPECT_EQ(error_of([&] { explain(conv1d, "lime", signal, std::vector<int64_t>(signal.dim(0), 0)); }),
            "lime: without mask=FILE.npy the input is segmented into superpixels, which needs images [N, C, "
            "H, W]; the explained input is of shape " +
                to_string(signal.shape()) + " (give a mask with one integer group per element)");
  EXPECT_EQ(error_of([&] { create_analyzer(MethodSpec::parse("lime:segmentation=seeds")); }),
            "method 'lime': parameter segmentation=seeds must be one of lsc, mslic, slic, slico");
  EXPECT_EQ(error_of([&] { explain(model, "grad_cam:layer=/6/Reluu", x, targets); }),
            "grad_cam: unknown layer '/6/Reluu': no node or value of the model has that name (did you mean "
            "'/6/Relu'?)");
}

}  // namespace
}  // namespace sieve
