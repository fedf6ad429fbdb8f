#pragma once

#include <memory>

#include "sieve/analyzer.hpp"
#include "sieve/params.hpp"

namespace sieve::analyzers {

// The perturbation family: the model is run on altered copies of each sample and the target's change
// is attributed to what was altered. Every copy goes through the batch runner, `max_batch` rows at a time.
std::unique_ptr<Analyzer> make_occlusion(Params& p, int64_t max_batch);
std::unique_ptr<Analyzer> make_ablation(Params& p, int64_t max_batch);
std::unique_ptr<Analyzer> make_lime(Params& p, int64_t max_batch);
std::unique_ptr<Analyzer> make_rise(Params& p, int64_t max_batch);
// The superpixels LIME with parameters `p` switches on and off in images [N, C, H, W]: [N, H, W], or
// empty when `p` gives a mask.
Tensor lime_segments(Params& p, const Tensor& input);

}  // namespace sieve::analyzers
