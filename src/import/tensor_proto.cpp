#include "import/tensor_proto.hpp"

#include <cmath>
#include <cstring>

#include "sieve/error.hpp"

namespace sieve::onnx_import {
namespace {

float half_to_float(uint16_t h) {
  const int sign = (h >> 15) & 1, exponent = (h >> 10) & 0x1f, mantissa = h & 0x3ff;
  float v = 0.0f;
  if (exponent == 0)
    v = std::ldexp(static_cast<float>(mantissa), -24);
  else if (exponent == 31)
    v = mantissa ? std::nanf("") : INFINITY;
  else
    v = std::ldexp(static_cast<float>(mantissa | 0x400), exponent - 25);
  return sign ? -v : v;
}

float bfloat16_to_float(uint16_t b) {
  const uint32_t bits = static_cast<uint32_t>(b) << 16;
  float v;
  std::memcpy(&v, &bits, sizeof v);
  return v;
}

size_t element_size(int32_t t) {
  switch (t) {
    case onnx::TensorProto::FLOAT:
    case onnx::TensorProto::INT32:
    case onnx::TensorProto::UINT32:
      return 4;
    case onnx::TensorProto::DOUBLE:
    case onnx::TensorProto::INT64:
    case onnx::TensorProto::UINT64:
      return 8;
    case onnx::TensorProto::INT16:
    case onnx::TensorProto::UINT16:
    case onnx::TensorProto::FLOAT16:
    case onnx::TensorProto::BFLOAT16:
      return 2;
    case onnx::TensorProto::INT8:
    case onnx::TensorProto::UINT8:
    case onnx::TensorProto::BOOL:
      return 1;
    default:
      return 0;
  }
}

template <class T>
T load(const char* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

float from_raw(int32_t t, const char* p) {
  switch (t) {
    case onnx::TensorProto::FLOAT:
      return load<float>(p);
    case onnx::TensorProto::DOUBLE:
      return static_cast<float>(load<double>(p));
    case onnx::TensorProto::INT64:
      return static_cast<float>(load<int64_t>(p));
    case onnx::TensorProto::UINT64:
      return static_cast<float>(load<uint64_t>(p));
    case onnx::TensorProto::INT32:
      return static_cast<float>(load<int32_t>(p));
    case onnx::TensorProto::UINT32:
      return static_cast<float>(load<uint32_t>(p));
    case onnx::TensorProto::INT16:
      return static_cast<float>(load<int16_t>(p));
    case onnx::TensorProto::UINT16:
      return static_cast<float>(load<uint16_t>(p));
    case onnx::TensorProto::INT8:
      return static_cast<float>(load<int8_t>(p));
    case onnx::TensorProto::UINT8:
      return static_cast<float>(load<uint8_t>(p));
    case onnx::TensorProto::BOOL:
      return load<uint8_t>(p) != 0 ? 1.0f : 0.0f;
    case onnx::TensorProto::FLOAT16:
      return half_to_float(load<uint16_t>(p));
    case onnx::TensorProto::BFLOAT16:
      return bfloat16_to_float(load<uint16_t>(p));
    default:
      return 0.0f;
  }
}

}  // namespace

bool is_numeric_type(int32_t data_type) {
  return element_size(data_type) != 0;
}

bool is_integer_type(int32_t data_type) {
  switch (data_type) {
    case onnx::TensorProto::INT8:
    case onnx::TensorProto::INT16:
    case onnx::TensorProto::INT32:
    case onnx::TensorProto::INT64:
    case onnx::TensorProto::UINT8:
    case onnx::TensorProto::UINT16:
    case onnx::TensorProto::UINT32:
    case onnx::TensorProto::UINT64:
      return true;
    default:
      return false;
  }
}

std::string type_name(int32_t data_type) {
  return onnx::TensorProto_DataType_IsValid(data_type)
             ? onnx::TensorProto_DataType_Name(static_cast<onnx::TensorProto_DataType>(data_type))
             : "type " + std::to_string(data_type);
}

Tensor tensor_from_proto(const onnx::TensorProto& proto, const std::string& where) {
  const int32_t t = proto.data_type();
  if (!is_numeric_type(t)) throw Error(where + ": unsupported element type " + type_name(t));
  if (proto.data_location() == onnx::TensorProto::EXTERNAL)
    throw Error(where + ": external tensor data is not supported");
  Shape shape(proto.dims().begin(), proto.dims().end());
  const int64_t count = checked_element_count(shape, where);
  auto mismatch = [&](size_t have) {
    return Error(where + ": shape " + to_string(shape) + " needs " + std::to_string(count) +
                 " values but the file holds " + std::to_string(have));
  };
  if (proto.has_raw_data()) {
    const std::string& raw = proto.raw_data();
    const size_t size = element_size(t);
    if (raw.size() != static_cast<size_t>(count) * size) throw mismatch(raw.size() / size);
    Tensor out = Tensor::uninitialized(shape);
    for (int64_t i = 0; i < count; ++i) out[i] = from_raw(t, raw.data() + static_cast<size_t>(i) * size);
    return out;
  }
  Tensor out;
  auto fill = [&](const auto& field, auto convert) {
    if (static_cast<int64_t>(field.size()) != count) throw mismatch(static_cast<size_t>(field.size()));
    out = Tensor::uninitialized(shape);
    for (int64_t i = 0; i < count; ++i) out[i] = convert(field.Get(static_cast<int>(i)));
  };
  switch (t) {
    case onnx::TensorProto::FLOAT:
      fill(proto.float_data(), [](float v) { return v; });
      break;
    case onnx::TensorProto::DOUBLE:
      fill(proto.double_data(), [](double v) { return static_cast<float>(v); });
      break;
    case onnx::TensorProto::INT64:
      fill(proto.int64_data(), [](int64_t v) { return static_cast<float>(v); });
      break;
    case onnx::TensorProto::UINT32:
    case onnx::TensorProto::UINT64:
      fill(proto.uint64_data(), [](uint64_t v) { return static_cast<float>(v); });
      break;
    case onnx::TensorProto::FLOAT16:
      fill(proto.int32_data(), [](int32_t v) { return half_to_float(static_cast<uint16_t>(v)); });
      break;
    case onnx::TensorProto::BFLOAT16:
      fill(proto.int32_data(), [](int32_t v) { return bfloat16_to_float(static_cast<uint16_t>(v)); });
      break;
    case onnx::TensorProto::BOOL:
      fill(proto.int32_data(), [](int32_t v) { return v != 0 ? 1.0f : 0.0f; });
      break;
    default:
      fill(proto.int32_data(), [](int32_t v) { return static_cast<float>(v); });
      break;
  }
  return out;
}

}  // namespace sieve::onnx_import
