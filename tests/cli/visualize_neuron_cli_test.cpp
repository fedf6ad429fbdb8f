// sieve visualize-neuron end to end on the bundled model: one PNG per target, the grid, the values per
// step as CSV and SVG, class names from the profile, the data mean and prior, and one clear message for
// each kind of bad input.

#include <gtest/gtest.h>

#include <filesystem>
#include <sstream>

#include "sieve/io/image.hpp"
#include "support/test_files.hpp"

namespace sieve {
namespace {

const std::string kExamples = std::string(SIEVE_TEST_DATA) + "/../../examples/";
const std::string kModel = kExamples + "fashion_cnn.onnx ";

void expect_clear_error(const CliRun& r, const std::string& fragment) {
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("sieve: error:"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(fragment), std::string::npos) << "expected '" << fragment << "' in: " << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << "one line: " << r.err;
}

TEST(CliVisualizeNeuron, WritesImagesValuesAndChart) {
  const std::filesystem::path out = temp("visualize_neuron");
  std::filesystem::remove_all(out);
  const CliRun r = sieve_cli("visualize-neuron " + kModel + "--target Bag --target 0 --target /6/Relu:2 " +
                             "--steps 20 --jitter 1 --blur-every 5 --out " + out.string());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("Bag"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("T-shirt/top"), std::string::npos) << r.out;
  for (const char* f : {"0_Bag.png", "1_T-shirt_top.png", "2__6_Relu_2.png", "grid.png"})
    EXPECT_TRUE(std::filesystem::exists(out / f)) << f;
  const Image image = read_image((out / "0_Bag.png").string());
  EXPECT_EQ(image.width, 28);
  EXPECT_EQ(image.height, 28);
  std::istringstream csv(read_bytes(out / "values.csv"));
  std::string line;
  std::getline(csv, line);
  EXPECT_EQ(line, "step,\"Bag\",\"T-shirt/top\",\"/6/Relu:2\"");
  int rows = 0;
  while (std::getline(csv, line)) ++rows;
  EXPECT_EQ(rows, 21);
  const std::string svg = read_bytes(out / "values.svg");
  EXPECT_NE(svg.find("<svg"), std::string::npos);
  EXPECT_NE(svg.find("T-shirt/top"), std::string::npos);
}

TEST(CliVisualizeNeuron, StartsFromTheDataMeanWithThePrior) {
  const std::filesystem::path out = temp("visualize_neuron_prior");
  const CliRun r = sieve_cli("visualize-neuron " + kModel + "--target Trouser --steps 10 --start mean " +
                             "--prior-weight 0.01 --data " + kExamples + "fashion_train_2000.idx.gz --out " +
                             out.string());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(std::filesystem::exists(out / "0_Trouser.png"));
}

TEST(CliVisualizeNeuron, BadInputsGetOneClearMessage) {
  const std::string out = " --out " + temp("visualize_neuron_bad").string();
  expect_clear_error(sieve_cli("visualize-neuron " + kModel + "--target Bags" + out), "did you mean 'Bag'");
  expect_clear_error(sieve_cli("visualize-neuron " + kModel + "--target 12" + out), "class 12 out of range");
  expect_clear_error(sieve_cli("visualize-neuron " + kModel + "--target /6/Relu:500" + out),
                     "channel 500 out of range");
  expect_clear_error(sieve_cli("visualize-neuron " + kModel + "--target nowhere:1" + out),
                     "unknown node 'nowhere'");
  expect_clear_error(sieve_cli("visualize-neuron " + kModel + "--target 1 --start mean" + out),
                     "--start mean needs --data");
  expect_clear_error(sieve_cli("visualize-neuron " + kModel + "--target 1 --objective softmax" + out),
                     "objective");
  expect_clear_error(sieve_cli("visualize-neuron " + kModel + "--target 1 --steps 0" + out), "steps");
  expect_clear_error(sieve_cli("visualize-neuron " + kExamples + "missing.onnx --target 1" + out),
                     "missing.onnx");
}

}  // namespace
}  // namespace sieve
