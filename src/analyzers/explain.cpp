#include <algorithm>

#include "sieve/analyzer.hpp"
#include "sieve/batch.hpp"
#include "sieve/error.hpp"

namespace sieve {

std::vector<Explanation> explain_samples(const Model& model, const std::vector<Tensor>& samples,
                                         const std::vector<const Analyzer*>& analyzers,
                                         const TargetSelection& targets, const ExplainSetup& setup,
                                         int64_t max_batch,
                                         const std::function<void(size_t, size_t)>& progress) {
  if (targets.kind == TargetSelection::Kind::mask && targets.mask.rank() > 0 && targets.mask.dim(0) != 1 &&
      targets.mask.dim(0) != static_cast<int64_t>(samples.size())) {
    throw Error("target mask of shape " + to_string(targets.mask.shape()) + " has " +
                std::to_string(targets.mask.dim(0)) + " rows for " + std::to_string(samples.size()) +
                " samples: give one row, or one per sample");
  }
  std::vector<ValueId> keep;
  for (const Analyzer* a : analyzers) {
    const std::vector<ValueId> more = a->trace_values(model);
    keep.insert(keep.end(), more.begin(), more.end());
  }
  const std::shared_ptr<const InputBinding> binding = bind_inputs(model, setup);
  std::vector<Explanation> results;
  run_in_batches(model, samples, max_batch, [&](const Tensor& x, int64_t begin, int64_t count) {
    // Padding rows repeat the batch's last sample.
    std::vector<int64_t> rows;
    for (int64_t r = 0; r < x.dim(0); ++r) rows.push_back(begin + std::min(r, count - 1));
    const ForwardPass pass(model, x, binding, rows, keep);
    const std::vector<Target> passes = targets.passes(pass.output(), rows);
    std::vector<Tensor> outputs;
    for (int64_t i = 0; i < count; ++i) outputs.push_back(batch_row(pass.output(), i));
    std::vector<Explanation> chunk;
    for (size_t m = 0; m < analyzers.size(); ++m) {
      for (const Target& t : passes) {
        const Tensor e = pass.reported(analyzers[m]->explain(pass, t));
        for (int64_t i = 0; i < count; ++i) {
          const int64_t index = t.is_index() ? t.indices()[static_cast<size_t>(i)] : -1;
          chunk.push_back(
              {static_cast<size_t>(begin + i), m, index, batch_row(e, i), outputs[static_cast<size_t>(i)]});
        }
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

std::vector<Explanation> explain_samples(const Model& model, const std::vector<Tensor>& samples,
                                         const std::vector<const Analyzer*>& analyzers,
                                         const TargetSelection& targets, int64_t max_batch,
                                         const std::function<void(size_t, size_t)>& progress) {
  return explain_samples(model, samples, analyzers, targets, ExplainSetup{}, max_batch, progress);
}

}  // namespace sieve
