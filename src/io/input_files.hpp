#pragma once

// Internal: how command-line paths become input files, shared by load_inputs and InputStream so both
// read the same files in the same order and accept the same shapes.

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "sieve/io/inputs.hpp"
#include "sieve/tensor.hpp"

namespace sieve::detail {

enum class InputKind { npy, idx, image };

struct InputFile {
  std::string path;
  InputKind kind = InputKind::image;
  int64_t begin = 0, end = -1;  // the samples [begin, end) of a batch file; end -1: to the end
};

// The samples [begin, end) of a file holding `count`, with end -1 resolved; throws sieve::Error naming
// `name` for a range outside the file.
std::pair<int64_t, int64_t> slice_rows(const InputFile& file, int64_t count, const std::string& name);

// The files one path stands for: a directory's files sorted by name, each a PNG / JPEG image
// (recognized by content), else the path itself, classified by its extension (.npy; -ubyte, .idx, .gz;
// anything else is an image). A directory entry that is not an image (another file, a subdirectory) is
// an error naming it, unless `unreadable` asks to skip it (then it is listed there). Throws
// sieve::Error for a missing path or a directory without images.
std::vector<InputFile> expand_input_path(const std::string& path, UnreadableFiles* unreadable = nullptr);

// True when `sample` has the rank of `declared` and equals it wherever `declared` is not dynamic (< 0).
bool dims_match(const Shape& sample, const Shape& declared);

// How an .npy array of `shape` feeds a model whose sample shape (without batch) is `sample`: false for
// one sample, true for a batch [N, ...sample]. Throws sieve::Error naming `path` when it fits neither.
bool npy_is_batch(const Shape& shape, const Shape& sample, const std::string& path);
// Throws sieve::Error naming `path` unless IDX data of `shape` ([N, H, W]) fits the sample shape.
void check_idx_fits(const Shape& shape, const Shape& sample, const std::string& path);
// Throws sieve::Error naming `path` unless an image can feed the sample shape ([C, H, W]).
void check_image_fits(const Shape& sample, const std::string& path);
// Throws sieve::Error naming the input `name` at its first NaN or Inf.
void check_finite(const float* values, int64_t count, const std::string& name);

}  // namespace sieve::detail
