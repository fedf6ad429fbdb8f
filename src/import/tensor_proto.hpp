#pragma once

// Conversion of ONNX TensorProto (initializers, Constant attributes, test data) into float tensors.

#include <onnx/onnx_pb.h>

#include <string>

#include "sieve/tensor.hpp"

namespace sieve::onnx_import {

// Any numeric element type becomes float32 (integers are exact up to 2^24, which covers shapes, axes and
// indices). Sizes are checked against the data actually present before anything is allocated.
Tensor tensor_from_proto(const onnx::TensorProto& proto, const std::string& where);

// True for element types sieve can carry as float32 without losing the meaning of the values.
bool is_numeric_type(int32_t data_type);
// INT8 … UINT64: values the graph carries as floats holding exact integers.
bool is_integer_type(int32_t data_type);
std::string type_name(int32_t data_type);

}  // namespace sieve::onnx_import
