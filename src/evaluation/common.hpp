#pragma once

// Checks and helpers the measures of explanations share.

#include <string>
#include <vector>

#include "sieve/analyzer.hpp"
#include "sieve/model.hpp"
#include "sieve/tensor.hpp"

namespace sieve::evaluation {

// Throws unless `model` has one input: the measures feed perturbed copies of it alone.
void check_single_input(const Model& model, const std::string& measure);
// Throws unless there are samples, all [1, ...] of one shape.
void check_samples(const std::vector<Tensor>& samples);
// Throws unless there is one explanation per sample, each with the sample's shape.
void check_explanations(const std::vector<Tensor>& explanations, const std::vector<Tensor>& samples);
// Throws unless there is one target per sample, each a flat index into one sample's first output.
void check_targets(const Model& model, const std::vector<int64_t>& targets, size_t samples);

// Each image explained by `analyzer` for its target, with the explained output of its row.
struct ExplainedRows {
  std::vector<Tensor> explanations, outputs;
};
ExplainedRows explain_rows(const Model& model, const Analyzer& analyzer, const std::vector<Tensor>& images,
                           const std::vector<int64_t>& targets, int64_t max_batch);

}  // namespace sieve::evaluation
