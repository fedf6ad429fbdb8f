// Golden tests of the gradient family against the reference explanations in tests/data/shared
// (Captum / torch.autograd in float64, see tests/data/shared/README.md).

#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <ostream>

#include "sieve/analyzer.hpp"
#include "sieve/io/npy.hpp"
#include "sieve/methods.hpp"
#include "support/rounding.hpp"

namespace sieve {
namespace {

const std::string kShared = std::string(SIEVE_TEST_DATA) + "/shared";

struct Case {
  std::string model, method, reference;
  int64_t path_steps = 0;  // Integrated Gradients: the path points, where kinks get an allowance
};

// Names the case in test listings (GoogleTest would print its bytes).
void PrintTo(const Case& c, std::ostream* os) {
  *os << c.model << " " << c.method;
}

// Per-input tolerance relative to max|ref|: 1e-4, or twice the difference the reference's own float32
// run shows (meta.json), when that is larger: a float32 evaluation near a ReLU / max-pool kink can flip a
// gate that the float64 reference does not (cnn IG input 8: 1.9e-4 in the reference's own float32 run).
// 1e-4 is above the float32 rounding of a reverse pass with fixed gates: its dot products run over the
// fan-outs, 394 terms in all for the mlp and 714 for the cnn, so ≤ 714·u = 4.3e-5 of the magnitudes, plus
// u for the reference's own float32 storage.
double reference_tolerance(const std::string& model, const std::string& reference) {
  std::ifstream in(kShared + "/refs/" + model + "/meta.json");
  const nlohmann::json meta = nlohmann::json::parse(in);
  const double hint = meta["methods"][reference]["f32_vs_f64"]["max_abs_rel_to_max"].get<double>();
  return std::max(1e-4, 2.0 * hint);
}

// Gradients of the targets at the rows of `points`, one reverse pass.
Tensor gradients_at(const Model& model, const Tensor& points, const std::vector<int64_t>& targets) {
  static const auto gradient = create_analyzer(MethodSpec::parse("gradient"));
  return gradient->explain(ForwardPass(model, points), targets);
}

// Integrated Gradients averages gradients at α_k·x, α_k = (k + ½)/m. The gradient is piecewise constant
// along the path and jumps where a ReLU pre-activation or a max-pool's two largest candidates cross.
// Near such a kink a float32 evaluation and the float64 reference may land on different sides: the
// kink's position in α is only known up to the rounding of the values that cross: each of the two
// evaluations is off by up to τ (support/rounding.hpp) of their magnitude, and along the path they move
// at a rate of at least about half that magnitude. So where a kink lies within δ = 4τ of a path point
// (τ = 1.2e-4 for the cnn, 7e-5 for the mlp), sieve may legitimately be off by that
// point's jump |x ⊙ (∇f((α_k + δ)x) − ∇f((α_k − δ)x))| / m; everywhere else the jump is zero up to
// rounding and the allowance vanishes. Returns the allowance per element, summed over the path.
Tensor kink_allowance(const Model& model, const Tensor& inputs, const std::vector<int64_t>& targets,
                      int64_t steps) {
  const double delta = 4.0 * forward_rounding_bound(model);
  const int64_t n = inputs.dim(0), per = inputs.size() / n;
  Shape shape = inputs.shape();
  shape[0] = n * steps;
  std::array<Tensor, 2> sides;
  std::vector<int64_t> path_targets;
  for (int64_t i = 0; i < n; ++i)
    path_targets.insert(path_targets.end(), static_cast<size_t>(steps), targets[static_cast<size_t>(i)]);
  for (int side = 0; side < 2; ++side) {
    Tensor points = Tensor::uninitialized(shape);
    for (int64_t i = 0; i < n; ++i) {
      for (int64_t k = 0; k < steps; ++k) {
        const double alpha =
            (static_cast<double>(k) + 0.5) / static_cast<double>(steps) + (side == 0 ? -delta : delta);
        for (int64_t j = 0; j < per; ++j)
          points[(i * steps + k) * per + j] = static_cast<float>(alpha * inputs[i * per + j]);
      }
    }
    sides[static_cast<size_t>(side)] = gradients_at(model, points, path_targets);
  }
  Tensor allowance(inputs.shape(), 0.0f);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t k = 0; k < steps; ++k) {
      for (int64_t j = 0; j < per; ++j) {
        const int64_t row = (i * steps + k) * per + j;
        allowance[i * per + j] +=
            std::abs(inputs[i * per + j] * (sides[1][row] - sides[0][row])) / static_cast<float>(steps);
      }
    }
  }
  return allowance;
}

