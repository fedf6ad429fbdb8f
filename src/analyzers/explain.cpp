#include <algorithm>

#include "sieve/analyzer.hpp"
#include "sieve/batch.hpp"
#include "sieve/error.hpp"

namespace sieve {

std::vector<Explanation> explain_samples(const Model& model, const std::vector<Tensor>& samples,
                                         const std::vector<const Analyzer*>& analyzers,
                                         const TargetSelection& targets, int64_t max_batch,
                                         const std::function<void(size_t, size_t)>& progress) {
  if (model.input_shapes().size() != 1) throw Error("explanations need a model with exactly one input");
  std::vector<ValueId> keep;
  for (const Analyzer* a : analyzers) {
    const std::vector<ValueId> more = a->trace_values(model);
    keep.insert(keep.end(), more.begin(), more.end());
  }
  std::vector<Explanation> results;
  run_in_batches(model, samples, max_batch, [&](const Tensor& x, int64_t begin, int64_t count) {
    const ForwardPass pass(model, x, keep);
    const std::vector<std::vector<int64_t>> passes = targets.resolve(pass.output());
    std::vector<Explanation> chunk;
    for (size_t m = 0; m < analyzers.size(); ++m) {
      for (const std::vector<int64_t>& t : passes) {
        const Tensor e = analyzers[m]->explain(pass, t);
        for (int64_t i = 0; i < count; ++i)
          chunk.push_back({static_cast<size_t>(begin + i), m, t[static_cast<size_t>(i)], batch_row(e, i)});
      }
    }
    std::stable_sort(chunk.begin(), chunk.end(), [](const Explanation& a, const Explanation& b) {
      return a.sample != b.sample ? a.sample < b.sample : a.method < b.method;
    });
    for (Explanation& e : chunk) results.push_back(std::move(e));
    if (progress) progress(static_cast<size_t>(begin + count), samples.size());
  });
  return results;
}

}  // namespace sieve
