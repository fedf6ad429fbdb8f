// pattern.net and pattern.attribution: the paper's linear toy (the signal, where the other methods
// show the filter or the input), the numpy references of the shared mlp, the cnn, and their errors.

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>

#include "sieve/analyzer.hpp"
#include "sieve/error.hpp"
#include "sieve/io/npy.hpp"
#include "sieve/io/stream.hpp"
#include "sieve/methods.hpp"
#include "sieve/patterns.hpp"
#include "support/test_files.hpp"

namespace fs = std::filesystem;

namespace sieve {
namespace {

const std::string kModels = std::string(SIEVE_TEST_DATA) + "/shared/models/";
const std::string kRefs = std::string(SIEVE_TEST_DATA) + "/shared/refs/mlp/";
const std::string kToy = std::string(SIEVE_TEST_DATA) + "/../../examples/linear_toy/";

PatternStatistics fit_files(const Model& model, const std::vector<std::string>& paths, int64_t batch) {
  InputStream data(paths, Preprocessing{}, model.input_shapes().at(0));
  return fit_pattern_statistics(model, data, batch);
}

// Writes the patterns of `type` and returns the file's path.
std::string write_patterns(const Model& model, const PatternStatistics& stats, PatternType type,
                           const std::string& name) {
  PatternFile file;
  file.fingerprint = model_fingerprint(model);
  file.type = type;
  file.statistics = stats;
  file.patterns = estimate_patterns(model, stats, type);
  const std::string path = temp(name + ".safetensors").string();
  write_pattern_file(path, file);
  return path;
}

Tensor explain(const Model& model, const Tensor& x, const std::string& method,
               const std::vector<int64_t>& targets, const std::string& patterns = "") {
  AnalyzerContext context;
  context.patterns_file = patterns;
  const auto analyzer = create_analyzer(MethodSpec::parse(method), context);
  const ForwardPass pass(model, x, analyzer->trace_values(model));
  return analyzer->explain(pass, targets);
}

std::vector<int64_t> as_indices(const Tensor& t) {
  std::vector<int64_t> v;
  for (float f : t.values()) v.push_back(static_cast<int64_t>(f));
  return v;
}

// The paper's linear toy (PN §2, METHODS.md §3.4): x = a_s·y + a_d·ε, w = (1, −1), wᵀx = y. PatternNet
// and PatternAttribution with the linear pattern a = a_s recover the signal (y, 0); the gradient is the
// filter (1, −1), DeconvNet and Guided Backprop are proportional to it, and LRP-z gives w ⊙ x =
// (y + ε, −ε): each of these differs from the signal by at least 0.15 on every sample (|ε| ≥ 0.19).
TEST(PatternAnalyzers, LinearToyRecoversTheSignal) {
  const Model model = Model::load(kToy + "model.onnx");
  const Tensor x = read_npy(kToy + "explain.npy"), y = read_npy(kToy + "explain_y.npy");
  ASSERT_EQ(x.shape(), (Shape{4, 2}));
  const std::string linear =
      write_patterns(model, fit_files(model, {kToy + "train.npy"}, 1000), PatternType::linear, "toy_linear");
  const std::vector<int64_t> targets(4, 0);
  // Through the context and through the method parameter.
  for (const auto& [method, patterns] :
       std::vector<std::pair<std::string, std::string>>{{"pattern.net", linear},
                                                        {"pattern.attribution", linear},
                                                        {"pattern.net:patterns=" + linear, ""},
                                                        {"pattern.attribution:patterns=" + linear, ""}}) {
    const Tensor e = explain(model, x, method, targets, patterns);
    ASSERT_EQ(e.shape(), x.shape()) << method;
    // e = a·wᵀx with a = a_s to about 1e-6 (pattern_fit_test.cpp) and wᵀx a 2-term float32 dot product
    // of values below 2 (≤ 2u·4 ≈ 5e-7): a few 1e-6 of |y| ≤ 1, below 1e-4.
    for (int64_t i = 0; i < 4; ++i) {
      EXPECT_NEAR(e[2 * i], y[i], 1e-4) << method << " sample " << i;
      EXPECT_NEAR(e[2 * i + 1], 0.0, 1e-4) << method << " sample " << i;
    }
  }
  const auto off_signal = [&](const Tensor& e, int64_t i) {
    return std::max(std::abs(e[2 * i] - y[i]), std::abs(e[2 * i + 1]));
  };
  const Tensor gradient = explain(model, x, "gradient", targets);
  for (int64_t i = 0; i < 4; ++i) {
    // The seed 1 times w = (1, −1): exact in float32.
    EXPECT_NEAR(gradient[2 * i], 1.0, 1e-6);
    EXPECT_NEAR(gradient[2 * i + 1], -1.0, 1e-6);
    EXPECT_GT(off_signal(gradient, i), 0.15) << "gradient sample " << i;
  }
  for (const char* method : {"deconvnet", "guided_backprop"}) {
    const Tensor e = explain(model, x, method, targets);
    for (int64_t i = 0; i < 4; ++i) {
      EXPECT_GT(std::abs(e[2 * i]), 0.1) << method << " sample " << i;
      // One positive factor times w = (1, −1): the two elements are one product each, equal up to u.
      EXPECT_NEAR(e[2 * i + 1], -e[2 * i], 1e-6 * std::abs(e[2 * i])) << method << " ∝ w, sample " << i;
      EXPECT_GT(off_signal(e, i), 0.15) << method << " sample " << i;
    }
  }
  const Tensor lrp = explain(model, x, "lrp.z", targets);
  for (int64_t i = 0; i < 4; ++i) {
    // R_j = w_j·x_j·z / (z + 1e-6·sign z): the stabilizer moves it by |x_j|·1e-6/|z| ≤ 3.7e-6 on these
    // samples (|z| ≥ 0.42, |x_j| ≤ 1.6), the float32 z = wᵀx by 2u·Σ|x_j| / |z| ≈ 1e-6 of |x_j|.
    EXPECT_NEAR(lrp[2 * i], x[2 * i], 1e-5) << "lrp.z sample " << i;
    EXPECT_NEAR(lrp[2 * i + 1], -x[2 * i + 1], 1e-5) << "lrp.z sample " << i;
    EXPECT_GT(off_signal(lrp, i), 0.15) << "lrp.z sample " << i;
  }
}

// Golden: PatternNet and PatternAttribution of the shared mlp with patterns fitted on
// fmnist_train2000.npy equal the numpy references per input to 1e-4 of the input's largest value. The
// patterns carry the forward pass's τ = 7e-5 (mlp, pattern_fit_test.cpp) and the float32 backward pass
// adds its dot products over the fan-outs, 394·u = 2.3e-5 (both of the magnitudes): 9.3e-5 ≤ 1e-4. The
// references' own float32 runs (meta.json "f32_vs_f64") land within 5.1e-7 of them.
TEST(PatternAnalyzers, MlpExplanationsEqualReference) {
  const Model model = Model::load(kModels + "mlp_dynbatch.onnx");
  const Tensor inputs = read_npy(kModels + "mlp_inputs.npy");
  const std::vector<int64_t> targets = as_indices(read_npy(kRefs + "targets.npy"));
  const PatternStatistics stats = fit_files(model, {kModels + "fmnist_train2000.npy"}, 500);
  EXPECT_EQ(stats.images, 2000);
  for (const auto& [type, name] :
       std::vector<std::pair<PatternType, std::string>>{{PatternType::relu, "relu"},
                                                        {PatternType::linear, "linear"},
                                                        {PatternType::linear_last, "relu_linear_last"}}) {
    const std::string file = write_patterns(model, stats, type, "mlp_" + name);
    for (const auto& [method, reference] :
         {std::pair{"pattern.net", "patternnet_"}, std::pair{"pattern.attribution", "patternattribution_"}}) {
      const Tensor ref = read_npy(kRefs + reference + name + ".npy");
      const Tensor e = explain(model, inputs, method, targets, file);
      ASSERT_EQ(e.shape(), ref.shape());
      const int64_t n = ref.dim(0), per = ref.size() / n;
      for (int64_t i = 0; i < n; ++i) {
        double scale = 0.0, diff = 0.0;
        for (int64_t k = 0; k < per; ++k) {
          scale = std::max(scale, static_cast<double>(std::abs(ref[i * per + k])));
          diff = std::max(diff, static_cast<double>(std::abs(e[i * per + k] - ref[i * per + k])));
        }
        EXPECT_GT(scale, 0.0);
        EXPECT_LE(diff, 1e-4 * scale) << method << " " << name << " input " << i;
      }
    }
  }
}

// The cnn (no reference): fitting runs, and both methods give a finite, non-zero explanation of
// every input, with the patterns of every type.
TEST(PatternAnalyzers, CnnExplanationsAreFinite) {
  const Model model = Model::load(kModels + "cnn_dynbatch.onnx");
  const Tensor inputs = read_npy(kModels + "cnn_inputs.npy");
  const Tensor train = read_npy(kModels + "fmnist_train2000.npy");
  const fs::path subset = temp("cnn_train.npy");
  write_npy(subset.string(),
            Tensor(Shape{128, 1, 28, 28},
                   std::span<const float>(train.data(), static_cast<size_t>(128 * 28 * 28))));
  const PatternStatistics stats = fit_files(model, {subset.string()}, 32);
  EXPECT_EQ(stats.images, 128);
  EXPECT_EQ(stats.layers().size(), 5u);
  const std::vector<int64_t> targets = TargetSelection().resolve(model.run({inputs})[0]).at(0);
  for (PatternType type : {PatternType::relu, PatternType::linear, PatternType::linear_last}) {
    const std::string file = write_patterns(model, stats, type, "cnn_" + to_string(type));
    for (const char* method : {"pattern.net", "pattern.attribution"}) {
      const Tensor e = explain(model, inputs, method, targets, file);
      ASSERT_EQ(e.shape(), inputs.shape());
      const int64_t per = e.size() / e.dim(0);
      for (int64_t i = 0; i < e.dim(0); ++i) {
        double magnitude = 0.0;
        bool finite = true;
        for (int64_t k = 0; k < per; ++k) {
          finite = finite && std::isfinite(e[i * per + k]);
          magnitude += std::abs(e[i * per + k]);
        }
        EXPECT_TRUE(finite) << method << " " << to_string(type) << " input " << i;
        EXPECT_GT(magnitude, 0.0) << method << " " << to_string(type) << " input " << i;
      }
    }
  }
}

TEST(PatternAnalyzers, ErrorsAreClear) {
  // No pattern file.
  for (const char* method : {"pattern.net", "pattern.attribution"}) {
    try {
      create_analyzer(MethodSpec::parse(method));
      ADD_FAILURE() << method << " without patterns was created";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("--patterns"), std::string::npos) << e.what();
    }
  }
  // A file that does not exist, and one for another model: refused when the analyzer meets the model.
  const Model mlp = Model::load(kModels + "mlp_dynbatch.onnx"),
              cnn = Model::load(kModels + "cnn_dynbatch.onnx");
  const Tensor x = read_npy(kModels + "mlp_inputs.npy");
  const std::string missing = temp("no_such.safetensors").string();
  try {
    explain(mlp, x, "pattern.net", std::vector<int64_t>(16, 0), missing);
    ADD_FAILURE() << "a missing pattern file was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(missing), std::string::npos) << e.what();
  }
  const Tensor train = read_npy(kModels + "fmnist_train2000.npy");
  PatternStatistics stats(cnn);
  stats.accumulate(cnn, Tensor(Shape{4, 1, 28, 28}, std::span<const float>(train.data(), 4 * 28 * 28)));
  const std::string cnn_file = write_patterns(cnn, stats, PatternType::relu, "cnn_small");
  AnalyzerContext context;
  context.patterns_file = cnn_file;
  const auto analyzer = create_analyzer(MethodSpec::parse("pattern.attribution"), context);
  {
    const ForwardPass pass(cnn, read_npy(kModels + "cnn_inputs.npy"));
    EXPECT_EQ(analyzer->explain(pass, std::vector<int64_t>(16, 1)).shape(), (Shape{16, 1, 28, 28}));
  }
  // The same analyzer, now with another model.
  const ForwardPass pass(mlp, x);
  try {
    analyzer->explain(pass, std::vector<int64_t>(16, 0));
    ADD_FAILURE() << "the cnn's patterns were used for the mlp";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find(model_fingerprint(cnn)), std::string::npos) << message;
    EXPECT_NE(message.find(model_fingerprint(mlp)), std::string::npos) << message;
  }
}

