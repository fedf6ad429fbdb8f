#pragma once

#include <memory>

#include "analyzers/params.hpp"
#include "sieve/analyzer.hpp"

namespace sieve::analyzers {

std::unique_ptr<Analyzer> make_deeplift(Params& p);

}  // namespace sieve::analyzers
