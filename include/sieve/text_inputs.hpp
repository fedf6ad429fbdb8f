#pragma once

// Explanation inputs and targets in their command-line forms.

#include <string>

#include "sieve/analyzer.hpp"

namespace sieve {

// The index of the model input `setup` explains: its wrt, or the only float input (the only input when
// none is float). Throws naming the candidates when that is ambiguous, or for an unknown name.
size_t explained_input(const Model& model, const ExplainSetup& setup);

// Adds the command-line form NAME=FILE.npy or NAME=VALUE to setup.fixed, for explaining `samples`
// samples. A file with one row per sample (of a batched input) is per-sample, any other file shared; a
// number fills one row of the input's declared shape (all of it when the input is not batched).
void add_fixed_input(ExplainSetup& setup, const Model& model, const std::string& text, int64_t samples);

// TargetSelection::parse, or for MASK.npy the weight mask in that file.
TargetSelection read_target(const std::string& text);

}  // namespace sieve
