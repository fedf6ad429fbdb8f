// sieve evaluate end to end: the table, the JSON with every number, the CSV of curves and the SVG plot,
// and one clear message for each kind of bad input.

#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "sieve/io/npy.hpp"
#include "support/test_files.hpp"

namespace sieve {
namespace {

const std::string kModels = std::string(SIEVE_TEST_DATA) + "/shared/models/";
const std::string kCnn = kModels + "cnn_dynbatch.onnx ";
const std::string kFour = "'" + kModels + "cnn_inputs.npy[0:4]' ";

void expect_clear_error(const CliRun& r, const std::string& fragment) {
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("sieve: error:"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(fragment), std::string::npos) << "expected '" << fragment << "' in: " << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << "one line: " << r.err;
}

TEST(CliEvaluate, WritesEveryNumberCurvesAndPlot) {
  const std::string json = temp("evaluate.json").string(), csv = temp("evaluate.csv").string(),
                    svg = temp("evaluate.svg").string();
  const CliRun r =
      sieve_cli("evaluate " + kCnn + kFour + "-m gradient -m input_x_gradient " +
                "--metric region_perturbation:size=4,steps=10,order=morf+lerf --metric completeness " +
                "--metric sparseness --metric input_invariance --metric randomization --metric "
                "continuity:max_shift=2 --json " +
                json + " --csv " + csv + " --svg " + svg);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("region perturbation: 49 tiles of 4, 10 steps"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("(random)"), std::string::npos) << r.out;
  const nlohmann::json j = nlohmann::json::parse(read_bytes(json));
  ASSERT_EQ(j["targets"].size(), 4u);
  const nlohmann::json& rp = j["region_perturbation"];
  EXPECT_EQ(rp["tiles"], 49);
  for (const std::string method : {"gradient", "input_x_gradient"}) {
    for (const std::string order : {"morf", "lerf"}) {
      const nlohmann::json& d = rp["methods"][method][order];
      ASSERT_EQ(d["curves"].size(), 4u) << method << " " << order;
      double aopc_sum = 0.0;
      for (size_t i = 0; i < 4; ++i) {
        const std::vector<double> c = d["curves"][i];
        ASSERT_EQ(c.size(), 11u);
        double a = 0.0;
        for (double v : c) {
          EXPECT_GE(v, 0.0);  // softmax probabilities
          EXPECT_LE(v, 1.0);
          a += (c[0] - v) / 11.0;
        }
        EXPECT_NEAR(d["aopc"][i].get<double>(), a, 1e-12);
        aopc_sum += a;
      }
      EXPECT_NEAR(d["aopc_mean"].get<double>(), aopc_sum / 4, 1e-12);
      EXPECT_EQ(d["mean_curve"].size(), 11u);
    }
    const nlohmann::json& m = rp["methods"][method];
    EXPECT_NEAR(m["abpc_mean"].get<double>(),
                m["morf"]["aopc_mean"].get<double>() - m["lerf"]["aopc_mean"].get<double>(), 1e-12);
    EXPECT_EQ(j["completeness"][method]["relevance_sum"].size(), 4u);
    EXPECT_EQ(j["sparseness"][method]["gini"].size(), 4u);
  }
  EXPECT_EQ(rp["random"]["curves"].size(), 4u);
  // Book ch. 14 on the twin whose zero-padded first convolution is compensated: the gradient passes,
  // gradient × input does not.
  EXPECT_EQ(j["input_invariance"]["methods"]["gradient"]["passed"], true);
  EXPECT_EQ(j["input_invariance"]["methods"]["input_x_gradient"]["passed"], false);
  // Cascading randomisation: one entry per layer of the CNN (2 Gemm, 3 Conv), from the output down.
  const nlohmann::json& layers = j["randomization"]["methods"]["gradient"]["layers"];
  ASSERT_EQ(layers.size(), 5u);
  EXPECT_EQ(layers[0]["layer"], "/11/Gemm");
  EXPECT_EQ(layers[4]["spearman"].size(), 4u);
  EXPECT_EQ(j["continuity"]["methods"]["gradient"]["ratios"][3].size(), 2u);
  // Step 0 is the unperturbed input: the same value in every curve of a sample.
  EXPECT_EQ(rp["random"]["curves"][2][0], rp["methods"]["gradient"]["morf"]["curves"][2][0]);
  const std::string text = read_bytes(csv);
  EXPECT_EQ(text.rfind("method,order,input,step,value\n", 0), 0u);
  // (2 methods × 2 orders + random) × (4 inputs + mean) × 11 steps, plus the header.
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 5 * 5 * 11 + 1);
  const std::string plot = read_bytes(svg);
  size_t lines = 0;
  for (size_t at = plot.find("<polyline"); at != std::string::npos; at = plot.find("<polyline", at + 1))
    ++lines;
  EXPECT_EQ(lines, 5u);
  EXPECT_NE(plot.find("stroke-dasharray"), std::string::npos);  // the random baseline
  // The randomisation curves beside it: one line per method over "none" and the five layers.
  const std::string curves = read_bytes(temp("evaluate_randomization.svg"));
  size_t methods = 0;
  for (size_t at = curves.find("<polyline"); at != std::string::npos; at = curves.find("<polyline", at + 1))
    ++methods;
  EXPECT_EQ(methods, 2u);
  EXPECT_NE(curves.find(">/0/Conv</text>"), std::string::npos);
  // The continuity curves: one line per method over the translations 1 and 2.
  const std::string continuity = read_bytes(temp("evaluate_continuity.svg"));
  size_t continuity_lines = 0;
  for (size_t at = continuity.find("<polyline"); at != std::string::npos;
       at = continuity.find("<polyline", at + 1))
    ++continuity_lines;
  EXPECT_EQ(continuity_lines, 2u);
  EXPECT_NE(continuity.find(">input_x_gradient</text>"), std::string::npos);
  EXPECT_NE(continuity.find(">2</text>"), std::string::npos);
}

TEST(CliEvaluate, InputInvarianceTakesAShiftPerChannel) {
  // The 3-channel VGG-shaped test model: the shift as numbers joined by '+' and as a .npy of one value
  // per channel give the same twin, so the same numbers.
  const std::string vgg = std::string(SIEVE_TEST_DATA) + "/models/vgg_small.onnx ";
  const std::string inputs = std::string(SIEVE_TEST_DATA) + "/models/vgg_small_input.npy ";
  const std::string shift = temp("shift_per_channel.npy").string();
  Tensor values(Shape{3});
  values[0] = -1.0f, values[1] = 0.5f, values[2] = 2.0f;
  write_npy(shift, values);
  const std::string a = temp("shift_list.json").string(), b = temp("shift_file.json").string();
  const std::string methods = "-m gradient -m input_x_gradient --metric input_invariance:shift=";
  const CliRun listed = sieve_cli("evaluate " + vgg + inputs + methods + "-1+0.5+2 --json " + a);
  ASSERT_EQ(listed.code, 0) << listed.err;
  EXPECT_NE(listed.out.find("x + (-1+0.5+2)"), std::string::npos) << listed.out;
  const CliRun from_file = sieve_cli("evaluate " + vgg + inputs + methods + shift + " --json " + b);
  ASSERT_EQ(from_file.code, 0) << from_file.err;
  const nlohmann::json ja = nlohmann::json::parse(read_bytes(a)), jb = nlohmann::json::parse(read_bytes(b));
  EXPECT_EQ(ja["input_invariance"]["shift"], nlohmann::json::parse("[-1.0, 0.5, 2.0]"));
  EXPECT_EQ(ja["input_invariance"]["methods"], jb["input_invariance"]["methods"]);
  EXPECT_EQ(ja["input_invariance"]["methods"]["gradient"]["passed"], true);
  EXPECT_EQ(ja["input_invariance"]["methods"]["input_x_gradient"]["passed"], false);
  expect_clear_error(sieve_cli("evaluate " + vgg + inputs + methods + "-1+0.5"),
                     "input shift of 2 values for an input of 3 channels");
  expect_clear_error(sieve_cli("evaluate " + vgg + inputs + methods + "-1+x+2"),
                     "parameter shift=-1+x+2 must be a number, numbers joined by '+'");
  values[1] = std::nanf("");
  write_npy(shift, values);
  expect_clear_error(sieve_cli("evaluate " + vgg + inputs + methods + shift),
                     "holds a value that is not a finite number");
}

TEST(CliEvaluate, ScoresExplanationsFromAFile) {
  // The gradient's explanations written by explain, then scored from the file: the same curves.
  const std::string npy = temp("gradient_four.npy").string();
  const CliRun e = sieve_cli("explain " + kCnn + kFour + "-m gradient --out " + npy);
  ASSERT_EQ(e.code, 0) << e.err;
  const std::string a = temp("from_method.json").string(), b = temp("from_file.json").string();
  const std::string metric = "--metric region_perturbation:size=7,steps=16,fill=zero --json ";
  ASSERT_EQ(sieve_cli("evaluate " + kCnn + kFour + "-m gradient " + metric + a).code, 0);
  const CliRun f = sieve_cli("evaluate " + kCnn + kFour + "--explanations " + npy + " " + metric + b);
  ASSERT_EQ(f.code, 0) << f.err;
  const nlohmann::json ja = nlohmann::json::parse(read_bytes(a)), jb = nlohmann::json::parse(read_bytes(b));
  // Both runs explain with the same batches, and the perturbed copies run in the same batches.
  EXPECT_EQ(ja["region_perturbation"]["methods"]["gradient"]["morf"],
            jb["region_perturbation"]["methods"][npy]["morf"]);
}

TEST(CliEvaluate, BadInputGetsOneClearMessage) {
  const std::string wrong = temp("wrong_shape.npy").string();
  write_npy(wrong, Tensor(Shape{3, 1, 28, 28}));
  expect_clear_error(
      sieve_cli("evaluate " + kCnn + kFour + "--explanations " + wrong + " --metric region_perturbation"),
      "shape [3,1,28,28] does not match the inputs [4,1,28,28]");
  expect_clear_error(
      sieve_cli("evaluate " + kCnn + kFour + "-m gradient --metric region_perturbation:size=29"),
      "tile size 29 is larger than the input (28×28)");
  expect_clear_error(
      sieve_cli("evaluate " + kCnn + kFour + "-m gradient --metric region_perturbation:size=14,steps=5"),
      "steps=5 is more than the 4 tiles of size 14");
  expect_clear_error(sieve_cli("evaluate " + kCnn + kFour + "-m gradient --metric region_perturbaton"),
                     "unknown metric 'region_perturbaton' (did you mean 'region_perturbation'?)");
  expect_clear_error(
      sieve_cli("evaluate " + kCnn + kFour + "-m gradient --metric region_perturbation:tile=4"),
      "metric 'region_perturbation' has no parameter 'tile'");
  expect_clear_error(sieve_cli("evaluate " + kCnn + kFour + "-m gradient --metric sparseness:k=1"),
                     "metric 'sparseness' has no parameter 'k'");
  expect_clear_error(sieve_cli("evaluate " + kCnn + kFour + "--metric sparseness"),
                     "give the explanations to evaluate");
  expect_clear_error(sieve_cli("evaluate " + kCnn + kFour + "-m gradient --target all --metric sparseness"),
                     "evaluate tracks one class per input");
}

}  // namespace
}  // namespace sieve
