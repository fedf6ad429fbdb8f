// sieve explain on models with several inputs or outputs: --input, --wrt, --output and the flat index,
// sum and mask forms of --target, against the PyTorch references of tools/make_multi_io_models.py; and
// one clear error with a non-zero exit for each kind of bad input.

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "sieve/io/npy.hpp"
#include "support/test_files.hpp"

namespace sieve {
namespace {

const std::string kModels = std::string(SIEVE_TEST_DATA) + "/models/";

std::string data(const std::string& name) {
  return kModels + name + ".npy";
}

void expect_clear_error(const CliRun& r, const std::string& fragment) {
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("sieve: error:"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(fragment), std::string::npos) << "expected '" << fragment << "' in: " << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << "one line: " << r.err;
}

// The library tests compare against the references within float32 rounding (tests/analyzers/
// multi_input_test.cpp); here the same numbers pass through the command line and .npy files, which
// store float32 exactly, so the same 1e-4 of the largest value that bounds those differences holds.
void expect_file_matches(const std::string& path, const std::string& reference) {
  const Tensor got = read_npy(path), want = read_npy(data(reference));
  ASSERT_EQ(got.shape(), want.shape()) << reference;
  float scale = 0.0f;
  for (float v : want.values()) scale = std::max(scale, std::abs(v));
  for (int64_t i = 0; i < got.size(); ++i)
    ASSERT_NEAR(got[i], want[i], 1e-4f * scale) << reference << " at " << i;
}

std::string multi_input_explain(const std::string& wrt, const std::string& extra) {
  std::string args =
      "explain " + kModels + "multi_input.onnx " + data("multi_input_" + wrt) + " --wrt " + wrt;
  for (const std::string name : {"x", "h", "ids", "offset"}) {
    if (name != wrt) args += " --input " + name + "=" + data("multi_input_" + name);
  }
  return args + " " + extra;
}

TEST(MultiInputCli, ExplainsEachInputWithTheOthersFixed) {
  const std::string out = temp("multi_input_h.npy").string();
  CliRun r = sieve_cli(multi_input_explain("h", "-m gradient --target 2 --out " + out));
  ASSERT_EQ(r.code, 0) << r.err;
  expect_file_matches(out, "multi_input_gradient_h");
  const std::string tokens = temp("multi_input_ids.npy").string();
  r = sieve_cli(multi_input_explain("ids", "-m input_x_gradient --target 2 --out " + tokens));
  ASSERT_EQ(r.code, 0) << r.err;
  expect_file_matches(tokens, "multi_input_input_x_gradient_ids");
}

TEST(MultiInputCli, TargetsAnOutputByNameWithAFlatIndexASumOrAMask) {
  const std::string base =
      "explain " + kModels + "two_outputs.onnx " + data("two_outputs_image") + " -m gradient";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"--output score --target 1", "two_outputs_gradient_score_1"},
      {"--output seg --target 40", "two_outputs_gradient_seg_flat40"},
      {"--output seg --target sum", "two_outputs_gradient_seg_sum"},
      {"--output seg --target " + data("two_outputs_mask_batch"), "two_outputs_gradient_seg_mask_batch"}};
  for (const auto& [args, reference] : cases) {
    const std::string out = temp(reference + ".npy").string();
    const CliRun r = sieve_cli(base + " " + args + " --out " + out);
    ASSERT_EQ(r.code, 0) << args << ": " << r.err;
    expect_file_matches(out, reference);
  }
}

TEST(MultiInputCli, BadInputsGiveOneClearError) {
  const std::string out = " -m gradient --out " + temp("multi_input_bad.npy").string();
  expect_clear_error(sieve_cli(multi_input_explain("h", "--input mask=1" + out)),
                     "unknown input 'mask': the model's inputs are x, h, ids, offset");
  expect_clear_error(sieve_cli("explain " + kModels + "multi_input.onnx " + data("multi_input_h") +
                               " --wrt h --input x=" + data("multi_input_x") + out),
                     "input 'ids' is not given");
  expect_clear_error(sieve_cli(multi_input_explain("h", "--input x=" + data("multi_input_h") + out)),
                     "input 'x' has shape [3,3] but the model expects [?,4]");
  expect_clear_error(sieve_cli(multi_input_explain("h", "--input offset=0.5" + out)),
                     "input 'offset' is INT64 but element 0 is 0.500000");
  expect_clear_error(sieve_cli(multi_input_explain("offset", out)),
                     "input 'offset' is INT64 and feeds no embedding lookup");
  expect_clear_error(sieve_cli("explain " + kModels + "multi_input.onnx " + data("multi_input_h") + out),
                     "choose the input to explain (--wrt): the model has several float inputs: x, h");
  expect_clear_error(sieve_cli("explain " + kModels + "two_outputs.onnx " + data("two_outputs_image") +
                               " --output seg --target " + data("two_outputs_image") + out),
                     "target mask of shape [2,2,6,6] does not fit the output [2,3,6,6]");
}

}  // namespace
}  // namespace sieve
