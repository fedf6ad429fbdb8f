#include "evaluation/common.hpp"

#include "sieve/batch.hpp"
#include "sieve/error.hpp"
#include "sieve/evaluation.hpp"
#include "sieve/io/npy.hpp"
#include "sieve/parse.hpp"

namespace sieve::evaluation {

void check_single_input(const Model& model, const std::string& measure) {
  if (model.input_shapes().size() != 1)
    throw Error(measure + " needs a model with one input; this one has " +
                std::to_string(model.input_shapes().size()));
}

void check_samples(const std::vector<Tensor>& samples) {
  if (samples.empty()) throw Error("no inputs to evaluate");
  for (const Tensor& s : samples) {
    if (s.shape() != samples[0].shape() || s.rank() < 2 || s.dim(0) != 1)
      throw Error("inputs to evaluate must be samples [1, ...] of one shape; got " +
                  to_string(samples[0].shape()) + " and " + to_string(s.shape()));
  }
}

void check_explanations(const std::vector<Tensor>& explanations, const std::vector<Tensor>& samples) {
  if (explanations.size() != samples.size())
    throw Error(std::to_string(explanations.size()) + " explanations for " + std::to_string(samples.size()) +
                " inputs: give one per input");
  for (size_t i = 0; i < explanations.size(); ++i) {
    if (explanations[i].size() != samples[i].size())
      throw Error("explanation " + std::to_string(i) + " has shape " + to_string(explanations[i].shape()) +
                  ", but its input has shape " + to_string(samples[i].shape()));
  }
}

void check_targets(const Model& model, const std::vector<int64_t>& targets, size_t samples) {
  if (targets.size() != samples)
    throw Error(std::to_string(targets.size()) + " targets for " + std::to_string(samples) + " inputs");
  Shape output = model.output_shapes().at(0);
  int64_t per = 1;
  for (size_t d = 1; d < output.size(); ++d) per = output[d] > 0 ? per * output[d] : -1;
  for (int64_t t : targets) {
    if (t < 0 || (per > 0 && t >= per))
      throw Error("target " + std::to_string(t) + " is out of range for the output " + to_string(output));
  }
}

ExplainedRows explain_rows(const Model& model, const Analyzer& analyzer, const std::vector<Tensor>& images,
                           const std::vector<int64_t>& targets, int64_t max_batch) {
  ExplainedRows out;
  const std::vector<ValueId> keep = analyzer.trace_values(model);
  run_in_batches(model, images, max_batch, [&](const Tensor& batch, int64_t begin, int64_t count) {
    // Padding rows repeat the batch's last image and its target.
    std::vector<int64_t> indices;
    for (int64_t r = 0; r < batch.dim(0); ++r)
      indices.push_back(targets[static_cast<size_t>(begin + std::min(r, count - 1))]);
    const ForwardPass pass(model, batch, keep);
    const Tensor e = pass.reported(analyzer.explain(pass, Target(indices)));
    for (int64_t r = 0; r < count; ++r) {
      out.explanations.push_back(batch_row(e, r));
      out.outputs.push_back(batch_row(pass.output(), r));
    }
  });
  return out;
}

}  // namespace sieve::evaluation

namespace sieve {

Tensor parse_baseline(const std::string& text, const std::string& what) {
  if (const std::optional<double> v = parse_double(text)) return Tensor({1}, static_cast<float>(*v));
  if (text.size() > 4 && text.ends_with(".npy")) return read_npy(text);
  throw Error(what + "=" + text + " must be a number or a .npy file");
}

std::vector<Tensor> explain_targets(const Model& model, const Analyzer& analyzer,
                                    const std::vector<Tensor>& samples, const std::vector<int64_t>& targets,
                                    int64_t max_batch) {
  evaluation::check_samples(samples);
  evaluation::check_targets(model, targets, samples.size());
  return evaluation::explain_rows(model, analyzer, samples, targets, max_batch).explanations;
}

}  // namespace sieve
