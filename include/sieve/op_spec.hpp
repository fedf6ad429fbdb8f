#pragma once

// How an op is described independently of the ONNX library: the importer translates a node's
// attributes into `Attributes`, and the registry creates the op from the resulting `OpSpec`. Graph
// rewrites keep the spec so they can recreate an op with changed attributes.

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "sieve/op.hpp"
#include "sieve/tensor.hpp"

namespace sieve {

class Attributes {
 public:
  using Value = std::variant<int64_t, float, std::string, std::vector<int64_t>, std::vector<float>,
                             std::vector<std::string>, Tensor>;

  void set(const std::string& name, Value value) { values_[name] = std::move(value); }
  bool has(const std::string& name) const { return values_.count(name) != 0; }

  int64_t get_int(const std::string& name, int64_t fallback) const;
  float get_float(const std::string& name, float fallback) const;
  std::string get_string(const std::string& name, const std::string& fallback) const;
  std::vector<int64_t> get_ints(const std::string& name, const std::vector<int64_t>& fallback = {}) const;
  std::vector<float> get_floats(const std::string& name, const std::vector<float>& fallback = {}) const;
  std::vector<std::string> get_strings(const std::string& name) const;  // empty when absent
  Tensor get_tensor(const std::string& name) const;

 private:
  template <class T>
  const T* find(const std::string& name) const;
  std::map<std::string, Value> values_;
};

// Everything an op factory may look at.
struct OpSpec {
  std::string op_type;
  std::string name;
  int64_t opset = 0;
  Attributes attributes;
  size_t num_inputs = 0;  // including omitted optional inputs (empty names)
  size_t num_outputs = 0;
  std::vector<bool> input_present;  // false for an omitted optional input
  // The first output is an integer tensor (as shape inference typed it), carried as floats holding exact
  // integers: arithmetic whose float result differs (division) rounds as the integer type would.
  bool integer_output = false;

  // "node 'conv1' (Conv, opset 13)", the prefix of every message about this node.
  std::string where() const;
  [[noreturn]] void fail(const std::string& message) const;
};

bool is_supported_op(const std::string& op_type);
std::vector<std::string> supported_ops();
// Throws sieve::Error naming the operator, node and opset for anything unsupported or malformed.
std::unique_ptr<Op> create_op(const OpSpec& spec);

}  // namespace sieve
