#pragma once

// Options shared by every command that reads inputs: the sidecar profile and preprocessing overrides.

#include <CLI/CLI.hpp>
#include <optional>
#include <string>
#include <vector>

#include "sieve/io/inputs.hpp"
#include "sieve/io/preprocess.hpp"
#include "sieve/io/profile.hpp"
#include "sieve/model.hpp"

namespace sieve::cli {

struct InputOptions {
  std::string profile;  // explicit profile file; default MODEL.json when present
  bool no_profile = false;
  std::string color;
  std::string scale;  // a number or a fraction, e.g. 1/255
  std::vector<float> mean, std;
  std::vector<float> raw_range;
  std::string resize, crop, interpolation;
  int64_t batch = 32;
  bool skip_unreadable = false;
};

void add_input_options(CLI::App* cmd, InputOptions& o);
// Integer options with a lower bound, and positive real options, with plain messages.
CLI::Validator at_least(long long min);
CLI::Validator positive_real();
// --skip-unreadable, for the commands that read every input up front (predict, explain).
void add_skip_unreadable_option(CLI::App* cmd, InputOptions& o);

struct LoadedInputs {
  std::optional<ModelProfile> profile;
  Preprocessing preprocessing;
  std::vector<NamedInput> inputs;
};

// Profile (unless disabled) + command-line overrides → the preprocessing of the data in `paths` (no
// inputs read yet). Throws when --scale/--mean/--std come with .npy data, which is taken as it is.
// Without `model_input` (the input the paths feed) the model must have one input.
LoadedInputs resolve_preprocessing(const std::string& model_path, const Model& model, const InputOptions& o,
                                   const std::vector<std::string>& paths,
                                   std::optional<size_t> model_input = std::nullopt);

// Profile (unless disabled) + command-line overrides → preprocessing → the inputs, one sample each.
// Files skipped with --skip-unreadable are counted and named on stderr.
LoadedInputs load_cli_inputs(const std::string& model_path, const Model& model,
                             const std::vector<std::string>& paths, const InputOptions& o,
                             std::optional<size_t> model_input = std::nullopt);

// The value range of model input `model_input`, when the profile or the preprocessing flags say what
// it is (sieve::known_input_range).
std::optional<InputRange> known_input_range(const Model& model, const LoadedInputs& loaded,
                                            const InputOptions& o, size_t model_input = 0);

}  // namespace sieve::cli
