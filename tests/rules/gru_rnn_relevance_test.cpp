// The recurrent rules on GRU and RNN cells (lstm=all|prop|abs|half on every relevance method), on the
// classifiers of tools/gru_rnn_lrp_reference.py: R of x and of h0 per input against its float64
// reference, the layout-1 twins (GRU: against the same references; LSTM: against its layout-0 twin),
// conservation with biases zeroed, and the refusals of what the rules do not cover.

#include <gtest/gtest.h>

#include <cmath>

#include "sieve/analyzer.hpp"
#include "sieve/batch.hpp"
#include "sieve/io/npy.hpp"
#include "sieve/lrp.hpp"
#include "sieve/methods.hpp"
#include "support/errors.hpp"
#include "support/per_sample.hpp"

namespace sieve {
namespace {

const std::string kModels = std::string(SIEVE_TEST_DATA) + "/models/";
const std::vector<std::string> kVariants = {"all", "prop", "abs", "half"};

Tensor load(const std::string& name) {
  return read_npy(kModels + name + ".npy");
}

// R of input `wrt` (x or h0) of the classifier `model_file`, whose inputs are `data`_x and `data`_h0, for
// the class of the largest logit; the other input fixed per sample.
Tensor relevance(const std::string& model_file, const std::string& data, const std::string& method,
                 const std::string& wrt) {
  const Model model = Model::load(kModels + model_file + ".onnx");
  ExplainSetup setup;
  setup.wrt = wrt;
  const std::string other = wrt == "x" ? "h0" : "x";
  setup.fixed[other] = FixedInput{load(data + "_" + other), true};
  const auto analyzer = create_analyzer(MethodSpec::parse(method));
  const ForwardPass pass(model, load(data + "_" + wrt), setup, {}, analyzer->trace_values(model));
  return analyzer->explain(pass, TargetSelection().resolve(pass.output()).at(0));
}

// sieve recomputes the cell in float32; the reference runs it in float64 from the same (float32)
// weights and inputs. Each relevance value is a product of ≲ 5 ratios per step (the state split, the
// update product, the candidate's ε-rule, the reset product, the map of q), each a contribution over a
// sum of ≲ 8 terms off by ≲ 8u times the sum's condition: over T = 6 steps ≲ 30 · 8u = 1.4e-5 for sums
// that do not cancel; prop's z_g + z_s can cancel, as on the LSTM. Measured: between 3e-6 and 1e-5 of
// the sample's largest value on the GRU under prop, abs and half; 1e-4 is the LSTM tests' bound.
constexpr double kReferenceBound = 1e-4;

struct Case {
  std::string model, data;
  std::vector<std::string> variants;
};

class RecurrentReference : public ::testing::TestWithParam<Case> {};

// ε = 0.01 everywhere (the cell's linear maps, the prop and abs stabilizers, the splits, the Gemm head).
TEST_P(RecurrentReference, MatchesTheFloat64ReferenceAtEveryInput) {
  const Case& c = GetParam();
  const Model model = Model::load(kModels + c.model + ".onnx");
  ExplainSetup setup;
  setup.wrt = "x";
  setup.fixed["h0"] = FixedInput{load(c.data + "_h0"), true};
  const Tensor logits = load(c.data + "_logits");
  const ForwardPass pass(model, load(c.data + "_x"), setup);
  // The float32 forward against the float64 one: ≲ 6 steps of ≲ 8-term sums through tanh and σ.
  for (int64_t k = 0; k < logits.size(); ++k) EXPECT_NEAR(pass.output()[k], logits[k], 1e-5) << k;
  for (const std::string& variant : c.variants) {
    for (const std::string wrt : {"x", "h0"}) {
      const Tensor r = relevance(c.model, c.data, "lrp.epsilon:epsilon=0.01,lstm=" + variant, wrt);
      expect_per_sample_near(r, load(c.data + "_lrp_" + variant + "_" + wrt), kReferenceBound,
                             c.model + " " + variant + " " + wrt);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Cells, RecurrentReference,
                         ::testing::Values(Case{"gru_lrp_forward", "gru_lrp_forward", kVariants},
                                           Case{"gru_lrp_forward_layout1", "gru_lrp_forward", kVariants},
                                           Case{"gru_lrp_bidirectional", "gru_lrp_bidirectional", kVariants},
                                           Case{"rnn_lrp_tanh", "rnn_lrp_tanh", {"all"}},
                                           Case{"rnn_lrp_relu", "rnn_lrp_relu", {"all"}}),
                         [](const auto& info) { return info.param.model; });

// Without biases and with ε → 0 every product rule hands the whole logit to x and h0. Σ R runs over
// 6 · 4 + 2 · 3 = 30 values per sample, each off by ≲ 30 · 8u relative (above), so the sum is off by
// ≲ (30 + 240)u ≈ 1.6e-5 of the magnitudes summed, Σ|R|, the bound used here; a logit that is a
// cancelling sum cannot be resolved to 1e-5 of itself. Measured: ≲ 3e-7 of Σ|R|.
TEST(GruRnnRelevance, ConservesTheLogitWithBiasesZeroed) {
  for (const auto& [model_file, data, variants] :
       {Case{"gru_lrp_forward_zero_bias", "gru_lrp_forward", kVariants},
        Case{"rnn_lrp_tanh_zero_bias", "rnn_lrp_tanh", {"all"}}}) {
    const Model model = Model::load(kModels + model_file + ".onnx");
    ExplainSetup setup;
    setup.wrt = "x";
    setup.fixed["h0"] = FixedInput{load(data + "_h0"), true};
    const ForwardPass pass(model, load(data + "_x"), setup);
    const std::vector<int64_t> targets = TargetSelection().resolve(pass.output()).at(0);
    for (const std::string& variant : variants) {
      SCOPED_TRACE(model_file + " " + variant);
      std::vector<double> total(targets.size(), 0.0), magnitude(targets.size(), 0.0);
      for (const std::string wrt : {"x", "h0"}) {
        const Tensor r = relevance(model_file, data, "lrp.epsilon:epsilon=1e-9,lstm=" + variant, wrt);
        const int64_t per = r.size() / r.dim(0);
        for (size_t i = 0; i < targets.size(); ++i) {
          for (int64_t j = 0; j < per; ++j) {
            total[i] += r[static_cast<int64_t>(i) * per + j];
            magnitude[i] += std::abs(r[static_cast<int64_t>(i) * per + j]);
          }
        }
      }
      for (size_t i = 0; i < targets.size(); ++i) {
        const double logit = pass.output()[static_cast<int64_t>(i) * pass.output().dim(1) + targets[i]];
        EXPECT_NEAR(total[i], logit, 1.6e-5 * magnitude[i]) << "sample " << i;
      }
    }
  }
}

// Layout 1 ([batch, seq, ·]) only moves where the node's tensors keep each step; the LSTM walks the
// same float32 computations in the same order in both layouts, so the relevance agrees to the last bit
// but for the transposes around the layout-0 node, which move values without arithmetic.
TEST(GruRnnRelevance, LstmInLayoutOneMatchesLayoutZero) {
  for (const std::string variant : {"all", "prop"}) {
    for (const std::string wrt : {"x", "h0"}) {
      const std::string method = "lrp.epsilon:epsilon=0.01,lstm=" + variant;
      const Tensor time_major = relevance("lstm_lrp_layout0", "gru_lrp_forward", method, wrt);
      const Tensor batch_major = relevance("lstm_lrp_layout1", "gru_lrp_forward", method, wrt);
      ASSERT_EQ(time_major.shape(), batch_major.shape());
      for (int64_t k = 0; k < time_major.size(); ++k)
        EXPECT_EQ(time_major[k], batch_major[k]) << variant << " " << wrt << " " << k;
    }
  }
}

TEST(GruRnnRelevance, NamesTheRulesForExplainRules) {
  for (const auto& [file, op_type, line] :
       {std::tuple<std::string, std::string, std::string>{
            "gru_lrp_forward", "GRU",
            "GRU (book ch. 11 rules): ε-rule (ε = 0.01) on the linear maps, products split by LRP-half "
            "(lstm=half), state sums proportional"},
        {"rnn_lrp_tanh", "RNN", "RNN: activation passes relevance, ε-rule (ε = 0.01) on the linear maps"}}) {
    const Model model = Model::load(kModels + file + ".onnx");
    const auto analyzer = create_analyzer(MethodSpec::parse("lrp.epsilon:epsilon=0.01,lstm=half"));
    bool found = false;
    for (const RuleAssignment& r : dynamic_cast<const RelevanceAnalyzer&>(*analyzer).assignment(model)) {
      if (r.op_type != op_type) continue;
      found = true;
      EXPECT_EQ(r.rule, line);
    }
    EXPECT_TRUE(found) << file;
  }
}

TEST(GruRnnRelevance, RefusesWhatTheRulesDoNotCover) {
  const std::string clipped =
      error_of([&] { relevance("gru_lrp_clip", "gru_lrp_forward", "lrp.epsilon", "x"); });
  EXPECT_NE(clipped.find("(GRU, opset 14)"), std::string::npos) << clipped;
  EXPECT_NE(clipped.find("clip"), std::string::npos) << clipped;
  const std::string sigmoid =
      error_of([&] { relevance("rnn_lrp_sigmoid", "rnn_lrp_relu", "lrp.epsilon", "x"); });
  EXPECT_NE(sigmoid.find("Tanh or Relu"), std::string::npos) << sigmoid;
  EXPECT_NE(sigmoid.find(":gradient"), std::string::npos) << sigmoid;
  const std::string wrong_rule =
      error_of([&] { relevance("gru_lrp_forward", "gru_lrp_forward", "lrp.z_plus", "x"); });
  EXPECT_NE(wrong_rule.find("rule 'z_plus'"), std::string::npos) << wrong_rule;
}

}  // namespace
}  // namespace sieve
