#pragma once

#include <cstdint>
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
  std::vector<std::string> warnings;  // changes made that nobody asked for (see image_to_tensor)
};

// A data argument "PATH" or "PATH[a:b]": the samples a (inclusive) to b (exclusive) of a batch file
// (.npy batch, IDX) or of a directory's images in name order; "[a:]" runs to the end, "[:b]" from 0.
struct DataSlice {
  std::string path;
  int64_t begin = 0, end = -1;  // end -1: to the end
  bool sliced = false;
};
// Splits off a trailing "[a:b]" unless `text` names an existing file; throws sieve::Error for a malformed
// or empty range.
DataSlice parse_data_slice(const std::string& text);
// True when both name the same file or directory and their ranges share a sample.
bool slices_overlap(const DataSlice& a, const DataSlice& b);

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
//  - a directory: its files by name, every one a PNG / JPEG image (see UnreadableFiles);
//  - any of them followed by [a:b]: that slice of its samples (see DataSlice).
std::vector<NamedInput> load_inputs(const std::vector<std::string>& paths, const Preprocessing& p,
                                    const Shape& model_input_shape, UnreadableFiles* unreadable = nullptr);

}  // namespace sieve
