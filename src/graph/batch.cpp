#include "sieve/batch.hpp"

#include <algorithm>
#include <cstring>

#include "sieve/error.hpp"

namespace sieve {

void run_in_batches(const Model& model, int64_t total, const Shape& row_shape, int64_t max_batch,
                    const RowSource& source, const BatchRun& run) {
  if (model.input_shapes().empty()) throw Error("the model has no input");
  const Shape& declared = model.input_shapes()[0];
  const bool fixed = !declared.empty() && declared[0] > 0;
  const int64_t rows = model.rows_per_pass(max_batch);
  const int64_t per = element_count(row_shape);
  for (int64_t begin = 0; begin < total; begin += rows) {
    const int64_t count = std::min(rows, total - begin);
    Shape shape = row_shape;
    shape[0] = count;
    Tensor batch = Tensor::uninitialized(shape);
    for (int64_t r = 0; r < count; ++r) source(begin + r, batch.data() + r * per);
    run(fixed ? padded_batch(batch, rows) : batch, begin, count);
  }
}

void run_in_batches(const Model& model, const std::vector<Tensor>& samples, int64_t max_batch,
                    const BatchRun& run) {
  if (samples.empty()) return;
  const Shape& shape = samples[0].shape();
  if (shape.empty() || shape[0] != 1)
    throw Error("samples must have a leading dimension of 1, not " + to_string(shape));
  const RowSource source = [&](int64_t i, float* destination) {
    const Tensor& s = samples[static_cast<size_t>(i)];
    if (s.shape() != shape)
      throw Error("inputs of different shapes cannot share a batch: " + to_string(s.shape()) + " vs " +
                  to_string(shape));
    std::memcpy(destination, s.data(), static_cast<size_t>(s.size()) * sizeof(float));
  };
  run_in_batches(model, static_cast<int64_t>(samples.size()), shape, max_batch, source, run);
}

Tensor padded_batch(const Tensor& batch, int64_t rows) {
  const int64_t count = batch.dim(0);
  if (count == 0 || count >= rows) return batch;
  Shape shape = batch.shape();
  shape[0] = rows;
  Tensor padded = Tensor::uninitialized(shape);
  const int64_t per = batch.size() / count;
  std::memcpy(padded.data(), batch.data(), static_cast<size_t>(batch.size()) * sizeof(float));
  for (int64_t r = count; r < rows; ++r)
    std::memcpy(padded.data() + r * per, batch.data() + (count - 1) * per,
                static_cast<size_t>(per) * sizeof(float));
  return padded;
}

Tensor leading_rows(const Tensor& batch, int64_t count) {
  if (count >= batch.dim(0)) return batch;
  Shape shape = batch.shape();
  shape[0] = count;
  const int64_t per = batch.size() / batch.dim(0);
  return Tensor(shape, std::span<const float>(batch.data(), static_cast<size_t>(count * per)));
}

Tensor gathered_rows(const Tensor& batch, const std::vector<int64_t>& rows) {
  Shape shape = batch.shape();
  shape[0] = static_cast<int64_t>(rows.size());
  const int64_t per = batch.dim(0) == 0 ? 0 : batch.size() / batch.dim(0);
  Tensor t = Tensor::uninitialized(shape);
  for (size_t r = 0; r < rows.size(); ++r) {
    if (rows[r] < 0 || rows[r] >= batch.dim(0))
      throw Error("row " + std::to_string(rows[r]) + " of a batch of " + std::to_string(batch.dim(0)));
    std::memcpy(t.data() + static_cast<int64_t>(r) * per, batch.data() + rows[r] * per,
                static_cast<size_t>(per) * sizeof(float));
  }
  return t;
}

Tensor batch_row(const Tensor& batch, int64_t i) {
  Shape one = batch.shape();
  one[0] = 1;
  const int64_t per = batch.dim(0) == 0 ? 0 : batch.size() / batch.dim(0);
  Tensor t = Tensor::uninitialized(one);
  std::memcpy(t.data(), batch.data() + i * per, static_cast<size_t>(per) * sizeof(float));
  return t;
}

}  // namespace sieve
