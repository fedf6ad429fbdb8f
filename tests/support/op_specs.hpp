#pragma once

// The description of an op as the importer would make it from a node of that type, for creating ops
// directly in tests; attributes are set by each test.

#include <string>

#include "sieve/op_spec.hpp"

namespace sieve {

inline OpSpec op_spec(const std::string& type, size_t inputs, int64_t opset = 13, size_t outputs = 1) {
  OpSpec s;
  s.op_type = type;
  s.name = type;
  s.opset = opset;
  s.num_inputs = inputs;
  s.num_outputs = outputs;
  s.input_present.assign(inputs, true);
  return s;
}

}  // namespace sieve
