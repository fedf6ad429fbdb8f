// The command line end to end: sieve info / predict / explain / methods, and one clear error with a
// non-zero exit for every kind of bad input.

#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "sieve/io/image.hpp"
#include "sieve/io/npy.hpp"
#include "sieve/patterns.hpp"
#include "support/test_files.hpp"

namespace fs = std::filesystem;

namespace sieve {
namespace {

const std::string kShared = std::string(SIEVE_TEST_DATA) + "/shared/";

// A small valid graph x[1,4] → Relu → y, to be broken in different ways.
onnx::ModelProto relu_model() {
  onnx::ModelProto m;
  m.set_ir_version(8);
  m.add_opset_import()->set_version(13);
  auto* g = m.mutable_graph();
  g->set_name("g");
  auto add_io = [](onnx::ValueInfoProto* v, const std::string& name, std::vector<int64_t> dims) {
    v->set_name(name);
    auto* t = v->mutable_type()->mutable_tensor_type();
    t->set_elem_type(onnx::TensorProto::FLOAT);
    for (int64_t d : dims) t->mutable_shape()->add_dim()->set_dim_value(d);
  };
  add_io(g->add_input(), "x", {1, 4});
  add_io(g->add_output(), "y", {1, 4});
  auto* n = g->add_node();
  n->set_op_type("Relu");
  n->set_name("relu");
  n->add_input("x");
  n->add_output("y");
  return m;
}

std::string save(const onnx::ModelProto& m, const std::string& name) {
  const fs::path p = temp(name);
  std::string bytes;
  m.SerializeToString(&bytes);
  write_bytes(p, bytes);
  return p.string();
}

void expect_clear_error(const CliRun& r, const std::string& fragment) {
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("sieve: error:"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(fragment), std::string::npos) << "expected '" << fragment << "' in: " << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << "one line: " << r.err;
}

TEST(Cli, InfoDescribesTheModel) {
  const CliRun r = sieve_cli("info " + kShared + "models/cnn.onnx");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("input [1,1,28,28]"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Conv×3"), std::string::npos);
  EXPECT_NE(r.out.find("all operators supported: yes"), std::string::npos);
  const CliRun j = sieve_cli("info --json " + kShared + "models/mlp.onnx");
  ASSERT_EQ(j.code, 0) << j.err;
  const auto info = nlohmann::json::parse(j.out);
  EXPECT_EQ(info["opset"], 13);
  EXPECT_EQ(info["parameters"], 784 * 256 + 256 + 256 * 128 + 128 + 128 * 10 + 10);
}

// predict reproduces the stored logits, for the dynamic-batch model and the batch-1 model (run per input).
TEST(Cli, PredictReproducesReferenceLogits) {
  for (const char* m : {"cnn", "mlp"}) {
    const Tensor reference = read_npy(kShared + "refs/" + m + "/logits.npy");
    for (const std::string suffix : {"_dynbatch.onnx", ".onnx"}) {
      const CliRun r = sieve_cli("predict --json --top 3 " + kShared + "models/" + m + suffix + " " +
                                 kShared + "models/" + m + "_inputs.npy");
      ASSERT_EQ(r.code, 0) << r.err;
      const auto j = nlohmann::json::parse(r.out);
      ASSERT_EQ(j["predictions"].size(), 16u);
      for (size_t i = 0; i < 16; ++i) {
        const auto& p = j["predictions"][i];
        EXPECT_EQ(p["input"], kShared + "models/" + m + "_inputs.npy[" + std::to_string(i) + "]");
        ASSERT_EQ(p["logits"].size(), 10u);
        for (size_t c = 0; c < 10; ++c) {
          const double ref = reference[static_cast<int64_t>(i * 10 + c)];
          EXPECT_NEAR(p["logits"][c].get<double>(), ref, 1e-4 * std::max(1.0, std::abs(ref))) << m << suffix;
        }
        EXPECT_EQ(p["top"].size(), 3u);
      }
    }
  }
}

TEST(Cli, ExplainWritesArraysAndPictures) {
  const fs::path out = temp("explain_out");
  fs::remove_all(out);
  fs::create_directories(out);
  const std::string model = kShared + "models/cnn_dynbatch.onnx", inputs = kShared + "models/cnn_inputs.npy";
  CliRun r =
      sieve_cli("explain " + model + " " + inputs + " --method gradient --out " + (out / "g.npy").string());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(read_npy((out / "g.npy").string()).shape(), (Shape{16, 1, 28, 28}));
  r = sieve_cli("explain " + model + " " + inputs +
                " -m gradient -m integrated_gradients:steps=8 --target 3 --out " + out.string() + " --grid " +
                (out / "grid.png").string());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(fs::exists(out / "cnn_inputs.npy_00__gradient__class3.npy"));
  EXPECT_TRUE(fs::exists(out / "cnn_inputs.npy_15__integrated_gradients_steps_8__class3.png"));
  const Image g = read_image((out / "grid.png").string());
  EXPECT_GT(g.width, 3 * 28);
  EXPECT_GT(g.height, 16 * 28);
  r = sieve_cli("explain " + model + " " + inputs + " -m gradient --target all --out " +
                (out / "all.npy").string());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(read_npy((out / "all.npy").string()).shape(), (Shape{16, 10, 1, 28, 28}));
}

// LIME without a mask writes the superpixels it used beside each explanation (and in the manifest), the
// same as the library's lime_segments; prediction_difference reads --data.
TEST(Cli, ExplainWritesLimeSegmentsAndReadsData) {
  const fs::path out = temp("explain_segments_out");
  fs::remove_all(out);
  const std::string model = kShared + "models/cnn_dynbatch.onnx", inputs = kShared + "models/cnn_inputs.npy";
  CliRun r = sieve_cli("explain " + model + " " + inputs +
                       "[0:2] -m lime:n=50,region_size=7 --save npy --out " + out.string());
  ASSERT_EQ(r.code, 0) << r.err;
  const Tensor segments =
      read_npy((out / "cnn_inputs.npy_0__lime_n_50_region_size_7__segments.npy").string());
  EXPECT_EQ(segments.shape(), (Shape{28, 28}));
  std::ifstream manifest(out / "manifest.json");
  const nlohmann::json m = nlohmann::json::parse(manifest);
  EXPECT_EQ(m["explanations"][1]["outputs"].size(), 2u);
  r = sieve_cli("explain " + model + " " + inputs + "[0:2] -m lime:n=50 --out " +
                (out / "lime.npy").string());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(read_npy((out / "lime__lime_n_50__segments.npy").string()).shape(), (Shape{2, 28, 28}));
  r = sieve_cli("explain " + model + " " + inputs +
                "[0:1] -m prediction_difference:mode=marginal,n=2 --data " + inputs + " --out " +
                (out / "pda.npy").string());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(read_npy((out / "pda.npy").string()).shape(), (Shape{1, 1, 28, 28}));
  expect_clear_error(sieve_cli("explain " + model + " " + inputs + "[0:1] -m prediction_difference --out " +
                               (out / "pda.npy").string()),
                     "method 'prediction_difference' samples its windows from data: give --data");
}

TEST(Cli, MethodsListsEveryMethodWithDefaults) {
  const CliRun r = sieve_cli("methods");
  ASSERT_EQ(r.code, 0);
  for (const char* m :
       {"gradient", "input_x_gradient", "integrated_gradients", "smoothgrad", "deconvnet", "guided_backprop",
        "lrp.epsilon_gamma_box", "lrp.sequential_preset_b", "deep_taylor.bounded"}) {
    EXPECT_NE(r.out.find(m), std::string::npos) << m;
  }
  EXPECT_NE(r.out.find("steps=32"), std::string::npos);
}

TEST(Cli, BadArgumentsGiveOneClearError) {
  const std::string model = kShared + "models/cnn_dynbatch.onnx", inputs = kShared + "models/cnn_inputs.npy";
  const std::string out = temp("bad_args.npy").string();
  expect_clear_error(sieve_cli("explain " + model + " " + inputs + " -m no_such --out " + out),
                     "unknown method 'no_such'");
  expect_clear_error(
      sieve_cli("explain " + model + " " + inputs + " -m integrated_gradients:steps=-3 --out " + out),
      "steps=-3");
  expect_clear_error(sieve_cli("explain " + model + " " + inputs + " -m gradient:foo=1 --out " + out),
                     "no parameter 'foo'");
  expect_clear_error(sieve_cli("explain " + model + " " + inputs + " -m gradient --target 10 --out " + out),
                     "target index 10 out of range");
  expect_clear_error(sieve_cli("predict " + model + " /no/such/file.npy"), "/no/such/file.npy");
  EXPECT_NE(sieve_cli("predict").code, 0);
}

TEST(Cli, RelevanceMethodsRulesAndConservation) {
  const std::string model = kShared + "models/cnn_dynbatch.onnx", inputs = kShared + "models/cnn_inputs.npy";
  const std::string bounds = ":low=-0.8101983002832861,high=2.0226628895184136";
  const fs::path out = temp("lrp.npy");
  CliRun r = sieve_cli("explain " + model + " " + inputs + " -m lrp.epsilon_gamma_box" + bounds + " --out " +
                       out.string());
  ASSERT_EQ(r.code, 0) << r.err;
  const Tensor got = read_npy(out.string());
  const Tensor ref = read_npy(kShared + "refs/cnn/lrp_composite_epsilon_gamma_box.npy");
  ASSERT_EQ(got.shape(), ref.shape());
  float worst = 0.0f, scale = 0.0f;
  for (int64_t i = 0; i < ref.size(); ++i) {
    worst = std::max(worst, std::abs(got[i] - ref[i]));
    scale = std::max(scale, std::abs(ref[i]));
  }
  EXPECT_LE(worst, 1e-4f * scale);

  // User rules go ahead of the preset; --explain-rules shows the assignment without --out.
  r = sieve_cli("explain " + model + " " + inputs + " -m lrp.epsilon_plus --rule first:flat " +
                "--rule 'Gemm:epsilon:epsilon=0.1' --explain-rules");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("/0/Conv"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("flat"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("z_plus"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("epsilon:epsilon=0.1"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("winner-take-all"), std::string::npos) << r.out;

  // A JSON composite for the plain lrp method.
  const fs::path composite = temp("composite.json");
  std::ofstream(composite) << R"({"rules": [{"match": "Conv", "rule": "z_plus"},
                                            {"match": "Gemm", "rule": "epsilon", "params": {"epsilon": 1e-6}}]})";
  const fs::path from_json = temp("lrp_json.npy");
  r = sieve_cli("explain " + model + " " + inputs + " -m lrp --composite " + composite.string() + " --out " +
                from_json.string());
  ASSERT_EQ(r.code, 0) << r.err;
  const Tensor json_result = read_npy(from_json.string());
  const Tensor plus = read_npy(kShared + "refs/cnn/lrp_composite_epsilon_plus.npy");
  scale = 0.0f;
  worst = 0.0f;
  for (int64_t i = 0; i < plus.size(); ++i) {
    worst = std::max(worst, std::abs(json_result[i] - plus[i]));
    scale = std::max(scale, std::abs(plus[i]));
  }
  EXPECT_LE(worst, 1e-4f * scale);

  // Deep Taylor on a bias-free chain conserves up to the bias-free first layer: every ratio is printed.
  r = sieve_cli("explain " + model + " " + inputs + " -m deep_taylor --conservation");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("sum R in"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("/11/Gemm"), std::string::npos) << r.out;
}

TEST(Cli, BadRelevanceArgumentsGiveOneClearError) {
  const std::string model = kShared + "models/cnn_dynbatch.onnx", inputs = kShared + "models/cnn_inputs.npy";
  const std::string out = temp("bad_lrp.npy").string();
  const std::string run = "explain " + model + " " + inputs + " ";
  expect_clear_error(sieve_cli(run + "-m lrp.epsilon_gamma_box --out " + out), "input's value range");
  expect_clear_error(sieve_cli(run + "-m lrp.z --rule Lstm:z --out " + out), "unknown rule predicate 'Lstm'");
  expect_clear_error(sieve_cli(run + "-m lrp.z --rule Conv:zz --out " + out), "unknown rule 'zz'");
  expect_clear_error(sieve_cli(run + "-m lrp.alpha_beta:alpha=3,beta=1 --out " + out),
                     "alpha − beta must be 1");
  expect_clear_error(sieve_cli(run + "-m lrp.gamma:gamma=-1 --out " + out), "gamma=-1");
  expect_clear_error(sieve_cli(run + "-m gradient --rule Conv:z --out " + out), "apply to relevance methods");
  expect_clear_error(sieve_cli(run + "-m lrp --composite /no/such.json --out " + out), "/no/such.json");
  const fs::path broken = temp("broken.json");
  std::ofstream(broken) << "{\"rules\": [";
  expect_clear_error(sieve_cli(run + "-m lrp --composite " + broken.string() + " --out " + out),
                     "not valid JSON");
}

TEST(Cli, MalformedModelsAreRefused) {
  const std::string good = read_bytes(kShared + "models/mlp.onnx");
  const fs::path truncated = temp("truncated.onnx"), random = temp("random.onnx");
  write_bytes(truncated, good.substr(0, good.size() / 2));
  std::mt19937 rng(3);
  std::string noise(4096, '\0');
  for (char& c : noise) c = static_cast<char>(rng());
  write_bytes(random, noise);
  const std::string input = " " + kShared + "models/mlp_inputs.npy";
  expect_clear_error(sieve_cli("info " + truncated.string()), "not a valid ONNX model");
  expect_clear_error(sieve_cli("predict " + random.string() + input), "not a valid ONNX model");

  onnx::ModelProto m = relu_model();
  m.mutable_graph()->mutable_node(0)->set_op_type("Einsum");
  m.mutable_graph()->mutable_node(0)->set_name("my_einsum");
  const CliRun unsupported = sieve_cli("info " + save(m, "unsupported.onnx"));
  expect_clear_error(unsupported, "Einsum (node 'my_einsum')");
  EXPECT_NE(unsupported.err.find("opset 13"), std::string::npos);

  m = relu_model();
  auto* gemm = m.mutable_graph()->mutable_node(0);
  gemm->set_op_type("Gemm");
  gemm->add_input("missing_weight");
  expect_clear_error(sieve_cli("info " + save(m, "missing.onnx")), "missing_weight");

  m = relu_model();  // x → relu(a) → b, b → relu → a: a cycle
  auto* g = m.mutable_graph();
  g->mutable_node(0)->set_input(0, "b");
  g->mutable_node(0)->set_output(0, "a");
  auto* second = g->add_node();
  second->set_op_type("Relu");
  second->set_name("second");
  second->add_input("a");
  second->add_output("b");
  g->mutable_output(0)->set_name("b");
  expect_clear_error(sieve_cli("info " + save(m, "cycle.onnx")), "cycle.onnx");

  m = relu_model();
  m.mutable_graph()
      ->mutable_input(0)
      ->mutable_type()
      ->mutable_tensor_type()
      ->mutable_shape()
      ->mutable_dim(1)
      ->set_dim_value(int64_t{1} << 40);
  m.mutable_graph()
      ->mutable_output(0)
      ->mutable_type()
      ->mutable_tensor_type()
      ->mutable_shape()
      ->mutable_dim(1)
      ->set_dim_value(int64_t{1} << 40);
  expect_clear_error(sieve_cli("info " + save(m, "huge_input.onnx")), "elements");

  m = relu_model();
  auto* init = m.mutable_graph()->add_initializer();
  init->set_name("w");
  init->set_data_type(onnx::TensorProto::FLOAT);
  init->add_dims(int64_t{1} << 20);
  init->add_dims(int64_t{1} << 20);
  init->set_raw_data(std::string(16, '\0'));
  expect_clear_error(sieve_cli("info " + save(m, "huge_initializer.onnx")), "initializer 'w'");
}

TEST(Cli, MalformedInputsAreRefused) {
  const std::string model = kShared + "models/cnn_dynbatch.onnx ";
  // Wrong shape.
  write_npy(temp("wrong.npy").string(), Tensor(Shape{2, 3, 28, 28}));
  expect_clear_error(sieve_cli("predict " + model + temp("wrong.npy").string()),
                     "does not fit the model input");
  // NaN.
  Tensor nan_input(Shape{1, 1, 28, 28});
  nan_input[5] = std::nanf("");
  write_npy(temp("nan.npy").string(), nan_input);
  expect_clear_error(sieve_cli("predict " + model + temp("nan.npy").string()), "NaN at element 5");
  // Corrupt npy: header promises more data than the file has.
  std::string npy = read_bytes(kShared + "models/cnn_inputs.npy");
  write_bytes(temp("short.npy"), npy.substr(0, 300));
  expect_clear_error(sieve_cli("predict " + model + temp("short.npy").string()), "truncated data");
  // Corrupt PNG and JPEG, and a text file that claims to be an image.
  Image img{28, 28, 1, std::vector<uint8_t>(28 * 28, 128)};
  write_png(temp("ok.png").string(), img);
  std::string png = read_bytes(temp("ok.png"));
  write_bytes(temp("corrupt.png"), png.substr(0, png.size() - 20));
  expect_clear_error(sieve_cli("predict " + model + temp("corrupt.png").string() + " --color grayscale"),
                     "corrupt PNG");
  write_bytes(temp("corrupt.jpg"), std::string("\xff\xd8\xff\xe0", 4) + std::string(200, '\x11'));
  expect_clear_error(sieve_cli("predict " + model + temp("corrupt.jpg").string() + " --color grayscale"),
                     "corrupt JPEG");
  write_bytes(temp("text.png"), "hello, I am not an image\n");
  expect_clear_error(sieve_cli("predict " + model + temp("text.png").string()), "not a PNG or JPEG file");
}

// Largest per-input |got − ref| relative to the input's max|ref| (inputs along the first axis).
double worst_per_input(const Tensor& got, const Tensor& ref) {
  EXPECT_EQ(got.shape(), ref.shape());
  if (got.shape() != ref.shape()) return 1.0;
  const int64_t n = ref.dim(0), per = ref.size() / n;
  double worst = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    double scale = 0.0, diff = 0.0;
    for (int64_t k = 0; k < per; ++k) {
      scale = std::max(scale, static_cast<double>(std::abs(ref[i * per + k])));
      diff = std::max(diff, static_cast<double>(std::abs(got[i * per + k] - ref[i * per + k])));
    }
    worst = std::max(worst, diff / scale);
  }
  return worst;
}

Tensor npy_rows(const Tensor& t, int64_t begin, int64_t count) {
  const int64_t per = t.size() / t.dim(0);
  Shape shape = t.shape();
  shape[0] = count;
  return Tensor(shape, std::span<const float>(t.data() + begin * per, static_cast<size_t>(count * per)));
}

// fit-patterns on the shared mlp's training images, then pattern.net (with --patterns) and
// pattern.attribution (with the method parameter) equal the numpy references.
TEST(Cli, FitPatternsThenExplainMatchesReference) {
  const std::string model = kShared + "models/mlp_dynbatch.onnx", inputs = kShared + "models/mlp_inputs.npy";
  const fs::path patterns = temp("mlp_relu.safetensors");
  CliRun r = sieve_cli("fit-patterns " + model + " --data " + kShared +
                       "models/fmnist_train2000.npy --batch 300 --out " + patterns.string());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("fitted relu patterns of 3 layer(s) on 2000 input(s)"), std::string::npos) << r.out;
  const fs::path net = temp("patternnet.npy"), attribution = temp("patternattribution.npy");
  r = sieve_cli("explain " + model + " " + inputs + " -m pattern.net --patterns " + patterns.string() +
                " --out " + net.string());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_LE(worst_per_input(read_npy(net.string()), read_npy(kShared + "refs/mlp/patternnet_relu.npy")),
            1e-4);
  r = sieve_cli("explain " + model + " " + inputs + " -m pattern.attribution:patterns=" + patterns.string() +
                " --out " + attribution.string());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_LE(worst_per_input(read_npy(attribution.string()),
                            read_npy(kShared + "refs/mlp/patternattribution_relu.npy")),
            1e-4);
}

// Two halves of the training data fitted separately and merged with --merge give the whole fit's
// statistics (to float64 rounding) and patterns.
TEST(Cli, FitPatternsMergeEqualsTheWholeFit) {
  const std::string model = kShared + "models/mlp_dynbatch.onnx",
                    data = kShared + "models/fmnist_train2000.npy";
  const Tensor all = read_npy(data);
  // The split falls on a batch boundary (704 = 22 · 32), so every sample runs in the same batch of 32 at
  // the same position as in the whole fit: identical float32 forward values, and the merged float64 sums
  // equal the whole fit's up to the rounding of the additions (below 1e-12 of the largest).
  write_npy(temp("first.npy").string(), npy_rows(all, 0, 704));
  write_npy(temp("second.npy").string(), npy_rows(all, 704, 1296));
  const std::string fit = "fit-patterns " + model + " --type linear --batch 32 ";
  CliRun r = sieve_cli(fit + "--data " + data + " --out " + temp("whole.safetensors").string());
  ASSERT_EQ(r.code, 0) << r.err;
  for (const char* part : {"first", "second"}) {
    r = sieve_cli(fit + "--data " + temp(std::string(part) + ".npy").string() + " --out " +
                  temp(std::string(part) + ".safetensors").string());
    ASSERT_EQ(r.code, 0) << r.err;
  }
  r = sieve_cli(fit + "--merge " + temp("first.safetensors").string() + " " +
                temp("second.safetensors").string() + " --out " + temp("merged.safetensors").string());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("on 2000 input(s)"), std::string::npos) << r.out;
  const PatternFile whole = read_pattern_file(temp("whole.safetensors").string());
  const PatternFile merged = read_pattern_file(temp("merged.safetensors").string());
  EXPECT_EQ(merged.fingerprint, whole.fingerprint);
  EXPECT_EQ(merged.type, PatternType::linear);
  EXPECT_EQ(merged.statistics.images, 2000);
  EXPECT_NE(merged.data_description.find("first.npy"), std::string::npos) << merged.data_description;
  EXPECT_NE(merged.data_description.find("second.npy"), std::string::npos) << merged.data_description;
  ASSERT_EQ(merged.statistics.layers().size(), 3u);
  ASSERT_EQ(whole.statistics.layers().size(), 3u);
  for (size_t l = 0; l < 3; ++l) {
    const LayerStatistics &m = merged.statistics.layers()[l], &w = whole.statistics.layers()[l];
    EXPECT_EQ(m.count, w.count);
    EXPECT_EQ(m.count_pos, w.count_pos);
    for (std::vector<double> LayerStatistics::*field :
         {&LayerStatistics::sum_y, &LayerStatistics::sum_y_pos, &LayerStatistics::sum_x,
          &LayerStatistics::sum_x_pos, &LayerStatistics::sum_xy, &LayerStatistics::sum_xy_pos}) {
      const std::vector<double>&a = m.*field, &b = w.*field;
      ASSERT_EQ(a.size(), b.size());
      double scale = 0.0, diff = 0.0;
      for (size_t i = 0; i < a.size(); ++i) {
        scale = std::max(scale, std::abs(b[i]));
        diff = std::max(diff, std::abs(a[i] - b[i]));
      }
      EXPECT_LE(diff, 1e-12 * scale) << "layer " << l;
    }
    // The patterns are ratios of those sums stored in float32: equal up to their float32 rounding.
    const Tensor &pm = merged.patterns[l].positive, &pw = whole.patterns[l].positive;
    ASSERT_EQ(pm.shape(), pw.shape());
    float scale = 0.0f, diff = 0.0f;
    for (int64_t i = 0; i < pw.size(); ++i) {
      scale = std::max(scale, std::abs(pw[i]));
      diff = std::max(diff, std::abs(pm[i] - pw[i]));
    }
    EXPECT_LE(diff, 1e-6f * scale) << "layer " << l;
  }
  // And the merged file explains like the whole one.
  const std::string inputs = kShared + "models/mlp_inputs.npy";
  for (const char* file : {"whole", "merged"}) {
    r = sieve_cli("explain " + model + " " + inputs + " -m pattern.net --patterns " +
                  temp(std::string(file) + ".safetensors").string() + " --out " +
                  temp(std::string(file) + "_net.npy").string());
    ASSERT_EQ(r.code, 0) << r.err;
  }
  EXPECT_LE(
      worst_per_input(read_npy(temp("merged_net.npy").string()), read_npy(temp("whole_net.npy").string())),
      1e-5);
  EXPECT_LE(worst_per_input(read_npy(temp("merged_net.npy").string()),
                            read_npy(kShared + "refs/mlp/patternnet_linear.npy")),
            1e-4);
}

