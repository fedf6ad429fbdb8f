#pragma once

// Factory of every supported operator, one per ONNX op type (see registry.cpp for the table).

#include <memory>

#include "sieve/op_spec.hpp"

namespace sieve::ops {

std::unique_ptr<Op> make_conv(const OpSpec& spec);
std::unique_ptr<Op> make_conv_transpose(const OpSpec& spec);
std::unique_ptr<Op> make_gemm(const OpSpec& spec);
std::unique_ptr<Op> make_matmul(const OpSpec& spec);
std::unique_ptr<Op> make_max_pool(const OpSpec& spec);
std::unique_ptr<Op> make_average_pool(const OpSpec& spec);
std::unique_ptr<Op> make_global_average_pool(const OpSpec& spec);
std::unique_ptr<Op> make_global_max_pool(const OpSpec& spec);
std::unique_ptr<Op> make_batch_normalization(const OpSpec& spec);
std::unique_ptr<Op> make_layer_normalization(const OpSpec& spec);
std::unique_ptr<Op> make_instance_normalization(const OpSpec& spec);
std::unique_ptr<Op> make_unary(const OpSpec& spec);  // Relu, LeakyRelu, Elu, Sigmoid, Tanh
std::unique_ptr<Op> make_clip(const OpSpec& spec);
// HardSigmoid, HardSwish, Erf, Gelu, SiLU (x·σ(x), made by canonicalization), Softplus, Selu, Exp, Log, Neg,
// Abs, Sqrt, Reciprocal, Sin, Cos
std::unique_ptr<Op> make_activation(const OpSpec& spec);
std::unique_ptr<Op> make_prelu(const OpSpec& spec);
std::unique_ptr<Op> make_pow(const OpSpec& spec);
std::unique_ptr<Op> make_binary(const OpSpec& spec);  // Add, Sub, Mul, Div
// Equal, Less, Greater, LessOrEqual, GreaterOrEqual, And, Or, Xor, Not
std::unique_ptr<Op> make_mask(const OpSpec& spec);
// ReduceSum, ReduceMean, ReduceMax, ReduceMin, ReduceL2
std::unique_ptr<Op> make_reduce(const OpSpec& spec);
std::unique_ptr<Op> make_variadic(const OpSpec& spec);  // Sum, Mean, Max, Min
std::unique_ptr<Op> make_softmax(const OpSpec& spec);   // Softmax, LogSoftmax
std::unique_ptr<Op> make_flatten(const OpSpec& spec);
std::unique_ptr<Op> make_reshape(const OpSpec& spec);
std::unique_ptr<Op> make_transpose(const OpSpec& spec);
std::unique_ptr<Op> make_concat(const OpSpec& spec);
std::unique_ptr<Op> make_squeeze(const OpSpec& spec);  // Squeeze, Unsqueeze
std::unique_ptr<Op> make_pad(const OpSpec& spec);
std::unique_ptr<Op> make_identity(const OpSpec& spec);  // Identity, Dropout
std::unique_ptr<Op> make_resize(const OpSpec& spec);    // Resize, Upsample
std::unique_ptr<Op> make_tile(const OpSpec& spec);
std::unique_ptr<Op> make_split(const OpSpec& spec);
// Shape arithmetic that exporters emit around Reshape; folded at load time whenever the shapes are known.
std::unique_ptr<Op> make_shape(const OpSpec& spec);
std::unique_ptr<Op> make_gather(const OpSpec& spec);
std::unique_ptr<Op> make_cast(const OpSpec& spec);
std::unique_ptr<Op> make_constant_of_shape(const OpSpec& spec);
std::unique_ptr<Op> make_slice(const OpSpec& spec);
std::unique_ptr<Op> make_range(const OpSpec& spec);
std::unique_ptr<Op> make_where(const OpSpec& spec);
std::unique_ptr<Op> make_expand(const OpSpec& spec);
// Recurrent cells (recurrent.cpp).
std::unique_ptr<Op> make_lstm(const OpSpec& spec);
std::unique_ptr<Op> make_gru(const OpSpec& spec);
std::unique_ptr<Op> make_rnn(const OpSpec& spec);

}  // namespace sieve::ops
