#pragma once

#include <string>

#include "sieve/tensor.hpp"

namespace sieve {

// Reads a NumPy .npy file (format 1.0–3.0, C order) of float32, float64, uint8, int32 or int64 values
// into a float32 tensor. Throws sieve::Error naming the file for anything else or a corrupt file.
Tensor read_npy(const std::string& path);
// Writes a float32 .npy file (format 1.0).
void write_npy(const std::string& path, const Tensor& tensor);

}  // namespace sieve
