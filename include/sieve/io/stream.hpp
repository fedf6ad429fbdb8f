#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "sieve/io/preprocess.hpp"
#include "sieve/tensor.hpp"

namespace sieve {

// Reads a data set batch by batch so memory stays bounded by one batch, whatever its size: the same
// sources as load_inputs (.npy files with a leading batch dimension or one sample, PNG/JPEG files, IDX
// files plain or gzip'ed, directories of images), preprocessed the same way, in the same order and with
// the same values.
//
// - .npy: the header is parsed once, then at most max_rows rows are read at a time.
// - PNG / JPEG: decoded one file at a time.
// - IDX: read whole when the stream reaches the file (gzip cannot seek), then sliced into batches; the
//   file's values are released once the stream has passed it. An IDX file thus costs its whole size.
//
// The constructor resolves every path (missing files, directories without images), parses the .npy and
// IDX headers and checks that their shapes fit the model input, so those errors come before any batch.
// Every error is a sieve::Error naming the file. After an error the stream is unusable: next() throws.
class InputStream {
 public:
  InputStream(const std::vector<std::string>& paths, const Preprocessing& p, const Shape& model_input_shape);
  ~InputStream();
  InputStream(InputStream&&) noexcept;
  InputStream& operator=(InputStream&&) noexcept;
  InputStream(const InputStream&) = delete;
  InputStream& operator=(const InputStream&) = delete;

  // The next at most `max_rows` (>= 1) samples as one batch [rows, ...sample shape]; false at the end
  // (and `batch` is then reset to an empty tensor). Samples of different shapes never share a batch
  // (throws sieve::Error naming both files). A batch whose storage the caller alone holds and whose
  // shape fits is overwritten in place instead of being reallocated.
  bool next(int64_t max_rows, Tensor& batch);
  // Number of samples in total when known without reading everything (npy/IDX headers, file counts),
  // else -1. The constructor reads those headers, so for the sources above it is always known.
  int64_t size_hint() const;
  int64_t samples_read() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sieve
