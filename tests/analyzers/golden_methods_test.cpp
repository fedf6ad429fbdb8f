// Golden tests of occlusion, DeepLIFT and Grad-CAM against the Captum references in tests/data/shared
// (float64 computations stored as float32, see tests/data/shared/README.md).

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <ostream>

#include "sieve/analyzer.hpp"
#include "sieve/io/npy.hpp"
#include "sieve/methods.hpp"

namespace sieve {
namespace {

const std::string kShared = std::string(SIEVE_TEST_DATA) + "/shared";

struct Case {
  std::string model, method, reference;
};

void PrintTo(const Case& c, std::ostream* os) {
  *os << c.model << " " << c.method;
}

// How far the reference's own float32 run is from its float64 one, relative to max|ref| (meta.json, or
// meta2.json for the later references).
double float32_spread(const std::string& model, const std::string& reference) {
  const std::string refs = kShared + "/refs/" + model + "/";
  const nlohmann::json meta = nlohmann::json::parse(std::ifstream(refs + "meta.json"));
  if (meta["methods"].contains(reference))
    return meta["methods"][reference]["f32_vs_f64"]["max_abs_rel_to_max"].get<double>();
  const nlohmann::json later = nlohmann::json::parse(std::ifstream(refs + "meta2.json"));
  return later.at(reference).at("f32_vs_f64_rel").get<double>();
}

// Per-input tolerance relative to max|ref|: 1e-4, or twice the reference's own float32 spread when that
// is larger. Every value compared is a float32 forward (occlusion: a difference of two target logits)
// or one reverse pass (DeepLIFT, Grad-CAM's gradient) through the model, whose dot products add up to
// at most the fan-ins of the layers (mlp: 784 + 256 + 128 = 1168 terms; cnn: 9 + 144 + 144 + 1568 + 128
// = 1993): ≤ 1993·u = 1.2e-4 of the magnitudes in the worst case, about √1993·u = 2.7e-6 for rounding
// errors of random sign, which is what the references' own float32 runs show (≤ 3.6e-6).
double tolerance(const Case& c) {
  return std::max(1e-4, 2.0 * float32_spread(c.model, c.reference));
}

class GoldenMethods : public ::testing::TestWithParam<Case> {};

TEST_P(GoldenMethods, MatchesReference) {
  const Case& c = GetParam();
  const std::string refs = kShared + "/refs/" + c.model + "/";
  const Model model = Model::load(kShared + "/models/" + c.model + "_dynbatch.onnx");
  const Tensor inputs = read_npy(kShared + "/models/" + c.model + "_inputs.npy");
  const Tensor reference = read_npy(refs + c.reference + ".npy");
  const Tensor target_file = read_npy(refs + "targets.npy");
  std::vector<int64_t> targets;
  for (float v : target_file.values()) targets.push_back(static_cast<int64_t>(v));
  const auto analyzer = create_analyzer(MethodSpec::parse(c.method));
  const ForwardPass pass(model, inputs, analyzer->trace_values(model));
  const Tensor e = analyzer->explain(pass, targets);
  ASSERT_EQ(e.shape(), reference.shape());
  const double tol = tolerance(c);
  const int64_t n = reference.dim(0), per = reference.size() / n;
  for (int64_t i = 0; i < n; ++i) {
    double max_ref = 0.0, max_diff = 0.0;
    for (int64_t j = 0; j < per; ++j) {
      max_ref = std::max(max_ref, std::abs(static_cast<double>(reference[i * per + j])));
      max_diff = std::max(max_diff, std::abs(static_cast<double>(e[i * per + j]) - reference[i * per + j]));
    }
    if (std::getenv("SIEVE_TEST_VERBOSE"))
      std::printf("%s %s input %lld: diff %.3g of max|ref| %.3g\n", c.model.c_str(), c.reference.c_str(),
                  static_cast<long long>(i), max_diff / max_ref, max_ref);
    EXPECT_LE(max_diff, tol * max_ref) << c.model << " " << c.method << " input " << i << ": max diff "
                                       << max_diff / max_ref << " of max|ref| against " << tol;
  }
}

std::vector<Case> cases() {
  std::vector<Case> v;
  for (const char* m : {"mlp", "cnn"}) v.push_back({m, "occlusion:window=4,stride=4", "occlusion"});
  v.push_back({"cnn", "occlusion:window=6,stride=2", "occlusion_sliding_6s2"});
  v.push_back({"cnn", "occlusion:window=1x6x6,stride=1x2x2,batch=7", "occlusion_sliding_6s2"});
  for (const char* m : {"mlp", "cnn"}) v.push_back({m, "deeplift", "deeplift_rescale"});
  v.push_back({"cnn", "grad_cam:upsample=0", "grad_cam"});
  return v;
}

INSTANTIATE_TEST_SUITE_P(Shared, GoldenMethods, ::testing::ValuesIn(cases()), [](const auto& info) {
  std::string name = info.param.model + "_" + info.param.method;
  for (char& ch : name) {
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  }
  return name;
});

}  // namespace
}  // namespace sieve
