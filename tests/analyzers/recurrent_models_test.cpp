// Gradient, input × gradient and Integrated Gradients through the LSTM, GRU and RNN ops of models exported
// from PyTorch (tools/make_recurrent_models.py) against PyTorch's float64 autograd, logit 1 of every
// sample.

#include <gtest/gtest.h>

#include <cmath>

#include "sieve/analyzer.hpp"
#include "sieve/io/npy.hpp"
#include "sieve/methods.hpp"
#include "support/errors.hpp"
#include "support/per_sample.hpp"

namespace sieve {
namespace {

const std::string kModels = std::string(SIEVE_TEST_DATA) + "/models/";

Tensor load(const std::string& name) {
  return read_npy(kModels + name + ".npy");
}

// Per sample: max |got − want| ≤ 1e-4 · max |want|. Backpropagation through T = 5 steps repeats the forward
// pass's dot products transposed: each input gradient sums over ≤ 2 layers × 5 steps × 9 terms plus the
// output layer's 8, so the float32 result carries ≲ 100 rounded terms, γ ≈ 100u = 6e-6 of the summed
// magnitudes, which the gates' derivatives (≤ 1) do not enlarge. PyTorch's own float32 gradients are
// within 2.9e-7 of the maximum (the tool prints it), below that bound, so the bound sets the tolerance:
// 1e-4 leaves room for the summed magnitudes exceeding the result's by up to ~16×.
void expect_matches(const Tensor& got, const Tensor& want, const std::string& what) {
  expect_per_sample_near(got, want, 1e-4, what);
}

Tensor explained(const Model& model, const std::string& method, const Tensor& batch) {
  const auto analyzer = create_analyzer(MethodSpec::parse(method));
  std::vector<Tensor> samples;
  for (int64_t i = 0; i < batch.dim(0); ++i) samples.push_back(batch_row(batch, i));
  const std::vector<Explanation> e =
      explain_samples(model, samples, {analyzer.get()}, TargetSelection::parse("1"), 2);
  Shape shape = e.at(0).values.shape();
  shape[0] = static_cast<int64_t>(e.size());
  Tensor out = Tensor::uninitialized(shape);
  for (size_t i = 0; i < e.size(); ++i)
    std::copy_n(e[i].values.data(), e[i].values.size(),
                out.data() + static_cast<int64_t>(i) * e[i].values.size());
  return out;
}

class RecurrentModels : public ::testing::TestWithParam<std::string> {};

TEST_P(RecurrentModels, GradientFamilyMatchesTorchAutograd) {
  const std::string& name = GetParam();
  const Model model = Model::load(kModels + name + ".onnx");
  const Tensor x = load(name + "_input");
  expect_matches(explained(model, "gradient", x), load(name + "_gradient"), name + " gradient");
  expect_matches(explained(model, "input_x_gradient", x), load(name + "_input_x_gradient"),
                 name + " input x gradient");
  expect_matches(explained(model, "integrated_gradients:steps=8", x), load(name + "_ig"),
                 name + " integrated gradients");
}

// DeepLIFT's Rescale rule covers element-wise activations, not the gated products inside a cell.
TEST_P(RecurrentModels, DeepLiftRefusesTheCell) {
  const std::string& name = GetParam();
  const Model model = Model::load(kModels + name + ".onnx");
  const std::string message = error_of([&] { explained(model, "deeplift", load(name + "_input")); });
  EXPECT_NE(message.find("is neither linear, an element-wise activation nor max pooling"), std::string::npos)
      << message;
}

INSTANTIATE_TEST_SUITE_P(Torch, RecurrentModels,
                         ::testing::Values("lstm_classifier", "bigru_classifier", "rnn_classifier"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace sieve
