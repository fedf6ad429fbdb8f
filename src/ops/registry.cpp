#include <algorithm>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "ops/factories.hpp"
#include "sieve/error.hpp"
#include "sieve/op_spec.hpp"

namespace sieve {
namespace {

using Factory = std::unique_ptr<Op> (*)(const OpSpec&);

// Layers: linear maps, pooling, normalization, recurrent cells.
std::vector<std::pair<std::string, Factory>> layer_ops() {
  return {
      {"Conv", ops::make_conv},
      {"ConvTranspose", ops::make_conv_transpose},
      {"Gemm", ops::make_gemm},
      {"MatMul", ops::make_matmul},
      {"MaxPool", ops::make_max_pool},
      {"AveragePool", ops::make_average_pool},
      {"GlobalAveragePool", ops::make_global_average_pool},
      {"GlobalMaxPool", ops::make_global_max_pool},
      {"BatchNormalization", ops::make_batch_normalization},
      {"LayerNormalization", ops::make_layer_normalization},
      {"InstanceNormalization", ops::make_instance_normalization},
      {"LSTM", ops::make_lstm},
      {"GRU", ops::make_gru},
      {"RNN", ops::make_rnn},
  };
}

// Element-wise and reducing ops: activations, arithmetic, comparisons, reductions, softmax.
std::vector<std::pair<std::string, Factory>> elementwise_ops() {
  return {
      {"Relu", ops::make_unary},
      {"LeakyRelu", ops::make_unary},
      {"Elu", ops::make_unary},
      {"Sigmoid", ops::make_unary},
      {"Tanh", ops::make_unary},
      {"Clip", ops::make_clip},
      {"HardSigmoid", ops::make_activation},
      {"HardSwish", ops::make_activation},
      {"Erf", ops::make_activation},
      {"Gelu", ops::make_activation},
      {"Softplus", ops::make_activation},
      {"Selu", ops::make_activation},
      {"Exp", ops::make_activation},
      {"Log", ops::make_activation},
      {"Neg", ops::make_activation},
      {"Abs", ops::make_activation},
      {"Sqrt", ops::make_activation},
      {"Reciprocal", ops::make_activation},
      {"Sin", ops::make_activation},
      {"SiLU", ops::make_activation},
      {"Cos", ops::make_activation},
      {"PRelu", ops::make_prelu},
      {"Pow", ops::make_pow},
      {"Add", ops::make_binary},
      {"Sub", ops::make_binary},
      {"Mul", ops::make_binary},
      {"Div", ops::make_binary},
      {"Equal", ops::make_mask},
      {"Less", ops::make_mask},
      {"Greater", ops::make_mask},
      {"LessOrEqual", ops::make_mask},
      {"GreaterOrEqual", ops::make_mask},
      {"And", ops::make_mask},
      {"Or", ops::make_mask},
      {"Xor", ops::make_mask},
      {"Not", ops::make_mask},
      {"ReduceSum", ops::make_reduce},
      {"ReduceMean", ops::make_reduce},
      {"ReduceMax", ops::make_reduce},
      {"ReduceMin", ops::make_reduce},
      {"ReduceL2", ops::make_reduce},
      {"Sum", ops::make_variadic},
      {"Mean", ops::make_variadic},
      {"Max", ops::make_variadic},
      {"Min", ops::make_variadic},
      {"Softmax", ops::make_softmax},
      {"LogSoftmax", ops::make_softmax},
  };
}

// Data movement and shape arithmetic.
std::vector<std::pair<std::string, Factory>> data_movement_ops() {
  return {
      {"Flatten", ops::make_flatten},
      {"Reshape", ops::make_reshape},
      {"Transpose", ops::make_transpose},
      {"Concat", ops::make_concat},
      {"Squeeze", ops::make_squeeze},
      {"Unsqueeze", ops::make_squeeze},
      {"Pad", ops::make_pad},
      {"Identity", ops::make_identity},
      {"Dropout", ops::make_identity},
      {"Tile", ops::make_tile},
      {"Resize", ops::make_resize},
      {"Upsample", ops::make_resize},
      {"Split", ops::make_split},
      {"Shape", ops::make_shape},
      {"Gather", ops::make_gather},
      {"Cast", ops::make_cast},
      {"ConstantOfShape", ops::make_constant_of_shape},
      {"Slice", ops::make_slice},
      {"Range", ops::make_range},
      {"Where", ops::make_where},
      {"Expand", ops::make_expand},
  };
}

const std::map<std::string, Factory>& factories() {
  static const std::map<std::string, Factory> table = [] {
    std::map<std::string, Factory> all;
    for (auto family : {layer_ops, elementwise_ops, data_movement_ops}) {
      for (auto& [type, factory] : family()) all.emplace(type, factory);
    }
    return all;
  }();
  return table;
}

}  // namespace

template <class T>
const T* Attributes::find(const std::string& name) const {
  auto it = values_.find(name);
  if (it == values_.end()) return nullptr;
  const T* v = std::get_if<T>(&it->second);
  if (v == nullptr) throw Error("attribute '" + name + "' has the wrong type");
  return v;
}

int64_t Attributes::get_int(const std::string& name, int64_t fallback) const {
  const int64_t* v = find<int64_t>(name);
  return v ? *v : fallback;
}
float Attributes::get_float(const std::string& name, float fallback) const {
  const float* v = find<float>(name);
  return v ? *v : fallback;
}
std::string Attributes::get_string(const std::string& name, const std::string& fallback) const {
  const std::string* v = find<std::string>(name);
  return v ? *v : fallback;
}
std::vector<int64_t> Attributes::get_ints(const std::string& name,
                                          const std::vector<int64_t>& fallback) const {
  const auto* v = find<std::vector<int64_t>>(name);
  return v ? *v : fallback;
}
std::vector<float> Attributes::get_floats(const std::string& name, const std::vector<float>& fallback) const {
  const auto* v = find<std::vector<float>>(name);
  return v ? *v : fallback;
}
std::vector<std::string> Attributes::get_strings(const std::string& name) const {
  const auto* v = find<std::vector<std::string>>(name);
  return v ? *v : std::vector<std::string>{};
}
Tensor Attributes::get_tensor(const std::string& name) const {
  const Tensor* v = find<Tensor>(name);
  if (v == nullptr) throw Error("attribute '" + name + "' is missing");
  return *v;
}

std::string OpSpec::where() const {
  return "node '" + name + "' (" + op_type + ", opset " + std::to_string(opset) + ")";
}

void OpSpec::fail(const std::string& message) const {
  throw Error(where() + ": " + message);
}

bool is_supported_op(const std::string& op_type) {
  return factories().count(op_type) != 0;
}

std::vector<std::string> supported_ops() {
  std::vector<std::string> names;
  for (const auto& [name, factory] : factories()) names.push_back(name);
  return names;
}

std::unique_ptr<Op> create_op(const OpSpec& spec) {
  auto it = factories().find(spec.op_type);
  if (it == factories().end()) spec.fail("unsupported operator");
  try {
    return it->second(spec);
  } catch (const Error& e) {
    const std::string message = e.what();
    if (message.rfind("node '", 0) == 0) throw;
    spec.fail(message);
  }
}

}  // namespace sieve