// Patterns held in memory (AnalyzerContext::patterns) explain exactly as the file they would be written
// to, and are checked against the model the same way.
TEST(PatternAnalyzers, PatternsInMemoryMatchTheirFile) {
  const Model cnn = Model::load(kModels + "cnn_dynbatch.onnx"),
              mlp = Model::load(kModels + "mlp_dynbatch.onnx");
  const Tensor train = read_npy(kModels + "fmnist_train2000.npy");
  auto file = std::make_shared<PatternFile>();
  file->fingerprint = model_fingerprint(cnn);
  file->statistics = PatternStatistics(cnn);
  file->statistics.accumulate(cnn,
                              Tensor(Shape{8, 1, 28, 28}, std::span<const float>(train.data(), 8 * 28 * 28)));
  file->patterns = estimate_patterns(cnn, file->statistics, PatternType::relu);
  const std::string path = temp("cnn_in_memory.safetensors").string();
  write_pattern_file(path, *file);
  const Tensor x = read_npy(kModels + "cnn_inputs.npy");
  for (const std::string method : {"pattern.net", "pattern.attribution"}) {
    AnalyzerContext in_memory;
    in_memory.patterns = file;
    const auto analyzer = create_analyzer(MethodSpec::parse(method), in_memory);
    analyzer->prepare(cnn);
    const ForwardPass pass(cnn, x);
    const Tensor from_memory = analyzer->explain(pass, std::vector<int64_t>(16, 3));
    const Tensor from_file = explain(cnn, x, method, std::vector<int64_t>(16, 3), path);
    ASSERT_EQ(from_memory.shape(), from_file.shape());
    for (int64_t i = 0; i < from_file.size(); ++i)
      ASSERT_EQ(from_memory[i], from_file[i]) << method << " " << i;
    try {
      analyzer->prepare(mlp);
      ADD_FAILURE() << "the cnn's patterns were prepared for the mlp";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(model_fingerprint(mlp)), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace sieve
