// Division of integer tensors truncates toward zero, as ONNX's integer Div does: exporters compute sizes
// with it (PyTorch's nn.MultiheadAttention splits its packed projection at (n + 2) / 3), and the graph
// carries integers as floats, so the op must know its output's type (OpSpec::integer_output).

#include <gtest/gtest.h>

#include "sieve/op_spec.hpp"
#include "support/op_specs.hpp"

namespace sieve {
namespace {

std::vector<float> divide(bool integer_output, std::vector<float> a, std::vector<float> b) {
  OpSpec spec = op_spec("Div", 2);
  spec.integer_output = integer_output;
  const std::unique_ptr<Op> op = create_op(spec);
  const Shape shape{static_cast<int64_t>(a.size())};
  const std::vector<Tensor> out = op->forward(std::vector<Tensor>{Tensor(shape, a), Tensor(shape, b)});
  return {out.at(0).data(), out.at(0).data() + out.at(0).size()};
}

TEST(IntegerDivision, TruncatesTowardZeroOnlyForIntegerOutputs) {
  const std::vector<float> a{2306.0f, 7.0f, -7.0f, 6.0f, 16777215.0f}, b{3.0f, 2.0f, 2.0f, 3.0f, 16777214.0f};
  EXPECT_EQ(divide(true, a, b), (std::vector<float>{768.0f, 3.0f, -3.0f, 2.0f, 1.0f}));
  const std::vector<float> real = divide(false, a, b);
  EXPECT_FLOAT_EQ(real[0], 2306.0f / 3.0f);
  EXPECT_FLOAT_EQ(real[1], 3.5f);
}

}  // namespace
}  // namespace sieve
