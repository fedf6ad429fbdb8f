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

}  // namespace sieve
