#pragma once

#include <string>
#include <utility>
#include <vector>

#include "sieve/model.hpp"
#include "sieve/tensor.hpp"

namespace sieve {

// Runs single-sample inputs ([1, ...] each) through a single-input model in batches of at most
// `max_batch` (of the model's own batch size when it is fixed) and returns the first output of each
// sample, again with a leading dimension of 1.
std::vector<Tensor> run_per_sample(const Model& model, const std::vector<Tensor>& samples,
                                   int64_t max_batch = 32);

struct Prediction {
  std::vector<float> logits;                   // the sample's first output, flattened
  std::vector<std::pair<int64_t, float>> top;  // (class, logit), best first
};

std::vector<Prediction> predict(const Model& model, const std::vector<Tensor>& samples, int top_k,
                                int64_t max_batch = 32);

}  // namespace sieve
