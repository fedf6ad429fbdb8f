// Models with several inputs or outputs against PyTorch float64 autograd (tools/make_multi_io_models.py):
// a model with two float inputs, token ids and an integer offset, explained with respect to each input;
// targets chosen by output name, flat index, sum and mask on a model with a 4-D output; and the errors
// for inputs and targets that do not fit.

#include <gtest/gtest.h>

#include <cmath>

#include "sieve/analyzer.hpp"
#include "sieve/batch.hpp"
#include "sieve/error.hpp"
#include "sieve/io/npy.hpp"
#include "sieve/lrp.hpp"
#include "sieve/methods.hpp"
#include "support/errors.hpp"
#include "support/rounding.hpp"

namespace sieve {
namespace {

const std::string kModels = std::string(SIEVE_TEST_DATA) + "/models/";
const std::vector<std::string> kMultiInputs = {"x", "h", "ids", "offset"};

Tensor load(const std::string& name) {
  return read_npy(kModels + name + ".npy");
}

std::vector<Tensor> samples_of(const Tensor& batch) {
  std::vector<Tensor> samples;
  for (int64_t i = 0; i < batch.dim(0); ++i) samples.push_back(batch_row(batch, i));
  return samples;
}

// The explanations of one method and one target, stacked in sample order.
Tensor stacked(const std::vector<Explanation>& explanations) {
  Shape shape = explanations.at(0).values.shape();
  shape[0] = static_cast<int64_t>(explanations.size());
  Tensor out = Tensor::uninitialized(shape);
  for (size_t i = 0; i < explanations.size(); ++i) {
    const Tensor& v = explanations[i].values;
    std::copy_n(v.data(), v.size(), out.data() + static_cast<int64_t>(i) * v.size());
  }
  return out;
}

// The models are smooth (tanh, sigmoid: no kinks), so sieve's float32 gradients differ from the float64
// references by rounding only. The forward pass is off by at most τ (support/rounding.hpp) of the
// magnitudes it sums; the reverse pass repeats the same dot products transposed (another τ) and scales by
// activation derivatives of values off by τ. 32τ of the largest reference value leaves room for the
// magnitudes of the summed terms exceeding the result's.
void expect_matches(const Model& model, const Tensor& got, const Tensor& want, const std::string& what) {
  ASSERT_EQ(got.shape(), want.shape()) << what;
  double scale = 0.0;
  for (float v : want.values()) scale = std::max(scale, static_cast<double>(std::abs(v)));
  const double tolerance = 32.0 * forward_rounding_bound(model) * scale;
  for (int64_t i = 0; i < got.size(); ++i) ASSERT_NEAR(got[i], want[i], tolerance) << what << " at " << i;
}

// Every input of the multi-input model but `wrt`, one row per sample.
ExplainSetup multi_setup(const std::string& wrt) {
  ExplainSetup setup;
  setup.wrt = wrt;
  for (const std::string& name : kMultiInputs) {
    if (name != wrt) setup.fixed[name] = FixedInput{load("multi_input_" + name), true};
  }
  return setup;
}

// Explanations of logit 2 with respect to `setup.wrt`, two samples per batch so that per-sample inputs
// are picked across batches.
Tensor explain_multi(const std::string& method, const ExplainSetup& setup) {
  const Model model = Model::load(kModels + "multi_input.onnx");
  const auto analyzer = create_analyzer(MethodSpec::parse(method));
  const std::vector<Tensor> samples = samples_of(load("multi_input_" + setup.wrt));
  return stacked(explain_samples(model, samples, {analyzer.get()}, TargetSelection::parse("2"), setup, 2));
}

// The sum over the last axis: one value per token.
Tensor per_token(const Tensor& per_dimension) {
  Shape shape(per_dimension.shape().begin(), per_dimension.shape().end() - 1);
  const int64_t dims = per_dimension.shape().back();
  Tensor sums(shape);
  for (int64_t t = 0; t < sums.size(); ++t) {
    double s = 0.0;
    for (int64_t k = 0; k < dims; ++k) s += per_dimension[t * dims + k];
    sums[t] = static_cast<float>(s);
  }
  return sums;
}

TEST(MultiInput, RunsLikeTorch) {
  const Model model = Model::load(kModels + "multi_input.onnx");
  EXPECT_EQ(model.input_types(), (std::vector<std::string>{"FLOAT", "FLOAT", "INT64", "INT64"}));
  std::vector<Tensor> inputs;
  for (const std::string& name : kMultiInputs) inputs.push_back(load("multi_input_" + name));
  expect_matches(model, model.run(inputs).at(0), load("multi_input_logits"), "logits");
}

TEST(MultiInput, GradientWithRespectToEachFloatInput) {
  const Model model = Model::load(kModels + "multi_input.onnx");
  expect_matches(model, explain_multi("gradient", multi_setup("x")), load("multi_input_gradient_x"), "x");
  expect_matches(model, explain_multi("gradient", multi_setup("h")), load("multi_input_gradient_h"), "h");
  expect_matches(model, explain_multi("integrated_gradients:steps=8", multi_setup("h")),
                 load("multi_input_ig_h"), "integrated gradients of h");
}

TEST(MultiInput, TokenIdsAreExplainedAtTheirEmbeddingLookup) {
  const Model model = Model::load(kModels + "multi_input.onnx");
  ExplainSetup dimensions = multi_setup("ids");
  dimensions.embedding_dimensions = true;
  const Tensor full = load("multi_input_gradient_embedding");
  expect_matches(model, explain_multi("gradient", dimensions), full, "gradient per embedding dimension");
  expect_matches(model, explain_multi("gradient", multi_setup("ids")), per_token(full), "gradient per token");
  expect_matches(model, explain_multi("input_x_gradient", multi_setup("ids")),
                 load("multi_input_input_x_gradient_ids"), "input x gradient per token");
  expect_matches(model, explain_multi("integrated_gradients:steps=8", multi_setup("ids")),
                 load("multi_input_ig_ids"), "integrated gradients per token");
}

TEST(MultiInput, ASharedRowIsGivenToEverySample) {
  ExplainSetup shared = multi_setup("h"), repeated = multi_setup("h");
  shared.fixed["x"] = FixedInput{batch_row(load("multi_input_x"), 0), false};
  repeated.fixed["x"] = FixedInput{gathered_rows(load("multi_input_x"), {0, 0, 0}), true};
  const Tensor a = explain_multi("gradient", shared), b = explain_multi("gradient", repeated);
  ASSERT_EQ(a.shape(), b.shape());
  for (int64_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i], b[i]) << i;
}

TEST(MultiInput, ForwardPassTakesNamedInputs) {
  const Model model = Model::load(kModels + "multi_input.onnx");
  const ForwardPass pass(model, load("multi_input_h"), multi_setup("h"));
  const auto gradient = create_analyzer(MethodSpec::parse("gradient"));
  expect_matches(model, gradient->explain(pass, {2, 2, 2}), load("multi_input_gradient_h"), "h");
}

TEST(MultiInput, BadInputsAreRefusedWithOneMessage) {
  const Model model = Model::load(kModels + "multi_input.onnx");
  const Tensor h = load("multi_input_h");
  auto pass_error = [&](const ExplainSetup& setup, const Tensor& input = Tensor()) {
    return error_of([&] {
      const ForwardPass pass(model, input.empty() ? load("multi_input_" + setup.wrt) : input, setup);
    });
  };
  ExplainSetup unknown = multi_setup("h");
  unknown.fixed["mask"] = FixedInput{h, true};
  EXPECT_EQ(pass_error(unknown), "unknown input 'mask': the model's inputs are x, h, ids, offset");
  ExplainSetup unknown_wrt = multi_setup("h");
  unknown_wrt.wrt = "state";
  EXPECT_EQ(pass_error(unknown_wrt, h), "unknown input 'state': the model's inputs are x, h, ids, offset");
  ExplainSetup missing = multi_setup("h");
  missing.fixed.erase("x");
  EXPECT_EQ(pass_error(missing),
            "input 'x' is not given: explaining 'h' needs a value for every other input (--input "
            "x=FILE.npy|VALUE)");
  ExplainSetup wrong_shape = multi_setup("h");
  wrong_shape.fixed["x"] = FixedInput{Tensor({3, 5}), true};
  EXPECT_EQ(pass_error(wrong_shape), "input 'x' has shape [3,5] but the model expects [?,4]");
  ExplainSetup wrong_type = multi_setup("h");
  Tensor ids = load("multi_input_ids").clone();
  ids[3] = 2.5f;
  wrong_type.fixed["ids"] = FixedInput{ids, true};
  EXPECT_EQ(pass_error(wrong_type), "input 'ids' is INT64 but element 3 is 2.500000");
  EXPECT_EQ(pass_error(multi_setup("offset")),
            "input 'offset' is INT64 and feeds no embedding lookup (a Gather from a constant table): integer "
            "inputs are explained at their lookup, so choose a float input or token ids");
  ExplainSetup ambiguous = multi_setup("h");
  ambiguous.wrt.clear();
  ambiguous.fixed.erase("h");
  EXPECT_EQ(pass_error(ambiguous, load("multi_input_x")),
            "choose the input to explain (--wrt): the model has several float inputs: x, h");
  ExplainSetup too_few_rows = multi_setup("h");
  too_few_rows.fixed["x"] = FixedInput{leading_rows(load("multi_input_x"), 2), true};
  EXPECT_EQ(pass_error(too_few_rows), "input 'x' has 2 per-sample row(s); sample 2 has none");
}

// Relevance methods give every node between any input and any output its treatment, so explaining
// another input, token ids or another output never meets a node left to its gradient.
TEST(MultiInput, RelevanceTreatsEveryNodeOnTheExplainedPath) {
  // multi_input's h·σ(h) stays a Sigmoid and a product: fused into SiLU it would have no relevance
  // treatment yet.
  LoadOptions unfused;
  unfused.canonicalize.fuse_spelled_out = false;
  const Model multi = Model::load(kModels + "multi_input.onnx", unfused),
              two = Model::load(kModels + "two_outputs.onnx");
  ValueId lookup = -1;
  for (const Node& node : multi.graph().nodes()) {
    if (node.op->is_table_lookup()) lookup = node.outputs.at(0);
  }
  ASSERT_GE(lookup, 0);
  for (const auto& [model, from, output] :
       {std::tuple<const Model*, ValueId, size_t>{&multi, multi.graph().inputs[0], 0},
        {&multi, multi.graph().inputs[1], 0},
        {&multi, lookup, 0},
        {&two, two.graph().inputs[0], 1}}) {
    const auto lrp = create_analyzer(MethodSpec::parse("lrp.epsilon"));
    std::vector<bool> treated(model->graph().nodes().size(), false);
    for (const RuleAssignment& a : dynamic_cast<const RelevanceAnalyzer&>(*lrp).assignment(*model))
      treated[a.node] = true;
    const ReversePlan path(model->graph(), model->graph().outputs.at(output), from);
    for (size_t n = 0; n < treated.size(); ++n) {
      EXPECT_TRUE(treated[n] || !path.on_path(n)) << model->graph().nodes()[n].name;
    }
  }
  ExplainSetup seg;
  seg.output = "seg";
  const auto log_odds = create_analyzer(MethodSpec::parse("lrp.epsilon:logodds=1"));
  const ForwardPass pass(two, load("two_outputs_image"), seg, {}, log_odds->trace_values(two));
  EXPECT_EQ(error_of([&] {
              log_odds->explain(pass, Target({0, 0}));
            }),
            "logodds=1 explains the model's first output");
}

// Explanations of the two-output model's image for `targets` on `output`, one sample per batch so that
// a mask over all samples is split by rows.
Tensor explain_image(const std::string& method, const std::string& output, const TargetSelection& targets) {
  const Model model = Model::load(kModels + "two_outputs.onnx");
  const auto analyzer = create_analyzer(MethodSpec::parse(method));
  ExplainSetup setup;
  setup.output = output;
  return stacked(
      explain_samples(model, samples_of(load("two_outputs_image")), {analyzer.get()}, targets, setup, 1));
}

TEST(AnyOutputTarget, OutputByNameFlatIndexSumAndMask) {
  const Model model = Model::load(kModels + "two_outputs.onnx");
  ASSERT_EQ(model.output_names(), (std::vector<std::string>{"score", "seg"}));
  expect_matches(model, explain_image("gradient", "score", TargetSelection::parse("1")),
                 load("two_outputs_gradient_score_1"), "score, class 1");
  expect_matches(model, explain_image("gradient", "seg", TargetSelection::parse("40")),
                 load("two_outputs_gradient_seg_flat40"), "seg, flat index 40");
  expect_matches(model, explain_image("gradient", "seg", TargetSelection::parse("sum")),
                 load("two_outputs_gradient_seg_sum"), "sum of seg");
  expect_matches(model, explain_image("input_x_gradient", "seg", TargetSelection::parse("sum")),
                 load("two_outputs_input_x_gradient_seg_sum"), "input x gradient, sum of seg");
  expect_matches(model,
                 explain_image("gradient", "seg", TargetSelection::weights(load("two_outputs_mask_sample"))),
                 load("two_outputs_gradient_seg_mask_sample"), "seg, one mask for every sample");
  expect_matches(model,
                 explain_image("gradient", "seg", TargetSelection::weights(load("two_outputs_mask_batch"))),
                 load("two_outputs_gradient_seg_mask_batch"), "seg, one mask per sample");
}

TEST(AnyOutputTarget, MaxIsTheLargestValueOfEachSample) {
  const Model model = Model::load(kModels + "two_outputs.onnx");
  ExplainSetup setup;
  setup.output = "seg";
  const ForwardPass pass(model, load("two_outputs_image"), setup);
  const std::vector<int64_t> best = TargetSelection().resolve(pass.output()).at(0);
  const int64_t per = pass.output().size() / pass.output().dim(0);
  for (int64_t i = 0; i < pass.output().dim(0); ++i) {
    for (int64_t k = 0; k < per; ++k)
      EXPECT_LE(pass.output()[i * per + k], pass.output()[i * per + best[static_cast<size_t>(i)]]);
  }
}

TEST(AnyOutputTarget, GradientSeedsAreWeightsAndRelevanceSeedsWeightsTimesOutput) {
  const Model model = Model::load(kModels + "two_outputs.onnx");
  ExplainSetup setup;
  setup.output = "seg";
  const ForwardPass pass(model, load("two_outputs_image"), setup);
  const Tensor weights = load("two_outputs_mask_batch");
  const Target target = Target::weighted(weights);
  const Tensor gradient_seed = target.gradient_seed(pass.output());
  const Tensor relevance_seed = target.relevance_seed(pass.output());
  for (int64_t i = 0; i < weights.size(); ++i) {
    EXPECT_EQ(gradient_seed[i], weights[i]);
    EXPECT_EQ(relevance_seed[i], weights[i] * pass.output()[i]);
  }
  const Tensor one_hot = Target({40, 7}).relevance_seed(pass.output());
  const int64_t per = pass.output().size() / 2;
  for (int64_t i = 0; i < one_hot.size(); ++i)
    EXPECT_EQ(one_hot[i], i == 40 || i == per + 7 ? pass.output()[i] : 0.0f) << i;
}

TEST(AnyOutputTarget, BadTargetsAreRefusedWithOneMessage) {
  const Model model = Model::load(kModels + "two_outputs.onnx");
  const auto gradient = create_analyzer(MethodSpec::parse("gradient"));
  const std::vector<Tensor> samples = samples_of(load("two_outputs_image"));
  ExplainSetup setup;
  setup.output = "seg";
  auto explain_error = [&](const TargetSelection& targets, const ExplainSetup& s) {
    return error_of([&] { explain_samples(model, samples, {gradient.get()}, targets, s); });
  };
  EXPECT_EQ(
      explain_error(TargetSelection::weights(Tensor({1, 3, 5, 5})), setup),
      "target mask of shape [1,3,5,5] does not fit the output [2,3,6,6]: give [1,3,6,6] (one sample) or "
      "[?,3,6,6] (one row per sample)");
  EXPECT_EQ(explain_error(TargetSelection::weights(Tensor({3, 3, 6, 6})), setup),
            "target mask of shape [3,3,6,6] has 3 rows for 2 samples: give one row, or one per sample");
  EXPECT_EQ(explain_error(TargetSelection::parse("108"), setup),
            "target index 108 out of range: the model has 108 outputs per sample");
  ExplainSetup unknown;
  unknown.output = "mask";
  EXPECT_EQ(explain_error(TargetSelection(), unknown),
            "unknown output 'mask': the model's outputs are score, seg");
}

TEST(AnyOutputTarget, LogOddsNeedsOneClassPerSample) {
  const Model model = Model::load(kModels + "two_outputs.onnx");
  const auto log_odds = create_analyzer(MethodSpec::parse("lrp.epsilon:logodds=1"));
  const ForwardPass pass(model, load("two_outputs_image"), ExplainSetup{}, {}, log_odds->trace_values(model));
  EXPECT_EQ(error_of([&] { log_odds->explain(pass, Target::weighted(Tensor(pass.output().shape(), 1.0f))); }),
            "log-odds explains one class per sample, not a sum or a mask of the output");
}

}  // namespace
}  // namespace sieve
