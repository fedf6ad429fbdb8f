#pragma once

#include <string>

#include "sieve/tensor.hpp"

namespace sieve {

// Reads an IDX file (the MNIST / Fashion-MNIST format), plain or gzip-compressed, into a float tensor of
// the file's shape holding the raw values (e.g. [N, 28, 28] bytes 0–255 for images, [N] for labels).
Tensor read_idx(const std::string& path);

}  // namespace sieve
