#pragma once

// NumPy arrays as sieve tensors and back. A C-contiguous, aligned float32 array is read where it lies;
// any other real-valued array is converted once into one. Results are handed to NumPy without a copy:
// the array keeps the tensor's storage alive.

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <memory>
#include <string>
#include <vector>

#include "sieve/tensor.hpp"

namespace sieve::python {

// A batch given from Python: the float32 array the tensor reads (the given one, or its one converted
// copy), kept alive by the tensor's storage.
struct InputArray {
  pybind11::array_t<float> array;
  std::shared_ptr<float[]> storage;  // the array's memory, holding a reference to the array
  Tensor tensor;
  // Row i ([1, ...]) over the same memory.
  Tensor row(int64_t i) const;
  std::vector<Tensor> rows() const;
};

// Throws sieve::Error naming `what` when `object` is not an array of real numbers (a float, signed or
// unsigned integer dtype), or has no dimensions.
InputArray input_array(const pybind11::handle& object, const std::string& what);

// The tensor as a NumPy array sharing its storage.
pybind11::array_t<float> to_numpy(const Tensor& tensor);
// Samples [1, ...] of one shape stacked into one array [N, ...].
pybind11::array_t<float> stacked(const std::vector<Tensor>& samples);

}  // namespace sieve::python
