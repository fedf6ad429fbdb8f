#include "sieve/predict.hpp"

#include <algorithm>
#include <numeric>

#include "sieve/batch.hpp"
#include "sieve/error.hpp"

namespace sieve {

std::vector<Tensor> run_per_sample(const Model& model, const std::vector<Tensor>& samples,
                                   int64_t max_batch) {
  if (model.input_shapes().size() != 1) {
    throw Error("the model has " + std::to_string(model.input_shapes().size()) +
                " inputs; only single-input models can be run on samples");
  }
  std::vector<Tensor> results;
  run_in_batches(model, samples, max_batch, [&](const Tensor& batch, int64_t, int64_t count) {
    const Tensor out = model.run({batch}).at(0);
    for (int64_t i = 0; i < count; ++i) results.push_back(batch_row(out, i));
  });
  return results;
}

std::vector<Prediction> predict(const Model& model, const std::vector<Tensor>& samples, int top_k,
                                int64_t max_batch) {
  std::vector<Prediction> predictions;
  for (const Tensor& out : run_per_sample(model, samples, max_batch)) {
    Prediction p;
    p.logits.assign(out.data(), out.data() + out.size());
    std::vector<int64_t> order(p.logits.size());
    std::iota(order.begin(), order.end(), 0);
    const size_t k = std::min(order.size(), static_cast<size_t>(std::max(top_k, 0)));
    std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(k), order.end(),
                      [&](int64_t a, int64_t b) {
                        return p.logits[static_cast<size_t>(a)] > p.logits[static_cast<size_t>(b)];
                      });
    for (size_t i = 0; i < k; ++i) p.top.emplace_back(order[i], p.logits[static_cast<size_t>(order[i])]);
    predictions.push_back(std::move(p));
  }
  return predictions;
}

}  // namespace sieve
