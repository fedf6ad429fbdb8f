// The relevance treatments chosen from op roles: a node without one (here a softmax that is not an
// attention weight, under attention=cp) stops a relevance method at set-up with advice that works, and an
// analyzer prepared for a model explains exactly as one made per call.

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "sieve/analyzer.hpp"
#include "sieve/error.hpp"
#include "sieve/io/npy.hpp"
#include "sieve/lrp.hpp"
#include "sieve/methods.hpp"

namespace sieve {
namespace {

const std::string kData = std::string(SIEVE_TEST_DATA);

std::unique_ptr<Analyzer> analyzer(const std::string& method, const AnalyzerContext& context = {}) {
  return create_analyzer(MethodSpec::parse(method), context);
}

Tensor explain(const Model& model, const Analyzer& a, const Tensor& x) {
  const ForwardPass pass(model, x, a.trace_values(model));
  return a.explain(pass, TargetSelection().resolve(pass.output()).at(0));
}

Tensor first_samples(const std::string& path, int64_t n) {
  const Tensor all = read_npy(path);
  Shape s = all.shape();
  s[0] = n;
  return Tensor(s, std::span<const float>(all.data(), static_cast<size_t>(n * (all.size() / all.dim(0)))));
}

// vgg_small with its final Softmax kept: a softmax on the explained path.
Model model_with_softmax() {
  LoadOptions options;
  options.canonicalize.strip_final_softmax = false;
  return Model::load(kData + "/models/vgg_small.onnx", options);
}

std::string softmax_node(const Model& model) {
  for (const Node& node : model.graph().nodes()) {
    if (model.graph().role(node) == OpRole::softmax) return node.name;
  }
  throw Error("no softmax node");
}

TEST(RelevanceTreatments, NodeWithoutTreatmentFailsAtSetUpWithAdviceThatWorks) {
  const Model model = model_with_softmax();
  const std::string node = softmax_node(model);
  for (const std::string method : {"lrp.epsilon", "lrp.epsilon_plus", "deep_taylor"}) {
    SCOPED_TRACE(method);
    const std::unique_ptr<Analyzer> a = analyzer(method);
    std::string message;
    try {
      a->prepare(model);
    } catch (const Error& e) {
      message = e.what();
    }
    ASSERT_FALSE(message.empty()) << "prepare accepted a node without a relevance treatment";
    EXPECT_NE(message.find("node '" + node + "'"), std::string::npos) << message;
    EXPECT_NE(message.find("Softmax"), std::string::npos) << message;
    const std::string advice = "--rule ";
    const size_t at = message.find(advice);
    ASSERT_NE(at, std::string::npos) << message;
    const size_t begin = at + advice.size();
    const std::string rule = message.substr(begin, message.find_first_of(" )", begin) - begin);
    EXPECT_EQ(rule, "name=" + node + ":gradient");

    AnalyzerContext context;
    context.rules = {rule};
    const std::unique_ptr<Analyzer> accepted = analyzer(method, context);
    accepted->prepare(model);
    const auto& assignment = dynamic_cast<const RelevanceAnalyzer&>(*accepted).assignment(model);
    const auto softmax = std::find_if(assignment.begin(), assignment.end(),
                                      [&](const RuleAssignment& r) { return r.name == node; });
    ASSERT_NE(softmax, assignment.end());
    EXPECT_EQ(softmax->rule, "gradient (by rule)");
    const Tensor x = first_samples(kData + "/models/vgg_small_input.npy", 2);
    const Tensor r = explain(model, *accepted, x);
    EXPECT_EQ(r.shape(), x.shape());
    double total = 0.0;
    for (float v : r.values()) {
      ASSERT_TRUE(std::isfinite(v));
      total += std::abs(v);
    }
    EXPECT_GT(total, 0.0);
  }
}

// LayerNorm (also where it was spelled out), attention, GELU, MobileNetV3's HardSwish and
// squeeze-excitation gates and LSTM cells have relevance treatments: every relevance method explains
// these models.
TEST(RelevanceTreatments, RecentArchitecturesAreExplainedByRelevanceMethods) {
  for (const std::string name :
       {"vit_tiny_opset17", "vit_tiny", "vit_torchvision", "mobilenet_v3", "lstm_classifier"}) {
    const Model model = Model::load(kData + "/models/" + name + ".onnx");
    const Tensor x = first_samples(kData + "/models/" + name + "_input.npy", 2);
    for (const std::string method : {"lrp.epsilon", "lrp.epsilon_plus", "lrp.epsilon:attention=attnlrp",
                                     "lrp.z:norm=gradient,activation=gradient,gate=half", "gradient"}) {
      SCOPED_TRACE(name + " " + method);
      const std::unique_ptr<Analyzer> a = analyzer(method);
      a->prepare(model);
      const Tensor r = explain(model, *a, x);
      ASSERT_EQ(r.shape(), x.shape());
      double total = 0.0;
      for (float v : r.values()) {
        ASSERT_TRUE(std::isfinite(v));
        total += std::abs(v);
      }
      EXPECT_GT(total, 0.0);
    }
  }
}

// The GRU and RNN cells PyTorch exports (a bidirectional GRU, an RNN) take the recurrent rules like
// the LSTM: relevance reaches every input element, finite; tools/gru_rnn_lrp_reference.py's models check
// the values (tests/rules/gru_rnn_relevance_test.cpp).
TEST(RelevanceTreatments, RecurrentCellsOfPyTorchExportsTakeRelevance) {
  for (const std::string name : {"bigru_classifier", "rnn_classifier"}) {
    SCOPED_TRACE(name);
    const Model model = Model::load(kData + "/models/" + name + ".onnx");
    const Tensor x = first_samples(kData + "/models/" + name + "_input.npy", 2);
    const std::unique_ptr<Analyzer> relevance = analyzer("lrp.epsilon");
    relevance->prepare(model);
    const Tensor r = explain(model, *relevance, x);
    ASSERT_EQ(r.shape(), x.shape());
    double total = 0.0;
    for (float v : r.values()) {
      ASSERT_TRUE(std::isfinite(v));
      total += std::abs(v);
    }
    EXPECT_GT(total, 0.0);
  }
}

TEST(RelevanceTreatments, GradientRuleIsAcceptedOnlyWhereItMatches) {
  const Model model = model_with_softmax();
  AnalyzerContext context;
  context.rules = {"name=no_such_node:gradient"};
  EXPECT_THROW(analyzer("lrp.epsilon", context)->prepare(model), Error);
  context.rules = {"Softmax:gradient"};
  EXPECT_NO_THROW(analyzer("lrp.epsilon", context)->prepare(model));
}

TEST(RelevanceTreatments, PreparedAnalyzersExplainAsUnpreparedOnes) {
  const Model cnn = Model::load(kData + "/shared/models/cnn_dynbatch.onnx");
  const Model mix = Model::load(kData + "/models/ops_mix.onnx");
  const Tensor x_cnn = first_samples(kData + "/shared/models/cnn_inputs.npy", 3);
  const Tensor x_mix = first_samples(kData + "/models/ops_mix_input.npy", 2);
  for (const std::string method : {"lrp.epsilon", "lrp.epsilon_plus:maxpool=avg", "lrp.alpha_2_beta_1",
                                   "lrp.z:logodds=1", "deep_taylor"}) {
    SCOPED_TRACE(method);
    const std::unique_ptr<Analyzer> prepared = analyzer(method), per_call = analyzer(method);
    prepared->prepare(cnn);
    const Tensor a = explain(cnn, *prepared, x_cnn), b = explain(cnn, *per_call, x_cnn);
    ASSERT_EQ(a.shape(), b.shape());
    for (int64_t i = 0; i < a.size(); ++i) ASSERT_EQ(a[i], b[i]) << i;
  }
  // Prepared for one model, an analyzer still explains another, with state made for the call.
  const std::unique_ptr<Analyzer> prepared = analyzer("lrp.epsilon"), per_call = analyzer("lrp.epsilon");
  prepared->prepare(cnn);
  const Tensor c = explain(mix, *prepared, x_mix), d = explain(mix, *per_call, x_mix);
  ASSERT_EQ(c.shape(), x_mix.shape());
  for (int64_t i = 0; i < c.size(); ++i) ASSERT_EQ(c[i], d[i]) << i;
}

}  // namespace
}  // namespace sieve
