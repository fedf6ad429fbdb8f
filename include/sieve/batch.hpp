#pragma once

// The one batch runner: rows are stacked into batches of the model's rows per pass, run, and their
// results split again. A model with a fixed batch size gets a full last batch, padded with copies of
// its last row, whose results the caller drops.

#include <cstdint>
#include <functional>
#include <vector>

#include "sieve/model.hpp"
#include "sieve/tensor.hpp"

namespace sieve {

// Writes row `index` ([row shape] elements) to `destination`.
using RowSource = std::function<void(int64_t index, float* destination)>;
// Runs one batch holding rows [begin, begin + count) in its first `count` rows; rows after them are
// padding.
using BatchRun = std::function<void(const Tensor& batch, int64_t begin, int64_t count)>;

// Runs `total` rows of shape `row_shape` ([1, ...]) through `run` in batches of
// model.rows_per_pass(max_batch) rows (fewer in the last batch unless the batch size is fixed).
void run_in_batches(const Model& model, int64_t total, const Shape& row_shape, int64_t max_batch,
                    const RowSource& source, const BatchRun& run);
// The same over samples of one shape ([1, ...] each).
void run_in_batches(const Model& model, const std::vector<Tensor>& samples, int64_t max_batch,
                    const BatchRun& run);

}  // namespace sieve
