#include "sieve/io/profile.hpp"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "sieve/error.hpp"
#include "sieve/json_keys.hpp"

namespace sieve {
namespace {

using nlohmann::json;

void only_keys(const json& j, const std::vector<std::string>& allowed, const std::string& where) {
  if (!j.is_object()) throw Error(where + " must be a JSON object");
  reject_unknown_keys(j, allowed, where);
}

std::vector<float> floats(const json& j, const std::string& where) {
  if (!j.is_array()) throw Error(where + " must be an array of numbers");
  std::vector<float> v;
  for (const json& x : j) {
    if (!x.is_number()) throw Error(where + " must be an array of numbers");
    v.push_back(x.get<float>());
  }
  return v;
}

}  // namespace

ModelProfile read_profile(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error(path + ": cannot open profile");
  json j;
  try {
    j = json::parse(in);
  } catch (const json::exception& e) {
    throw Error(path + ": not valid JSON: " + e.what());
  }
  only_keys(j, {"description", "preprocessing", "input_range", "class_names"}, path);
  ModelProfile profile;
  try {
    if (j.contains("description")) profile.description = j["description"].get<std::string>();
    if (j.contains("class_names")) profile.class_names = j["class_names"].get<std::vector<std::string>>();
    if (j.contains("preprocessing")) {
      const json& p = j["preprocessing"];
      only_keys(p, {"color", "scale", "mean", "std", "raw_range", "resize", "crop", "interpolation"},
                path + ": preprocessing");
      Preprocessing pre;
      if (p.contains("color")) {
        const std::string c = p["color"].get<std::string>();
        if (c != "rgb" && c != "bgr" && c != "grayscale")
          throw Error(path + ": preprocessing.color must be rgb, bgr or grayscale");
        pre.color = c == "rgb" ? ColorOrder::rgb : c == "bgr" ? ColorOrder::bgr : ColorOrder::grayscale;
      }
      if (p.contains("scale")) {
        pre.scale = p["scale"].is_string()
                        ? parse_number(p["scale"].get<std::string>(), path + ": preprocessing.scale")
                        : p["scale"].get<float>();
      }
      auto size_text = [&](const char* key) {
        const json& v = p[key];
        return v.is_number_integer() ? std::to_string(v.get<int64_t>()) : v.get<std::string>();
      };
      if (p.contains("resize")) parse_resize(size_text("resize"), pre, path + ": preprocessing.resize");
      if (p.contains("crop")) parse_crop(size_text("crop"), pre, path + ": preprocessing.crop");
      if (p.contains("interpolation"))
        pre.interpolation = parse_interpolation(p["interpolation"].get<std::string>(),
                                                path + ": preprocessing.interpolation");
      if (p.contains("mean")) pre.mean = floats(p["mean"], path + ": preprocessing.mean");
      if (p.contains("std")) pre.std = floats(p["std"], path + ": preprocessing.std");
      if (p.contains("raw_range")) {
        const std::vector<float> r = floats(p["raw_range"], path + ": preprocessing.raw_range");
        if (r.size() != 2 || r[0] > r[1]) throw Error(path + ": preprocessing.raw_range must be [low, high]");
        pre.raw_low = r[0];
        pre.raw_high = r[1];
      }
      profile.preprocessing = pre;
    }
    if (j.contains("input_range")) {
      const json& r = j["input_range"];
      only_keys(r, {"low", "high"}, path + ": input_range");
      InputRange range{floats(r.at("low"), path + ": input_range.low"),
                       floats(r.at("high"), path + ": input_range.high")};
      if (range.low.size() != range.high.size() || range.low.empty())
        throw Error(path + ": input_range.low and .high must have the same non-zero length");
      profile.input_range = range;
    }
  } catch (const json::exception& e) {
    throw Error(path + ": " + e.what());
  }
  return profile;
}

Preprocessing model_preprocessing(const std::optional<ModelProfile>& profile, int64_t channels) {
  Preprocessing p = profile && profile->preprocessing ? *profile->preprocessing : Preprocessing{};
  if (channels == 1) p.color = ColorOrder::grayscale;
  return p;
}

std::optional<ModelProfile> find_profile(const std::string& model_path) {
  const std::string path = model_path + ".json";
  if (!std::filesystem::exists(path)) return std::nullopt;
  return read_profile(path);
}

void check_profile_fits(const ModelProfile& profile, const std::string& path, int64_t channels,
                        int64_t classes) {
  if (classes > 0 && !profile.class_names.empty() &&
      static_cast<int64_t>(profile.class_names.size()) != classes) {
    throw Error(path + ": class_names has " + std::to_string(profile.class_names.size()) +
                " names but the model has " + std::to_string(classes) + " outputs");
  }
  if (channels > 0 && profile.input_range) {
    const int64_t n = static_cast<int64_t>(profile.input_range->low.size());
    if (n != 1 && n != channels)
      throw Error(path + ": input_range has " + std::to_string(n) + " values per bound for a model with " +
                  std::to_string(channels) + " input channels");
  }
}

std::optional<InputRange> known_input_range(const std::optional<ModelProfile>& profile,
                                            const Preprocessing& p, bool preprocessing_stated,
                                            int64_t channels) {
  if (profile && profile->input_range) return profile->input_range;
  if (!preprocessing_stated && !(profile && profile->preprocessing)) return std::nullopt;
  return input_range(p, channels);
}

}  // namespace sieve
