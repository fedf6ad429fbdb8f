#include "sieve/model.hpp"

#include <cmath>
#include <fstream>
#include <sstream>

#include "sieve/error.hpp"
#include "sieve/executor.hpp"

namespace sieve {

void check_input(const Tensor& input, const Shape& declared, const std::string& name) {
  bool fits = declared.empty() || input.rank() == static_cast<int64_t>(declared.size());
  for (size_t d = 0; fits && d < declared.size(); ++d) {
    fits = declared[d] < 0 || declared[d] == input.shape()[d];
  }
  if (!fits) {
    throw Error("input '" + name + "' has shape " + to_string(input.shape()) + " but the model expects " +
                to_string(declared));
  }
  for (int64_t i = 0; i < input.size(); ++i) {
    if (!std::isfinite(input[i])) {
      throw Error("input '" + name + "' contains " + (std::isnan(input[i]) ? "NaN" : "Inf") + " at element " +
                  std::to_string(i));
    }
  }
}

std::vector<Tensor> Model::run(const std::vector<Tensor>& inputs) const {
  if (inputs.size() != input_shapes_.size()) {
    throw Error("the model takes " + std::to_string(input_shapes_.size()) + " input(s), got " +
                std::to_string(inputs.size()));
  }
  for (size_t i = 0; i < inputs.size(); ++i) check_input(inputs[i], input_shapes_[i], input_names_[i]);
  return Executor(graph_).run(inputs);
}

bool Model::input_is_float(size_t i) const {
  const std::string& type = input_types_.at(i);
  return type == "FLOAT" || type == "DOUBLE" || type == "FLOAT16" || type == "BFLOAT16";
}

int64_t Model::rows_per_pass(int64_t wanted) const {
  const Shape& declared = input_shapes_.at(0);
  return !declared.empty() && declared[0] > 0 ? declared[0] : std::max<int64_t>(wanted, 1);
}

}  // namespace sieve
