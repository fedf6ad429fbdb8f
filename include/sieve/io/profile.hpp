#pragma once

#include <optional>
#include <string>
#include <vector>

#include "sieve/io/preprocess.hpp"

namespace sieve {

// A model's sidecar profile, MODEL.onnx.json: how inputs are preprocessed, the class names and the
// input value range (docs/profile.md).
struct ModelProfile {
  std::string description;
  std::optional<Preprocessing> preprocessing;
  std::optional<InputRange> input_range;
  std::vector<std::string> class_names;
};

ModelProfile read_profile(const std::string& path);
// The profile next to a model (model_path + ".json"), if there is one.
std::optional<ModelProfile> find_profile(const std::string& model_path);

}  // namespace sieve
