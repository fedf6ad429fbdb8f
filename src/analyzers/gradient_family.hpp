#pragma once

#include <memory>

#include "sieve/analyzer.hpp"
#include "sieve/params.hpp"

namespace sieve::analyzers {

std::unique_ptr<Analyzer> make_gradient(Params& p);
std::unique_ptr<Analyzer> make_input_x_gradient(Params& p);
std::unique_ptr<Analyzer> make_integrated_gradients(Params& p);
std::unique_ptr<Analyzer> make_smoothgrad(Params& p);
std::unique_ptr<Analyzer> make_deconvnet(Params& p);
std::unique_ptr<Analyzer> make_guided_backprop(Params& p);

}  // namespace sieve::analyzers
