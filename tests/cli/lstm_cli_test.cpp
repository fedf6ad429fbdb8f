// sieve explain on the toy LSTM of the book's ch. 11: --explain-rules names the LSTM treatment with the
// lstm= product rule, and the relevance it writes is the library's (tests/rules/lstm_relevance_test.cpp
// checks that against the reference).

#include <gtest/gtest.h>

#include "sieve/io/npy.hpp"
#include "support/test_files.hpp"

namespace sieve {
namespace {

const std::string kModels = std::string(SIEVE_TEST_DATA) + "/models/";

TEST(LstmCli, ExplainRulesNamesTheLstmTreatment) {
  const std::string model = kModels + "lstm_toy_add_0.onnx", inputs = kModels + "lstm_toy_add_input_T13.npy";
  const CliRun r =
      sieve_cli("explain " + model + " " + inputs + " -m lrp.epsilon:epsilon=0,lstm=prop --explain-rules");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(
      r.out.find(
          "LSTM (book ch. 11): ε-rule (ε = 0) on the linear maps, products split by LRP-prop (lstm=prop)"),
      std::string::npos)
      << r.out;
}

// The same numbers pass through the command line and a .npy file unchanged.
TEST(LstmCli, WritesTheRelevanceOfEveryStep) {
  const std::string model = kModels + "lstm_toy_add_0.onnx", inputs = kModels + "lstm_toy_add_input_T13.npy";
  const std::string out = temp("lstm_all.npy").string();
  const CliRun r = sieve_cli("explain " + model + " " + inputs + " -m lrp.epsilon:epsilon=0 --out " + out);
  ASSERT_EQ(r.code, 0) << r.err;
  const Tensor got = read_npy(out), want = read_npy(kModels + "lstm_toy_add_0_lrp_all_T13.npy");
  ASSERT_EQ(got.shape(), want.shape());
  float scale = 0.0f;
  for (float v : want.values()) scale = std::max(scale, std::abs(v));
  // As in the library test: 1e-4 of the largest value bounds the float32 rounding of the walk back.
  for (int64_t i = 0; i < got.size(); ++i) ASSERT_NEAR(got[i], want[i], 1e-4f * scale) << i;
}

}  // namespace
}  // namespace sieve
