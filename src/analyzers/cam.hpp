#pragma once

#include <memory>

#include "sieve/analyzer.hpp"
#include "sieve/params.hpp"

namespace sieve::analyzers {

std::unique_ptr<Analyzer> make_grad_cam(Params& p);
std::unique_ptr<Analyzer> make_cam(Params& p);
std::unique_ptr<Analyzer> make_guided_grad_cam(Params& p);

}  // namespace sieve::analyzers
