// The gradient family on exported models of recent architectures (tools/make_modern_models.py) against
// PyTorch float64 autograd on the same inputs: MobileNetV3 (HardSwish, squeeze-excitation gates, folded
// BatchNormalization) and the tiny Vision Transformer at opsets 13 (LayerNorm and GELU spelled out,
// fused by canonicalization) and 17.

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>

#include "sieve/analyzer.hpp"
#include "sieve/batch.hpp"
#include "sieve/io/npy.hpp"
#include "sieve/methods.hpp"

namespace sieve {
namespace {

const std::string kModels = std::string(SIEVE_TEST_DATA) + "/models/";

// Per input, max |sieve − torch| ≤ 1e-4 · max |torch|, the bound of every golden test (docs/testing.md):
// the float32 forward is off by a few τ (support/rounding.hpp; 6.9e-5 of the logits on mobilenet_v3,
// the largest of these models), and the reverse pass repeats its dot products transposed. Measured:
// at most 5.7e-7 (gradient), 5.8e-7 (input × gradient) and 1.7e-7 (integrated gradients) of the maximum.
TEST(ExportedGradients, EqualTorchAutograd) {
  for (const std::string name : {"mobilenet_v3", "vit_tiny", "vit_tiny_opset17"}) {
    const Model model = Model::load(kModels + name + ".onnx");
    const Tensor inputs = read_npy(kModels + name + "_input.npy");
    const Tensor targets = read_npy(kModels + name + "_targets.npy");
    std::vector<Tensor> samples;
    for (int64_t i = 0; i < inputs.dim(0); ++i) samples.push_back(batch_row(inputs, i));
    for (const std::string method : {"gradient", "input_x_gradient", "integrated_gradients"}) {
      SCOPED_TRACE(name + " " + method);
      const Tensor reference = read_npy(kModels + name + "_" + method + ".npy");
      const std::unique_ptr<Analyzer> analyzer = create_analyzer(MethodSpec::parse(method), {});
      const std::vector<Explanation> got =
          explain_samples(model, samples, {analyzer.get()}, TargetSelection(), 4);
      ASSERT_EQ(got.size(), samples.size());
      const int64_t per = reference.size() / reference.dim(0);
      for (size_t i = 0; i < got.size(); ++i) {
        EXPECT_EQ(got[i].target, static_cast<int64_t>(targets[static_cast<int64_t>(i)]));
        ASSERT_EQ(got[i].values.size(), per);
        double scale = 0.0, diff = 0.0;
        for (int64_t k = 0; k < per; ++k) {
          const double want = reference[static_cast<int64_t>(i) * per + k];
          scale = std::max(scale, std::abs(want));
          diff = std::max(diff, std::abs(got[i].values[k] - want));
        }
        EXPECT_LE(diff, 1e-4 * scale) << "input " << i << ": " << diff / scale << " of the maximum";
        char relative[32];
        std::snprintf(relative, sizeof relative, "%.2e", diff / scale);
        RecordProperty(name + "_" + method + "_" + std::to_string(i), relative);
      }
    }
  }
}

}  // namespace
}  // namespace sieve