class GoldenGradientFamily : public ::testing::TestWithParam<Case> {};

TEST_P(GoldenGradientFamily, MatchesReference) {
  const Case& c = GetParam();
  const std::string refs = kShared + "/refs/" + c.model + "/";
  const Model model = Model::load(kShared + "/models/" + c.model + "_dynbatch.onnx");
  const Tensor inputs = read_npy(kShared + "/models/" + c.model + "_inputs.npy");
  const Tensor targets = read_npy(refs + "targets.npy");
  const Tensor reference = read_npy(refs + c.reference + ".npy");
  std::string method = c.method;
  if (method == "smoothgrad") method += ":noise=" + refs + "smoothgrad_noise.npy";
  const auto analyzer = create_analyzer(MethodSpec::parse(method));

  const ForwardPass pass(model, inputs);
  std::vector<int64_t> t;
  for (float v : targets.values()) t.push_back(static_cast<int64_t>(v));
  const Tensor e = analyzer->explain(pass, t);
  ASSERT_EQ(e.shape(), inputs.shape());
  const double tol = reference_tolerance(c.model, c.reference);
  const Tensor allowance =
      c.path_steps > 0 ? kink_allowance(model, inputs, t, c.path_steps) : Tensor(inputs.shape(), 0.0f);
  const int64_t n = inputs.dim(0), per = inputs.size() / n;
  for (int64_t i = 0; i < n; ++i) {
    double max_ref = 0.0, max_excess = -1.0, max_diff = 0.0, max_allowance = 0.0;
    for (int64_t j = 0; j < per; ++j)
      max_ref = std::max(max_ref, std::abs(static_cast<double>(reference[i * per + j])));
    for (int64_t j = 0; j < per; ++j) {
      const double diff = std::abs(static_cast<double>(e[i * per + j]) - reference[i * per + j]);
      max_diff = std::max(max_diff, diff);
      max_allowance = std::max(max_allowance, static_cast<double>(allowance[i * per + j]));
      max_excess = std::max(max_excess, diff - tol * max_ref - allowance[i * per + j]);
    }
    if (std::getenv("SIEVE_TEST_VERBOSE"))
      std::printf("%s input %lld: diff %.3g, allowance %.3g\n", c.reference.c_str(),
                  static_cast<long long>(i), max_diff / max_ref, max_allowance / max_ref);
    EXPECT_LE(max_excess, 0.0) << c.model << " " << c.method << " input " << i << ": max diff "
                               << max_diff / max_ref << " of max|ref| against " << tol
                               << " plus a kink allowance of up to " << max_allowance / max_ref;
  }
}

std::vector<Case> cases() {
  std::vector<Case> v;
  for (const char* m : {"mlp", "cnn"}) {
    v.push_back({m, "gradient", "gradient"});
    v.push_back({m, "input_x_gradient", "input_x_gradient"});
    v.push_back({m, "integrated_gradients:steps=32", "integrated_gradients_riemann_middle", 32});
    v.push_back({m, "smoothgrad", "smoothgrad"});
    v.push_back({m, "deconvnet", "deconvnet"});
    v.push_back({m, "guided_backprop", "guided_backprop"});
  }
  return v;
}

INSTANTIATE_TEST_SUITE_P(Shared, GoldenGradientFamily, ::testing::ValuesIn(cases()), [](const auto& info) {
  std::string name = info.param.model + "_" + info.param.reference;
  for (char& ch : name) {
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  }
  return name;
});

}  // namespace
}  // namespace sieve
