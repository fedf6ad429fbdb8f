#pragma once

// The method registry: every explanation method of every family by name, with its parameters and
// defaults. It sits above the families (analyzers, rules, patterns) it creates.

#include <memory>
#include <string>
#include <vector>

#include "sieve/analyzer.hpp"
#include "sieve/visualize.hpp"

namespace sieve {

// Every registered method with its parameters and defaults.
const std::vector<MethodInfo>& available_methods();
// Throws sieve::Error for an unknown method, an unknown parameter or a malformed value.
std::unique_ptr<Analyzer> create_analyzer(const MethodSpec& spec, const AnalyzerContext& context = {});
// The segments [N, H, W] that `lime` without a mask switches on and off in images [N, C, H, W] (its
// superpixels, one integer per pixel); empty for another method or with a mask.
Tensor lime_segments(const MethodSpec& spec, const Tensor& input);

// The picture of a method's explanations: `choice` (a parse_visualization name), or the method's own
// default when it is empty.
Visualization method_visualization(const MethodSpec& spec, const std::string& choice = "");

}  // namespace sieve
