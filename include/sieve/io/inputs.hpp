#pragma once

#include <string>
#include <vector>

#include "sieve/io/preprocess.hpp"
#include "sieve/tensor.hpp"

namespace sieve {

struct NamedInput {
  std::string name;    // the file, with [i] for one sample of a batch file
  Tensor tensor;       // one sample with a leading batch dimension of 1
  std::string file;    // the file the sample came from
  int64_t index = -1;  // its position in a batch file (.npy batch, IDX), -1 for a single-sample file
};

// Turns command-line paths into model inputs for a model whose input is declared as
// `model_input_shape` (-1 for dynamic dimensions; the batch dimension is ignored):
//  - .npy: one sample shaped like the model input without batch, or a batch of them;
//  - PNG / JPEG (recognized by content): preprocessed with `p` and resized to the model's H×W;
//  - IDX (plain or .gz): [N, H, W] raw values, normalized with `p`, for one-channel models;
//  - a directory: every PNG / JPEG in it, by name.
std::vector<NamedInput> load_inputs(const std::vector<std::string>& paths, const Preprocessing& p,
                                    const Shape& model_input_shape);

}  // namespace sieve
