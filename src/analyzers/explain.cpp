#include <algorithm>
#include <cstring>

#include "sieve/analyzer.hpp"
#include "sieve/error.hpp"

namespace sieve {

std::vector<Explanation> explain_samples(const Model& model, const std::vector<Tensor>& samples,
                                         const std::vector<const Analyzer*>& analyzers,
                                         const TargetSelection& targets, int64_t max_batch,
                                         const std::function<void(size_t, size_t)>& progress) {
  if (model.input_shapes().size() != 1) throw Error("explanations need a model with exactly one input");
  const size_t batch = static_cast<size_t>(model.rows_per_pass(max_batch));
  std::vector<ValueId> keep;
  for (const Analyzer* a : analyzers) {
    const std::vector<ValueId> more = a->trace_values(model);
    keep.insert(keep.end(), more.begin(), more.end());
  }
  std::vector<Explanation> results;
  for (size_t begin = 0; begin < samples.size(); begin += batch) {
    const size_t end = std::min(samples.size(), begin + batch);
    Shape shape = samples[begin].shape();
    shape[0] = static_cast<int64_t>(end - begin);
    Tensor x = Tensor::uninitialized(shape);
    const int64_t per = samples[begin].size();
    for (size_t i = begin; i < end; ++i) {
      if (samples[i].shape() != samples[begin].shape())
        throw Error("inputs of different shapes cannot share a batch");
      std::memcpy(x.data() + static_cast<int64_t>(i - begin) * per, samples[i].data(),
                  static_cast<size_t>(per) * sizeof(float));
    }
    const ForwardPass pass(model, x, keep);
    const std::vector<std::vector<int64_t>> passes = targets.resolve(pass.output());
    std::vector<Explanation> chunk;
    for (size_t m = 0; m < analyzers.size(); ++m) {
      for (const std::vector<int64_t>& t : passes) {
        const Tensor e = analyzers[m]->explain(pass, t);
        for (size_t i = begin; i < end; ++i) {
          Tensor one = Tensor::uninitialized(samples[i].shape());
          std::memcpy(one.data(), e.data() + static_cast<int64_t>(i - begin) * per,
                      static_cast<size_t>(per) * sizeof(float));
          chunk.push_back({i, m, t[i - begin], std::move(one)});
        }
      }
    }
    std::stable_sort(chunk.begin(), chunk.end(), [](const Explanation& a, const Explanation& b) {
      return a.sample != b.sample ? a.sample < b.sample : a.method < b.method;
    });
    for (Explanation& e : chunk) results.push_back(std::move(e));
    if (progress) progress(end, samples.size());
  }
  return results;
}

}  // namespace sieve
