#pragma once

#include <memory>
#include <string>

#include "sieve/analyzer.hpp"

namespace sieve::patterns {

// PatternNet (attribution = false): the gradient pass with every layer's weights replaced by its
// pattern a₊; PatternAttribution (attribution = true): with w ⊙ a₊. ReLUs gate by the forward
// activation, max-pooling routes to the arg-max; the seed is the target's logit.
// The patterns come from `patterns_file` when it is named, else from `patterns`.
std::unique_ptr<Analyzer> make_pattern_analyzer(bool attribution, const std::string& patterns_file,
                                                std::shared_ptr<const PatternFile> patterns = nullptr);

}  // namespace sieve::patterns
