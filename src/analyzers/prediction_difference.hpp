#pragma once

#include <memory>
#include <vector>

#include "sieve/analyzer.hpp"
#include "sieve/params.hpp"

namespace sieve::analyzers {

// Prediction difference analysis (Zintgraf et al. 2017). `data` ([M, C, H, W], the model's preprocessed
// inputs) gives the statistics the windows are sampled from.
std::unique_ptr<Analyzer> make_prediction_difference(Params& p, int64_t max_batch,
                                                     std::shared_ptr<const Tensor> data);

}  // namespace sieve::analyzers
