#pragma once

#include <memory>

#include "sieve/analyzer.hpp"
#include "sieve/params.hpp"

namespace sieve::analyzers {

std::unique_ptr<Analyzer> make_deeplift(Params& p);

}  // namespace sieve::analyzers