TEST(Cli, BadPatternArgumentsGiveOneClearError) {
  const std::string mlp = kShared + "models/mlp_dynbatch.onnx", cnn = kShared + "models/cnn_dynbatch.onnx";
  const std::string data = kShared + "models/mlp_inputs.npy", out = temp("bad_patterns.safetensors").string();
  expect_clear_error(sieve_cli("fit-patterns " + mlp + " --out " + out), "either --data or --merge");
  expect_clear_error(
      sieve_cli("fit-patterns " + mlp + " --data " + data + " --merge " + out + " --out " + out),
      "either --data or --merge");
  expect_clear_error(sieve_cli("fit-patterns " + mlp + " --data " + data + " --type sigmoid --out " + out),
                     "unknown pattern type 'sigmoid'");
  expect_clear_error(sieve_cli("fit-patterns " + mlp + " --merge /no/such.safetensors --out " + out),
                     "/no/such.safetensors");
  const std::string explain = "explain " + mlp + " " + data + " --out " + temp("bad_patterns.npy").string();
  expect_clear_error(sieve_cli(explain + " -m pattern.net"), "--patterns");
  expect_clear_error(sieve_cli(explain + " -m pattern.attribution"), "--patterns");
  // A pattern file of the cnn used with the mlp, for explaining and for merging.
  const fs::path cnn_patterns = temp("cnn_patterns.safetensors");
  const CliRun r = sieve_cli("fit-patterns " + cnn + " --data " + kShared + "models/cnn_inputs.npy --out " +
                             cnn_patterns.string());
  ASSERT_EQ(r.code, 0) << r.err;
  expect_clear_error(sieve_cli(explain + " -m pattern.net --patterns " + cnn_patterns.string()),
                     "fitted for another model");
  expect_clear_error(sieve_cli("fit-patterns " + mlp + " --merge " + cnn_patterns.string() + " --out " + out),
                     "fitted for another model");
  // Not a pattern file.
  expect_clear_error(sieve_cli(explain + " -m pattern.net --patterns " + data), data);
}

}  // namespace
}  // namespace sieve
