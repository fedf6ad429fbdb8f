#pragma once

#include <cstdint>
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
// Throws sieve::Error naming `path` when the profile does not fit a model with `channels` input
// channels and `classes` outputs (each ignored when not positive): class_names of another length, an
// input_range with neither one value nor one per channel.
void check_profile_fits(const ModelProfile& profile, const std::string& path, int64_t channels,
                        int64_t classes);
// The range of the model input's values (the default bounds of z^B), when it is known: the profile's
// input_range; else, when the preprocessing `p` was stated (by the profile or by the user), the raw
// pixel range mapped through it; else nothing.
std::optional<InputRange> known_input_range(const std::optional<ModelProfile>& profile,
                                            const Preprocessing& p, bool preprocessing_stated,
                                            int64_t channels);
// The preprocessing of a model's images without overrides: the profile's (or the defaults), in the
// grayscale order when the model has one channel, the only order it can take.
Preprocessing model_preprocessing(const std::optional<ModelProfile>& profile, int64_t channels);
// The profile next to a model (model_path + ".json"), if there is one.
std::optional<ModelProfile> find_profile(const std::string& model_path);

}  // namespace sieve
