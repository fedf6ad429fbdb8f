#pragma once

// Internal: the .npy header parser shared by read_npy and the streaming reader (InputStream).

#include <cstdint>
#include <istream>
#include <string>

#include "sieve/tensor.hpp"

namespace sieve::detail {

enum class NpyDtype { f4, f8, u1, i4, i8 };

struct NpyHeader {
  NpyDtype dtype = NpyDtype::f4;
  int64_t item_size = 0;    // bytes per value
  Shape shape;              // C order
  int64_t count = 0;        // element count, checked against kMaxTensorElements
  int64_t data_offset = 0;  // where the values start in the file
};

// Reads and validates the header of the .npy file `in` (positioned at its start, `file_size` bytes
// long): magic, version 1.0–3.0, a supported little-endian dtype, C order, the shape, and that the file
// holds all `count` values. Leaves `in` at the first value. Throws sieve::Error naming `path`.
NpyHeader read_npy_header(std::istream& in, int64_t file_size, const std::string& path);

// Converts `count` raw little-endian values of `dtype` to float32.
void npy_to_float(NpyDtype dtype, const char* raw, int64_t count, float* out);

}  // namespace sieve::detail
