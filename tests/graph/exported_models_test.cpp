// Models exported by torch.onnx.export (tests/data/models, made by tools/make_test_models.py): sieve's
// logits equal PyTorch's (float64) to 1e-4 relative, and every canonicalization leaves the output unchanged.

#include <gtest/gtest.h>

#include <cmath>

#include "sieve/io/npy.hpp"
#include "sieve/model.hpp"
#include "sieve/predict.hpp"

namespace sieve {
namespace {

const std::string kModels = std::string(SIEVE_TEST_DATA) + "/models/";

std::vector<Tensor> split(const Tensor& batch) {
  std::vector<Tensor> samples;
  const int64_t n = batch.dim(0), per = batch.size() / n;
  Shape one = batch.shape();
  one[0] = 1;
  for (int64_t i = 0; i < n; ++i)
    samples.emplace_back(one, std::span<const float>(batch.data() + i * per, static_cast<size_t>(per)));
  return samples;
}

// Per sample: max |actual − expected| ≤ tol · max |expected|. The reference is float64 and sieve's float32
// forward pass is within τ = u·Σ fan-in of the magnitudes (support/rounding.hpp): τ ≤ 8.2e-5 for these
// models (vgg_small; 6.9e-5 mobilenet_v3, 4.0e-5 unet_tiny, 2.5e-5 resnet_small, 2.2e-5
// cnn_constants_opset9, ≤ 1.2e-5 the others), so tol = 1e-4. In vit_tiny the dot products of attention
// (lengths 8 and 17), LayerNorm's means (16) and the softmax sums (17) add 90 to its fan-in sum of 144:
// τ = 1.4e-5.
void expect_close(const std::vector<Tensor>& actual, const Tensor& expected, double tol,
                  const std::string& what) {
  const int64_t n = expected.dim(0), per = expected.size() / n;
  ASSERT_EQ(static_cast<int64_t>(actual.size()), n) << what;
  for (int64_t i = 0; i < n; ++i) {
    ASSERT_EQ(actual[static_cast<size_t>(i)].size(), per) << what;
    double scale = 0.0, diff = 0.0;
    for (int64_t j = 0; j < per; ++j) {
      scale = std::max(scale, std::abs(static_cast<double>(expected[i * per + j])));
      diff = std::max(
          diff, std::abs(static_cast<double>(actual[static_cast<size_t>(i)][j]) - expected[i * per + j]));
    }
    EXPECT_LE(diff, tol * scale) << what << " sample " << i;
  }
}

struct ModelCase {
  std::string name;
  std::string full_output;  // reference of the uncanonicalized graph when it differs from the logits
  std::vector<std::string> rewrites;
};

class ExportedModels : public ::testing::TestWithParam<ModelCase> {};

TEST_P(ExportedModels, LogitsMatchPyTorchAndCanonicalizationPreservesOutputs) {
  const ModelCase& c = GetParam();
  const std::vector<Tensor> samples = split(read_npy(kModels + c.name + "_input.npy"));
  const Model model = Model::load(kModels + c.name + ".onnx");
  expect_close(run_per_sample(model, samples), read_npy(kModels + c.name + "_logits.npy"), 1e-4,
               c.name + " logits");
  for (const std::string& rewrite : c.rewrites) {
    bool found = false;
    for (const std::string& done : model.report().canonicalizations)
      found = found || done.find(rewrite) != std::string::npos;
    EXPECT_TRUE(found) << c.name << ": expected a canonicalization mentioning '" << rewrite << "'";
  }
  // Without any rewrite the graph computes the file's own output.
  LoadOptions raw;
  raw.canonicalize = {false, false, false, false, false};
  const Model unchanged = Model::load(kModels + c.name + ".onnx", raw);
  EXPECT_TRUE(unchanged.report().canonicalizations.empty());
  const std::string full = c.full_output.empty() ? c.name + "_logits.npy" : c.full_output;
  expect_close(run_per_sample(unchanged, samples), read_npy(kModels + full), 1e-4,
               c.name + " without rewrites");
  // Each rewrite alone keeps the output of the file (the softmax strip changes it by design, so it stays
  // off).
  for (int k = 0; k < 4; ++k) {
    LoadOptions one = raw;
    (k == 0   ? one.canonicalize.fold_batchnorm
     : k == 1 ? one.canonicalize.remove_identity
     : k == 2 ? one.canonicalize.fold_zero_pad
              : one.canonicalize.fuse_spelled_out) = true;
    expect_close(run_per_sample(Model::load(kModels + c.name + ".onnx", one), samples),
                 read_npy(kModels + full), 1e-4, c.name + " with rewrite " + std::to_string(k));
  }
}

INSTANTIATE_TEST_SUITE_P(
    Torch, ExportedModels,
    ::testing::Values(ModelCase{"mlp", "", {}}, ModelCase{"mlp_opset9", "", {}},
                      ModelCase{"vgg_small", "vgg_small_probs.npy", {"stripped final Softmax"}},
                      ModelCase{"resnet_small", "", {"folded BatchNormalization"}},
                      ModelCase{"conv1d", "", {}},
                      ModelCase{"mobilenet_small", "", {"folded BatchNormalization"}},
                      ModelCase{
                          "ops_mix", "ops_mix_output.npy", {"merged zero Pad", "stripped final LogSoftmax"}}),
    [](const auto& info) { return info.param.name; });

// The models of recent architectures (tools/make_modern_models.py): MobileNetV3 (HardSigmoid, HardSwish),
// a Vision Transformer with LayerNorm and GELU spelled out (opset 13) and as LayerNormalization (opset
// 17), torchvision's own VisionTransformer (tools/make_transformer_models.py; its multi-head attention
// splits the packed projection with integer divisions of shapes), a U-Net with Resize, a mix of the other new
// ops, and a net with its weights in Constant nodes.
INSTANTIATE_TEST_SUITE_P(
    Modern, ExportedModels,
    ::testing::Values(
        ModelCase{"mobilenet_v3", "", {"folded BatchNormalization", "fused 19 spelled-out HardSwish"}},
        ModelCase{"vit_tiny", "", {"fused 3 spelled-out LayerNormalization", "fused 1 spelled-out Gelu"}},
        ModelCase{"vit_tiny_opset17", "", {}},
        ModelCase{
            "vit_torchvision", "", {"fused 3 spelled-out LayerNormalization", "fused 1 spelled-out Gelu"}},
        ModelCase{"unet_tiny", "", {}}, ModelCase{"ops_modern", "", {"fused 1 spelled-out SiLU"}},
        ModelCase{"cnn_constants_opset9", "", {"folded BatchNormalization"}}),
    [](const auto& info) { return info.param.name; });

// Recurrent classifiers (tools/make_recurrent_models.py): an LSTM, a bidirectional GRU and a two-layer RNN
// between the Transposes PyTorch writes for batch_first, over T = 5 steps. Each step's pre-activations are
// dot products of I + H + 2 ≤ 9 terms fed by the previous step, so an output carries T·9 + 8 = 53 rounded
// fan-in terms per layer (106 for the two-layer RNN): τ ≤ 106u = 6.3e-6, inside tol = 1e-4.
INSTANTIATE_TEST_SUITE_P(Recurrent, ExportedModels,
                         ::testing::Values(ModelCase{"lstm_classifier", "", {}},
                                           ModelCase{"bigru_classifier", "", {}},
                                           ModelCase{"rnn_classifier", "", {}}),
                         [](const auto& info) { return info.param.name; });

TEST(ExportedModels, FoldsEveryBatchNormalization) {
  for (const char* name : {"resnet_small", "mobilenet_small", "mobilenet_v3", "cnn_constants_opset9"}) {
    const Model model = Model::load(kModels + name + ".onnx");
    EXPECT_EQ(model.report().op_counts.count("BatchNormalization"), 0u) << name;
    EXPECT_GT(model.report().onnx_op_counts.at("BatchNormalization"), 0) << name;
  }
}

}  // namespace
}  // namespace sieve
