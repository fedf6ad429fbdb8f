#pragma once

#include <map>
#include <string>
#include <vector>

#include "sieve/tensor.hpp"

namespace sieve {

// Hugging Face safetensors files (https://github.com/huggingface/safetensors): an 8-byte little-endian
// unsigned header length N, N bytes of UTF-8 JSON
//   {"NAME": {"dtype": "F64", "shape": [..], "data_offsets": [begin, end]}, ..., "__metadata__": {"k": "v"}}
// and the byte buffer the offsets point into (relative to its start), tensors laid out contiguously,
// values little-endian in C order.

struct StoredTensor {
  Shape shape;
  std::vector<double> values;  // C order
  bool float64 = true;         // stored as F64 (else F32)
};

struct SafetensorsFile {
  std::map<std::string, StoredTensor> tensors;
  std::map<std::string, std::string> metadata;  // the "__metadata__" string map
};

// Writes F64 tensors first, then F32 ones (each group by name), so every tensor starts on a multiple of
// its value size; the header is padded with spaces to a multiple of 8 bytes, and "__metadata__" is
// written when there is metadata. Throws sieve::Error naming the file for a tensor whose value count
// does not match its shape, a negative dimension, the reserved name "__metadata__", or a write error.
void write_safetensors(const std::string& path, const SafetensorsFile& file);

// Throws sieve::Error naming the file for a truncated or corrupt file, a header over 100 MB, offsets
// outside the data, overlapping/ungapped-inconsistent offsets, unsupported dtypes (only F32 and F64
// are read), or a shape whose element count does not match its byte range. Sizes are checked before
// allocating.
SafetensorsFile read_safetensors(const std::string& path);

}  // namespace sieve
