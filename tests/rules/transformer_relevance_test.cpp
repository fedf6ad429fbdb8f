// The relevance treatments of transformers on exported models against an independent float64 reference
// written in PyTorch (tools/make_transformer_models.py: the models' own forward with every treatment as a
// gradient modification), conservation with every bias zeroed, and the treatments the rules report.
// Models: vit_lrp (a one-block Vision Transformer, pre-norm, class token) and bert_lrp (a two-block
// post-norm BERT-style encoder on token ids, explained at the embedding lookup, one value per token).

#include <gtest/gtest.h>

#include <cmath>

#include "sieve/analyzer.hpp"
#include "sieve/batch.hpp"
#include "sieve/io/npy.hpp"
#include "sieve/lrp.hpp"
#include "sieve/methods.hpp"
#include "support/rounding.hpp"

namespace sieve {
namespace {

const std::string kModels = std::string(SIEVE_TEST_DATA) + "/models/";

std::vector<Tensor> samples_of(const Tensor& batch) {
  std::vector<Tensor> samples;
  for (int64_t i = 0; i < batch.dim(0); ++i) samples.push_back(batch_row(batch, i));
  return samples;
}

Tensor inputs_of(const std::string& model) {
  return read_npy(kModels + model + (model.rfind("bert", 0) == 0 ? "_input_ids.npy" : "_input.npy"));
}

std::vector<Explanation> explain(const Model& model, const std::string& method, const Tensor& inputs) {
  const std::unique_ptr<Analyzer> analyzer = create_analyzer(MethodSpec::parse(method), {});
  analyzer->prepare(model);
  return explain_samples(model, samples_of(inputs), {analyzer.get()}, TargetSelection(), 4);
}

// The exported models compute PyTorch's float64 logits up to float32 rounding: the forward's error is
// at most τ (support/rounding.hpp) of the magnitudes it sums, and LayerNorm and softmax do not amplify
// it beyond a small factor, so 32τ of the largest logit bounds it (measured: below 2τ).
TEST(TransformerRelevance, ModelsComputePyTorchsLogits) {
  for (const std::string name : {"vit_lrp", "bert_lrp", "vit_lrp_unbiased", "bert_lrp_unbiased"}) {
    SCOPED_TRACE(name);
    const Model model = Model::load(kModels + name + ".onnx");
    const Tensor want = read_npy(kModels + name + "_logits.npy");
    const Tensor got = model.run({inputs_of(name.substr(0, name.find("_unbiased")))}).at(0);
    ASSERT_EQ(got.shape(), want.shape());
    double scale = 0.0;
    for (float v : want.values()) scale = std::max(scale, static_cast<double>(std::abs(v)));
    for (int64_t i = 0; i < got.size(); ++i)
      EXPECT_NEAR(got[i], want[i], 32.0 * forward_rounding_bound(model) * scale) << "logit " << i;
  }
}

struct Case {
  std::string model, method, reference;
};

// Per input, max |sieve − reference| ≤ 1e-4 · max |reference|, the bound of every golden test
// (docs/testing.md). The forward rounding τ of these models (support/rounding.hpp) is 4e-6 (vit_lrp) and
// 1.1e-5 (bert_lrp); the reverse pass divides by stabilized outputs whose own error is τ, so the relevance
// can be off by a few τ (measured: at most 2.8e-6 relative on vit_lrp, 2e-5 on bert_lrp).
TEST(TransformerRelevance, EqualsTheIndependentTorchReference) {
  for (const Case& c : std::vector<Case>{
           {"vit_lrp", "lrp.epsilon:epsilon=0.01", "epsilon_cp"},
           {"vit_lrp", "lrp.epsilon:epsilon=0.01,attention=attnlrp", "epsilon_attnlrp"},
           {"vit_lrp", "input_x_gradient", "input_x_gradient"},
           {"bert_lrp", "lrp.epsilon:epsilon=0.01", "epsilon_cp"},
           {"bert_lrp", "lrp.epsilon:epsilon=0.01,attention=attnlrp", "epsilon_attnlrp"},
           {"bert_lrp", "input_x_gradient", "input_x_gradient"},
       }) {
    SCOPED_TRACE(c.model + " " + c.method);
    const Model model = Model::load(kModels + c.model + ".onnx");
    const Tensor reference = read_npy(kModels + c.model + "_" + c.reference + ".npy");
    const Tensor targets = read_npy(kModels + c.model + "_targets.npy");
    const std::vector<Explanation> got = explain(model, c.method, inputs_of(c.model));
    ASSERT_EQ(got.size(), static_cast<size_t>(reference.dim(0)));
    const int64_t per = reference.size() / reference.dim(0);
    for (size_t i = 0; i < got.size(); ++i) {
      EXPECT_EQ(got[i].target, static_cast<int64_t>(targets[static_cast<int64_t>(i)])) << "input " << i;
      ASSERT_EQ(got[i].values.size(), per) << "input " << i;
      double scale = 0.0, diff = 0.0;
      for (int64_t k = 0; k < per; ++k) {
        const double want = reference[static_cast<int64_t>(i) * per + k];
        scale = std::max(scale, std::abs(want));
        diff = std::max(diff, std::abs(got[i].values[k] - want));
      }
      EXPECT_LE(diff, 1e-4 * scale) << "input " << i << " of " << c.model;
    }
  }
}

// With biases, LayerNorm shifts, positional embeddings and the class token zeroed, every treatment on
// the way conserves: the LN rule's map is linear once σ is held, CP-LRP passes everything through the
// values, GELU and tanh pass relevance unchanged, and the sums split proportionally. What is left is the
// stabilizers, each taking ε/(|z| + ε) of one term's share: with ε = 1e-9 in the layers and in the
// proportional splits, far below the 1e-5 relative of the logit asked here. With the splits' default
// 1e-6 the ten splits of vit_lrp lose 1e-6 to 7e-6 each (measured: 1.5e-5 to 5e-5 of the logit), which
// 1e-4 bounds.
TEST(TransformerRelevance, ConservesTheLogitWithoutBiases) {
  for (const std::string name : {"vit_lrp_unbiased", "bert_lrp_unbiased"}) {
    for (const auto& [method, tolerance] :
         {std::pair<std::string, double>{"lrp.epsilon:epsilon=1e-9,split_epsilon=1e-9", 1e-5},
          {"lrp.epsilon:epsilon=1e-9", 1e-4}}) {
      SCOPED_TRACE(name + " " + method);
      const Model model = Model::load(kModels + name + ".onnx");
      const std::vector<Explanation> got =
          explain(model, method, inputs_of(name.substr(0, name.find("_unbiased"))));
      for (const Explanation& e : got) {
        double sum = 0.0;
        for (float v : e.values.values()) sum += v;
        const double logit = e.output[e.target];
        EXPECT_NEAR(sum, logit, tolerance * std::abs(logit)) << "sample " << e.sample;
      }
    }
  }
}

// What `--explain-rules` reports for each structure of the exported transformers and MobileNetV3.
TEST(TransformerRelevance, ReportsTheTreatmentOfEachStructure) {
  struct Expected {
    std::string model, op_type, rule;
  };
  for (const Expected& e : std::vector<Expected>{
           {"vit_lrp", "LayerNormalization", "LN rule: divisor held constant, proportional split"},
           {"vit_tiny_opset17", "LayerNormalization", "LN rule: divisor held constant, proportional split"},
           {"vit_lrp", "Softmax", "held constant (CP-LRP)"},
           {"vit_lrp", "Gelu", "pass"},
           {"bert_lrp", "Tanh", "pass"},
           {"mobilenet_v3", "HardSwish", "pass"},
           {"mobilenet_v3", "Mul", "signal-take-all: the gate is held constant"},
       }) {
    SCOPED_TRACE(e.model + " " + e.op_type);
    const Model model = Model::load(kModels + e.model + ".onnx");
    const std::unique_ptr<Analyzer> analyzer = create_analyzer(MethodSpec::parse("lrp.epsilon"), {});
    const auto assignment = dynamic_cast<const RelevanceAnalyzer&>(*analyzer).assignment(model);
    bool found = false;
    for (const RuleAssignment& r : assignment) {
      if (r.op_type != e.op_type) continue;
      found = true;
      EXPECT_EQ(r.rule, e.rule) << r.name;
    }
    EXPECT_TRUE(found) << "no " << e.op_type << " node";
  }
  // The products of the attention: the probabilities' product holds them, the scores' product halves.
  const Model vit = Model::load(kModels + "vit_lrp.onnx");
  const std::unique_ptr<Analyzer> analyzer = create_analyzer(MethodSpec::parse("lrp.epsilon"), {});
  std::vector<std::string> products;
  for (const RuleAssignment& r : dynamic_cast<const RelevanceAnalyzer&>(*analyzer).assignment(vit))
    if (r.op_type == "Softmax" || (r.op_type == "MatMul" && r.rule.rfind("epsilon", 0) != 0))
      products.push_back(r.rule);
  EXPECT_EQ(products, (std::vector<std::string>{"proportional split, halved between the two factors",
                                                "held constant (CP-LRP)",
                                                "signal-take-all: the gate is held constant"}));
}

}  // namespace
}  // namespace sieve
