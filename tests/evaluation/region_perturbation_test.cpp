// Region perturbation against hand-computed tiles, orders, fills and AOPC/ABPC, the optimality of MoRF
// on a linear model, the random order's lack of bias, and one clear message per bad input.

#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include <cmath>
#include <functional>
#include <numeric>
#include <random>

#include "sieve/error.hpp"
#include "sieve/evaluation.hpp"
#include "sieve/methods.hpp"
#include "support/rounding.hpp"

namespace sieve {
namespace {

// f(x) = W · flatten(x) + b on inputs [N, 1, H, W] with a dynamic batch: logits [N, classes].
Model linear_model(int64_t h, int64_t w, const std::vector<float>& weights, const std::vector<float>& bias) {
  onnx::ModelProto m;
  m.set_ir_version(8);
  m.add_opset_import()->set_version(13);
  auto* g = m.mutable_graph();
  g->set_name("linear");
  const int64_t classes = static_cast<int64_t>(bias.size());
  auto declare = [](onnx::ValueInfoProto* v, const std::string& name, std::vector<int64_t> dims) {
    v->set_name(name);
    auto* t = v->mutable_type()->mutable_tensor_type();
    t->set_elem_type(onnx::TensorProto::FLOAT);
    t->mutable_shape()->add_dim()->set_dim_param("N");
    for (int64_t d : dims) t->mutable_shape()->add_dim()->set_dim_value(d);
  };
  declare(g->add_input(), "x", {1, h, w});
  declare(g->add_output(), "y", {classes});
  auto initializer = [&](const std::string& name, std::vector<int64_t> dims,
                         const std::vector<float>& values) {
    auto* t = g->add_initializer();
    t->set_name(name);
    t->set_data_type(onnx::TensorProto::FLOAT);
    for (int64_t d : dims) t->add_dims(d);
    for (float v : values) t->add_float_data(v);
  };
  initializer("W", {classes, h * w}, weights);
  initializer("b", {classes}, bias);
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

// [1, 1, 3, 4] with values 0..11 row-major: tiles of 2 are {0,1,4,5}, {2,3,6,7}, {8,9}, {10,11}.
Tensor ramp() {
  Tensor t(Shape{1, 1, 3, 4});
  for (int64_t i = 0; i < 12; ++i) t[i] = static_cast<float>(i);
  return t;
}

TEST(RegionPerturbation, TilesAreAnchoredAtTheOriginWithTruncatedEdges) {
  const TileGrid g = tile_grid({1, 2, 5, 7}, 3);
  EXPECT_EQ(g.rows, 2);
  EXPECT_EQ(g.columns, 3);
  EXPECT_EQ(g.count(), 6);
  EXPECT_EQ(g.row_begin(5), 3);
  EXPECT_EQ(g.row_end(5), 5);  // truncated: rows 3, 4
  EXPECT_EQ(g.column_begin(5), 6);
  EXPECT_EQ(g.column_end(5), 7);  // truncated: column 6
  const TileGrid line = tile_grid({1, 3, 10}, 4);
  EXPECT_EQ(line.count(), 3);
  EXPECT_EQ(line.column_end(2), 10);
}

TEST(RegionPerturbation, TileScoresSumPixelsAndChannels) {
  const TileGrid g = tile_grid({1, 1, 3, 4}, 2);
  EXPECT_EQ(tile_scores(ramp(), g), (std::vector<double>{10, 18, 17, 21}));
  // Two channels: the second (all 1) adds each tile's pixel count.
  Tensor two(Shape{1, 2, 3, 4}, 1.0f);
  for (int64_t i = 0; i < 12; ++i) two[i] = static_cast<float>(i);
  EXPECT_EQ(tile_scores(two, tile_grid({1, 2, 3, 4}, 2)), (std::vector<double>{14, 22, 19, 23}));
}

TEST(RegionPerturbation, OrdersRankScoresAndBreakTiesByTileIndex) {
  EXPECT_EQ(tile_order({10, 18, 17, 21}, PerturbationOrder::morf), (std::vector<int64_t>{3, 1, 2, 0}));
  EXPECT_EQ(tile_order({10, 18, 17, 21}, PerturbationOrder::lerf), (std::vector<int64_t>{0, 2, 1, 3}));
  EXPECT_EQ(tile_order({1, 2, 2, 0}, PerturbationOrder::morf), (std::vector<int64_t>{1, 2, 0, 3}));
  EXPECT_EQ(tile_order({1, 2, 2, 0}, PerturbationOrder::lerf), (std::vector<int64_t>{3, 0, 1, 2}));
  std::vector<int64_t> r = random_tile_order(20, 7);
  EXPECT_EQ(r, random_tile_order(20, 7));
  EXPECT_NE(r, random_tile_order(20, 8));
  std::sort(r.begin(), r.end());
  std::vector<int64_t> all(20);
  std::iota(all.begin(), all.end(), 0);
  EXPECT_EQ(r, all);
}

TEST(RegionPerturbation, FillsReplaceTilesAsSpecified) {
  const Tensor x = ramp();
  const TileGrid g = tile_grid(x.shape(), 2);
  RegionPerturbationOptions o;
  const std::vector<float> low{0}, high{11};
  // patch_mean: each tile by its own mean (exact in float: halves and quarters of small integers).
  const Tensor mean = fill_image(x, g, o, low, high, 0);
  EXPECT_EQ(std::vector<float>(mean.values().begin(), mean.values().end()),
            (std::vector<float>{2.5, 2.5, 4.5, 4.5, 2.5, 2.5, 4.5, 4.5, 8.5, 8.5, 10.5, 10.5}));
  const Tensor p = perturbed(x, mean, g, {3, 0}, 2);
  EXPECT_EQ(std::vector<float>(p.values().begin(), p.values().end()),
            (std::vector<float>{2.5, 2.5, 2, 3, 2.5, 2.5, 6, 7, 8, 9, 10.5, 10.5}));
  o.fill = PerturbationFill::zero;
  const Tensor zero = fill_image(x, g, o, low, high, 0);
  for (float v : zero.values()) EXPECT_EQ(v, 0.0f);
  o.fill = PerturbationFill::baseline;
  o.baseline = Tensor({1}, 0.5f);
  const Tensor half = fill_image(x, g, o, low, high, 0);
  for (float v : half.values()) EXPECT_EQ(v, 0.5f);
  o.baseline = ramp().reshaped({12});
  const Tensor b = fill_image(x, g, o, low, high, 0);
  for (int64_t i = 0; i < 12; ++i) EXPECT_EQ(b[i], x[i]);
  o.fill = PerturbationFill::uniform;
  const Tensor u = fill_image(x, g, o, {-1}, {2}, 5);
  for (float v : u.values()) {
    EXPECT_GE(v, -1.0f);
    EXPECT_LE(v, 2.0f);
  }
  EXPECT_EQ(fill_image(x, g, o, {-1}, {2}, 5)[7], u[7]);
  EXPECT_NE(fill_image(x, g, o, {-1}, {2}, 6)[7], u[7]);
}

TEST(RegionPerturbation, BlurIsAGaussianRenormalisedAtTheBorders) {
  RegionPerturbationOptions o;
  o.fill = PerturbationFill::blur;
  o.sigma = 1.0;
  Tensor impulse(Shape{1, 5});
  impulse[2] = 1.0f;
  const Tensor b = fill_image(impulse, tile_grid(impulse.shape(), 1), o, {0}, {1}, 0);
  // Radius 3σ = 3 reaches past both ends of 5 elements: at x the weights of the elements in range.
  auto weight = [](int k) { return std::exp(-0.5 * k * k); };
  for (int x = 0; x < 5; ++x) {
    double total = 0.0;
    for (int k = -3; k <= 3; ++k) total += (x + k >= 0 && x + k < 5) ? weight(k) : 0.0;
    // One float32 rounding of a value below 1.
    EXPECT_NEAR(b[x], weight(2 - x) / total, 1e-7) << x;
  }
  const Tensor constant(Shape{1, 1, 4, 6}, 3.0f);
  o.sigma = 1.5;
  const Tensor blurred = fill_image(constant, tile_grid(constant.shape(), 2), o, {0}, {1}, 0);
  // A renormalised average of equal values in double: one float32 rounding of 3.
  for (float v : blurred.values()) EXPECT_NEAR(v, 3.0f, 3.0 * 0x1p-24);
}

TEST(RegionPerturbation, AopcIsTheMeanDropIncludingStepZero) {
  EXPECT_DOUBLE_EQ(aopc({1.0, 0.5, 0.25}), (0.0 + 0.5 + 0.75) / 3.0);
}

// Weights and input of a linear model on 8×8 inputs: tiles of 2 (16 tiles), class 0 tracked.
struct LinearCase {
  std::vector<float> weights, bias;
  Tensor x;
};

LinearCase linear_case(uint64_t seed) {
  LinearCase c;
  std::mt19937_64 engine(seed);
  std::uniform_real_distribution<float> d(-1.0f, 1.0f);
  for (int i = 0; i < 2 * 64; ++i) c.weights.push_back(d(engine));
  c.bias = {0.25f, -0.5f};
  c.x = Tensor(Shape{1, 1, 8, 8});
  for (int64_t i = 0; i < 64; ++i) c.x[i] = d(engine);
  return c;
}

TEST(RegionPerturbation, MorfOfWeightTimesInputIsOptimalOnALinearModel) {
  const LinearCase c = linear_case(3);
  const Model model = linear_model(8, 8, c.weights, c.bias);
  Tensor relevance(c.x.shape());
  for (int64_t i = 0; i < 64; ++i) relevance[i] = c.weights[static_cast<size_t>(i)] * c.x[i];
  RegionPerturbationOptions o;
  o.size = 2;
  o.steps = 16;
  o.fill = PerturbationFill::zero;
  o.measure = PerturbationMeasure::logit;
  const RegionPerturbationResult r = region_perturbation(model, {c.x}, {{relevance}}, o, {0});
  const std::vector<double>& morf = r.methods.at(0).orders.at(0).curves.at(0);
  ASSERT_EQ(morf.size(), 17u);
  // Each logit is a dot product of 64 terms: off by at most 64·u·Σ|w·x| (+|b|); two logits compared.
  double magnitude = std::abs(c.bias[0]);
  for (int64_t i = 0; i < 64; ++i) magnitude += std::abs(relevance[i]);
  const double tolerance = 2 * 65 * kFloat32UnitRoundoff * magnitude;
  const TileGrid g = tile_grid(c.x.shape(), 2);
  const Tensor zero(c.x.shape());
  for (uint64_t seed = 0; seed < 100; ++seed) {
    const std::vector<int64_t> order = random_tile_order(g.count(), 1000 + seed);
    for (int64_t s = 0; s <= 16; ++s) {
      const double v = model.run({perturbed(c.x, zero, g, order, s)})[0][0];
      EXPECT_LE(morf[static_cast<size_t>(s)], v + tolerance) << "seed " << seed << " step " << s;
    }
  }
  // The drop after s steps is the sum of the s largest tile scores.
  std::vector<double> scores = tile_scores(relevance, g);
  std::sort(scores.rbegin(), scores.rend());
  double dropped = 0.0;
  for (size_t s = 1; s <= 16; ++s) {
    dropped += scores[s - 1];
    EXPECT_NEAR(morf[s], morf[0] - dropped, tolerance) << s;
  }
}

TEST(RegionPerturbation, RandomOrderIsUnbiasedWhenEveryTileMattersEqually) {
  // x = 1 everywhere, w = ±1/4 per tile of 2×2 (checkerboard of tiles): every tile moves the logit by
  // exactly ±1, half up and half down, so the expected drop of a uniform random order is 0 at every step.
  std::vector<float> weights(2 * 64, 0.0f);
  for (int64_t y = 0; y < 8; ++y) {
    for (int64_t x = 0; x < 8; ++x)
      weights[static_cast<size_t>(y * 8 + x)] = ((y / 2 + x / 2) % 2 ? 0.25f : -0.25f);
  }
  const Model model = linear_model(8, 8, weights, {0.0f, 0.0f});
  const Tensor x(Shape{1, 1, 8, 8}, 1.0f);
  std::vector<Tensor> samples(64, x), relevance(64, x);
  RegionPerturbationOptions o;
  o.size = 2;
  o.steps = 16;
  o.fill = PerturbationFill::zero;
  o.measure = PerturbationMeasure::logit;
  std::vector<double> means;
  for (uint64_t seed = 0; seed < 8; ++seed) {
    o.seed = seed;
    const RegionPerturbationResult r =
        region_perturbation(model, samples, {relevance}, o, std::vector<int64_t>(64, 0));
    for (double a : r.random.aopc) means.push_back(a);
  }
  const double n = static_cast<double>(means.size());
  const double mean = std::accumulate(means.begin(), means.end(), 0.0) / n;
  double var = 0.0;
  for (double a : means) var += (a - mean) * (a - mean) / (n - 1);
  // 99.9 % interval of the mean (|z| < 3.3); the logits here are sums of ±0.25 and exact in float.
  EXPECT_LT(std::abs(mean), 3.3 * std::sqrt(var / n)) << "mean AOPC " << mean << " over " << n << " orders";
  EXPECT_GT(var, 0.0);
}

TEST(RegionPerturbation, AbpcIsTheAreaBetweenLerfAndMorf) {
  const LinearCase c = linear_case(5);
  const Model model = linear_model(8, 8, c.weights, c.bias);
  Tensor relevance(c.x.shape());
  for (int64_t i = 0; i < 64; ++i) relevance[i] = c.weights[static_cast<size_t>(i)] * c.x[i];
  RegionPerturbationOptions o;
  o.size = 3;  // 3×3 tiles on 8×8: edge tiles of 3×2, 2×3 and 2×2
  o.steps = 9;
  o.orders = {PerturbationOrder::morf, PerturbationOrder::lerf};
  const RegionPerturbationResult r = region_perturbation(model, {c.x, c.x}, {{relevance, relevance}}, o);
  const MethodPerturbation& m = r.methods.at(0);
  ASSERT_TRUE(m.abpc_mean.has_value());
  const std::vector<double>& morf = m.orders[0].curves[0];
  const std::vector<double>& lerf = m.orders[1].curves[0];
  double area = 0.0;
  for (size_t s = 0; s < morf.size(); ++s) area += (lerf[s] - morf[s]) / static_cast<double>(morf.size());
  EXPECT_NEAR(m.abpc[0], area, 1e-12);
  // The two copies sit in different rows of a batch, which oneDNN may round differently: means of both.
  EXPECT_NEAR(*m.abpc_mean, (m.abpc[0] + m.abpc[1]) / 2, 1e-12);
  EXPECT_NEAR(m.orders[0].aopc[0], aopc(morf), 1e-12);
  EXPECT_NEAR(m.orders[0].aopc_mean, (aopc(morf) + aopc(m.orders[0].curves[1])) / 2, 1e-12);
  EXPECT_GT(area, 0.0);
  for (size_t s = 0; s < morf.size(); ++s)
    EXPECT_NEAR(m.orders[0].mean_curve[s], (morf[s] + m.orders[0].curves[1][s]) / 2, 1e-12);
}

TEST(RegionPerturbation, RecomputeOnALinearModelFollowsTheFixedOrder) {
  // With a zero fill, w ⊙ x of the perturbed input keeps the scores of the tiles still in place, so
  // explaining again after each step removes the same tiles as the fixed order.
  const LinearCase c = linear_case(9);
  const Model model = linear_model(8, 8, c.weights, c.bias);
  const std::unique_ptr<Analyzer> gi = create_analyzer(MethodSpec::parse("input_x_gradient"));
  gi->prepare(model);
  RegionPerturbationOptions o;
  o.size = 2;
  o.steps = 16;
  o.fill = PerturbationFill::zero;
  o.measure = PerturbationMeasure::logit;
  o.orders = {PerturbationOrder::morf, PerturbationOrder::lerf};
  const RegionPerturbationResult fixed = region_perturbation(model, {c.x}, {gi.get()}, o, {0});
  o.recompute = true;
  const RegionPerturbationResult again = region_perturbation(model, {c.x}, {gi.get()}, o, {0});
  double magnitude = std::abs(c.bias[0]);
  for (int64_t i = 0; i < 64; ++i) magnitude += std::abs(c.weights[static_cast<size_t>(i)] * c.x[i]);
  const double tolerance = 2 * 65 * kFloat32UnitRoundoff * magnitude;  // two dot products of 64 terms
  for (size_t k = 0; k < 2; ++k) {
    for (size_t s = 0; s <= 16; ++s)
      EXPECT_NEAR(again.methods[0].orders[k].curves[0][s], fixed.methods[0].orders[k].curves[0][s],
                  tolerance);
  }
}

TEST(Completeness, WeightTimesInputAgainstTheLogitAndAgainstABaseline) {
  const LinearCase c = linear_case(4);
  const Model model = linear_model(8, 8, c.weights, {0.0f, 0.0f});
  Tensor relevance(c.x.shape()), from_baseline(c.x.shape());
  double magnitude = 0.0;
  for (int64_t i = 0; i < 64; ++i) {
    relevance[i] = c.weights[static_cast<size_t>(i)] * c.x[i];
    from_baseline[i] = c.weights[static_cast<size_t>(i)] * (c.x[i] - 0.5f);
    magnitude += std::abs(relevance[i]) + std::abs(c.weights[static_cast<size_t>(i)] * 0.5);
  }
  // Without a bias Σ w⊙x is the logit; the model's and the test's sums of 64 terms each round by at
  // most 64·u·Σ|w·x| (twice that with the baseline's second logit), and each product once.
  const double tolerance = 4 * 65 * kFloat32UnitRoundoff * magnitude;
  const Completeness plain = completeness(model, {c.x}, {relevance}, {0});
  EXPECT_NEAR(plain.relevance_sum[0], plain.reference[0], tolerance);
  EXPECT_NEAR(plain.relative_error[0] * std::abs(plain.reference[0]), 0.0, tolerance);
  const Completeness shifted = completeness(model, {c.x}, {from_baseline}, {0}, Tensor({1}, 0.5f));
  EXPECT_NEAR(shifted.relevance_sum[0], shifted.reference[0], tolerance);
  EXPECT_GT(std::abs(shifted.reference[0] - plain.reference[0]), 100 * tolerance);  // the baseline counts
}

TEST(Randomization, ComparesWithTheGradientOfTheRandomisedLayer) {
  // One dense layer: its gradient is the target's weight row, before and after randomisation, so the
  // metric must equal Spearman and SSIM of the two weight rows computed here.
  const LinearCase c = linear_case(6);
  const Model model = linear_model(8, 8, c.weights, c.bias);
  Model copy = linear_model(8, 8, c.weights, c.bias);
  const std::unique_ptr<Analyzer> gradient = create_analyzer(MethodSpec::parse("gradient"));
  gradient->prepare(model);
  const std::vector<LayerRandomization> r = randomization(
      model, *gradient, copy, [] { return create_analyzer(MethodSpec::parse("gradient")); }, {c.x}, {1}, 11);
  ASSERT_EQ(r.size(), 1u);
  const Node& gemm = copy.graph().nodes().back();
  const Tensor& random = copy.graph().value(gemm.inputs[1]).constant;
  Tensor before(c.x.shape()), after(c.x.shape()), before_abs(c.x.shape()), after_abs(c.x.shape());
  for (int64_t i = 0; i < 64; ++i) {
    before[i] = c.weights[static_cast<size_t>(64 + i)];
    after[i] = random[64 + i];
    before_abs[i] = std::abs(before[i]);
    after_abs[i] = std::abs(after[i]);
  }
  EXPECT_NE(before[0], after[0]);
  // The gradient of a single Gemm is its weight row exactly (a product with a one-hot seed).
  EXPECT_DOUBLE_EQ(r[0].spearman[0], spearman(before.values(), after.values()));
  EXPECT_DOUBLE_EQ(r[0].spearman_abs[0], spearman(before_abs.values(), after_abs.values()));
  EXPECT_DOUBLE_EQ(r[0].ssim[0], ssim(before_abs, after_abs));
  // The model itself keeps its weights.
  EXPECT_EQ(model.graph().value(model.graph().nodes().back().inputs[1]).constant[64], c.weights[64]);
}

TEST(Continuity, RatiosOfALinearModelAgainstTheirFormula) {
  // Gradient of a linear model: w whatever the input, ratio 0. Gradient × input: ‖w ⊙ (x − x′)‖₁ / ‖x − x′‖₂.
  const LinearCase c = linear_case(8);
  const Model model = linear_model(8, 8, c.weights, c.bias);
  ContinuityOptions o;
  o.max_shift = 3;
  const std::unique_ptr<Analyzer> gradient = create_analyzer(MethodSpec::parse("gradient"));
  const std::unique_ptr<Analyzer> gi = create_analyzer(MethodSpec::parse("input_x_gradient"));
  gradient->prepare(model);
  gi->prepare(model);
  const Continuity flat = continuity(model, *gradient, {c.x}, {0}, o);
  EXPECT_EQ(flat.max, 0.0);
  const Continuity moving = continuity(model, *gi, {c.x}, {0}, o);
  ASSERT_EQ(moving.ratios.at(0).size(), 3u);
  for (int64_t t = 1; t <= 3; ++t) {
    double r = 0.0, x = 0.0, magnitude = 0.0;
    for (int64_t row = 0; row < 8; ++row) {
      for (int64_t col = 0; col < 8; ++col) {
        const int64_t i = row * 8 + col;
        const double w = c.weights[static_cast<size_t>(i)],
                     moved = c.x[row * 8 + std::max<int64_t>(0, col - t)];
        const double d = static_cast<double>(c.x[i]) - moved;
        r += std::abs(w * d);
        x += d * d;
        magnitude += std::abs(w * c.x[i]) + std::abs(w * moved);
      }
    }
    // Each explanation entry is a float32 product w·x, rounded once: the ‖·‖₁ of the difference is off by
    // at most u·Σ(|w·x| + |w·x′|).
    EXPECT_NEAR(moving.ratios[0][static_cast<size_t>(t - 1)], r / std::sqrt(x),
                kFloat32UnitRoundoff * magnitude / std::sqrt(x) + 1e-12)
        << t;
  }
  EXPECT_THROW(continuity(model, *gi, {c.x}, {0}, ContinuityOptions{8, 0.0, 0, 64}), Error);
}

TEST(RegionPerturbation, BadInputGetsOneClearMessage) {
  const LinearCase c = linear_case(1);
  const Model model = linear_model(8, 8, c.weights, c.bias);
  RegionPerturbationOptions o;
  auto message = [&](const std::function<void()>& f) {
    try {
      f();
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  o.size = 2;
  o.steps = 4;
  EXPECT_NE(message([&] {
              region_perturbation(model, {c.x}, {{Tensor(Shape{1, 1, 4, 4})}}, o);
            }).find("explanation 0 has shape [1,1,4,4], but its input has shape [1,1,8,8]"),
            std::string::npos);
  o.size = 9;
  EXPECT_NE(message([&] {
              region_perturbation(model, {c.x}, {{c.x}}, o);
            }).find("tile size 9 is larger than the input (8×8)"),
            std::string::npos);
  o.size = 4;
  o.steps = 5;
  EXPECT_NE(message([&] {
              region_perturbation(model, {c.x}, {{c.x}}, o);
            }).find("steps=5 is more than the 4 tiles of size 4"),
            std::string::npos);
  EXPECT_NE(message([&] {
              region_perturbation_options(MethodSpec::parse("region_perturbation:tiles=3"));
            }).find("metric 'region_perturbation' has no parameter 'tiles'"),
            std::string::npos);
  EXPECT_NE(message([&] {
              region_perturbation_options(MethodSpec::parse("region_perturbation:order=best"));
            }).find("order=best must be morf, lerf or morf+lerf"),
            std::string::npos);
  EXPECT_NE(message([&] {
              region_perturbation_options(MethodSpec::parse("region_perturbation:fill=noise"));
            }).find("fill=noise must be one of"),
            std::string::npos);
  EXPECT_NE(message([&] {
              region_perturbation_options(MethodSpec::parse("region_perturbation:sigma=2"));
            }).find("sigma goes with fill=blur"),
            std::string::npos);
  const RegionPerturbationOptions parsed = region_perturbation_options(
      MethodSpec::parse("region_perturbation:size=4,order=lerf+morf,baseline=0.5"));
  EXPECT_EQ(parsed.size, 4);
  EXPECT_EQ(parsed.orders,
            (std::vector<PerturbationOrder>{PerturbationOrder::lerf, PerturbationOrder::morf}));
  EXPECT_EQ(parsed.fill, PerturbationFill::baseline);
}

}  // namespace
}  // namespace sieve
