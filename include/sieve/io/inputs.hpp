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

// What to do with files that cannot be read as inputs: files in an input directory that are not PNG or
// JPEG images (an .npy, a text file named .png, a subdirectory), and images that cannot be decoded.
// By default each is an error naming the file; with `skip`, they are left out and listed in `skipped`.
struct UnreadableFiles {
  bool skip = false;
  std::vector<std::string> skipped;
};

// Turns command-line paths into model inputs for a model whose input is declared as
// `model_input_shape` (-1 for dynamic dimensions; the batch dimension is ignored):
//  - .npy: one sample shaped like the model input without batch, or a batch of them;
//  - PNG / JPEG (recognized by content): preprocessed with `p` and resized to the model's H×W;
//  - IDX (plain or .gz): [N, H, W] raw values, normalized with `p`, for one-channel models;
//  - a directory: its files by name, every one a PNG / JPEG image (see UnreadableFiles).
std::vector<NamedInput> load_inputs(const std::vector<std::string>& paths, const Preprocessing& p,
                                    const Shape& model_input_shape, UnreadableFiles* unreadable = nullptr);

}  // namespace sieve
