#include "sieve/predict.hpp"

#include <algorithm>
#include <cstring>
#include <numeric>

#include "sieve/error.hpp"

namespace sieve {
namespace {

Tensor stack(const std::vector<Tensor>& samples, size_t begin, size_t end) {
  Shape shape = samples[begin].shape();
  shape[0] = static_cast<int64_t>(end - begin);
  Tensor batch = Tensor::uninitialized(shape);
  const int64_t per = samples[begin].size();
  for (size_t i = begin; i < end; ++i) {
    if (samples[i].shape() != samples[begin].shape()) {
      throw Error("inputs of different shapes cannot share a batch: " + to_string(samples[i].shape()) +
                  " vs " + to_string(samples[begin].shape()));
    }
    std::memcpy(batch.data() + static_cast<int64_t>(i - begin) * per, samples[i].data(),
                static_cast<size_t>(per) * sizeof(float));
  }
  return batch;
}

}  // namespace

std::vector<Tensor> run_per_sample(const Model& model, const std::vector<Tensor>& samples,
                                   int64_t max_batch) {
  if (model.input_shapes().size() != 1) {
    throw Error("the model has " + std::to_string(model.input_shapes().size()) +
                " inputs; only single-input models can be run on samples");
  }
  const Shape& declared = model.input_shapes()[0];
  const int64_t batch = model.rows_per_pass(max_batch);
  if (batch != 1 && !declared.empty() && declared[0] > 0) {
    throw Error("the model's batch dimension is fixed to " + std::to_string(batch) +
                "; only 1 or dynamic is supported");
  }
  std::vector<Tensor> results;
  for (size_t begin = 0; begin < samples.size(); begin += static_cast<size_t>(batch)) {
    const size_t end = std::min(samples.size(), begin + static_cast<size_t>(batch));
    const Tensor out = model.run({stack(samples, begin, end)}).at(0);
    const int64_t per = out.size() / static_cast<int64_t>(end - begin);
    Shape one = out.shape();
    one[0] = 1;
    for (size_t i = begin; i < end; ++i) {
      Tensor t = Tensor::uninitialized(one);
      std::memcpy(t.data(), out.data() + static_cast<int64_t>(i - begin) * per,
                  static_cast<size_t>(per) * sizeof(float));
      results.push_back(std::move(t));
    }
  }
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
