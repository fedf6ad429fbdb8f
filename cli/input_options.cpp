#include "input_options.hpp"

#include <cmath>
#include <iostream>

#include "sieve/error.hpp"
#include "sieve/io/formats.hpp"
#include "sieve/parse.hpp"

namespace sieve::cli {

CLI::Validator at_least(long long min) {
  return CLI::Validator(
      [min](std::string& text) -> std::string {
        const std::optional<int64_t> v = parse_integer(text);
        if (!v) return "'" + text + "' is not a whole number";
        if (*v < min) return "must be at least " + std::to_string(min) + ", got " + text;
        return "";
      },
      "INT>=" + std::to_string(min));
}

CLI::Validator positive_real() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        const std::optional<double> v = parse_double(text);
        if (!v) return "'" + text + "' is not a number";
        if (*v <= 0.0) return "must be greater than 0, got " + text;
        return "";
      },
      "NUMBER>0");
}

void add_input_options(CLI::App* cmd, InputOptions& o) {
  cmd->add_option("--profile", o.profile,
                  "Model profile JSON (default: MODEL.json next to the model, if present)");
  cmd->add_flag("--no-profile", o.no_profile, "Ignore the model's sidecar profile");
  cmd->add_option("--color", o.color, "Channel order of image inputs")
      ->check(CLI::IsMember({"rgb", "bgr", "grayscale"}));
  cmd->add_option("--scale", o.scale, "Multiply raw pixel values by this: a number or a fraction like 1/255");
  cmd->add_option("--mean", o.mean, "Per-channel mean subtracted after scaling, e.g. 0.485,0.456,0.406")
      ->delimiter(',')
      ->allow_extra_args(false);
  cmd->add_option("--std", o.std, "Per-channel standard deviation divided after the mean")
      ->delimiter(',')
      ->allow_extra_args(false);
  cmd->add_option("--raw-range", o.raw_range, "Raw value range LOW,HIGH of the inputs (default 0,255)")
      ->delimiter(',')
      ->expected(2);
  cmd->add_option("--resize", o.resize,
                  "Resize images first: N (the shorter side to N, keeping the aspect ratio) or WxH");
  cmd->add_option("--crop", o.crop, "Then crop the centre WxH (or NxN) of images");
  cmd->add_option("--interpolation", o.interpolation, "Resampling of images: bilinear (default) or nearest");
  cmd->add_option("--batch", o.batch, "Largest batch run at once")->check(at_least(1));
}

void add_skip_unreadable_option(CLI::App* cmd, InputOptions& o) {
  cmd->add_flag("--skip-unreadable", o.skip_unreadable,
                "Skip files that are not readable images (also inside directories) instead of stopping; "
                "they are counted and named on stderr");
}

namespace {

// --scale, --mean and --std describe raw pixel values; an .npy array (or a slice of one) is taken as the
// model input as it is, so giving them with one is an error rather than a flag silently ignored.
void check_preprocessing_applies(const std::vector<std::string>& paths, const InputOptions& o) {
  if (o.scale.empty() && o.mean.empty() && o.std.empty()) return;
  for (const std::string& path : paths) {
    if (format_of_file(parse_data_slice(path).path) == DataFormat::npy)
      throw Error(path +
                  ": --scale, --mean and --std apply to images and IDX files; an .npy array is "
                  "taken as the model input as it is");
  }
}

}  // namespace

LoadedInputs resolve_preprocessing(const std::string& model_path, const Model& model, const InputOptions& o,
                                   const std::vector<std::string>& paths, std::optional<size_t> model_input) {
  check_preprocessing_applies(paths, o);
  if (!model_input && model.input_shapes().size() != 1) {
    throw Error(model_path + ": the model has " + std::to_string(model.input_shapes().size()) +
                " inputs; the command line supports single-input models");
  }
  LoadedInputs loaded;
  const std::string profile_path = !o.profile.empty() ? o.profile : model_path + ".json";
  if (!o.profile.empty())
    loaded.profile = read_profile(o.profile);
  else if (!o.no_profile)
    loaded.profile = find_profile(model_path);
  const Shape& input = model.input_shapes().at(model_input.value_or(0));
  const Shape& output = model.output_shapes().at(0);
  const int64_t channels = input.size() >= 2 ? input[1] : -1;
  if (loaded.profile)
    check_profile_fits(*loaded.profile, profile_path, channels, output.size() == 2 ? output[1] : -1);
  loaded.preprocessing = model_preprocessing(loaded.profile, channels);
  Preprocessing& p = loaded.preprocessing;
  if (!o.color.empty())
    p.color = o.color == "rgb" ? ColorOrder::rgb : o.color == "bgr" ? ColorOrder::bgr : ColorOrder::grayscale;
  if (!o.scale.empty()) p.scale = parse_number(o.scale, "--scale");
  if (!o.mean.empty()) p.mean = o.mean;
  if (!o.std.empty()) p.std = o.std;
  if (!o.resize.empty()) parse_resize(o.resize, p, "--resize");
  if (!o.crop.empty()) parse_crop(o.crop, p, "--crop");
  if (!o.interpolation.empty()) p.interpolation = parse_interpolation(o.interpolation, "--interpolation");
  if (o.raw_range.size() == 2) {
    p.raw_low = o.raw_range[0];
    p.raw_high = o.raw_range[1];
  }
  return loaded;
}

LoadedInputs load_cli_inputs(const std::string& model_path, const Model& model,
                             const std::vector<std::string>& paths, const InputOptions& o,
                             std::optional<size_t> model_input) {
  LoadedInputs loaded = resolve_preprocessing(model_path, model, o, paths, model_input);
  const Shape& shape = model.input_shapes().at(model_input.value_or(0));
  UnreadableFiles unreadable;
  unreadable.skip = o.skip_unreadable;
  loaded.inputs = load_inputs(paths, loaded.preprocessing, shape, &unreadable);
  if (!unreadable.skipped.empty()) {
    std::string names;
    for (const std::string& f : unreadable.skipped) names += (names.empty() ? "" : ", ") + f;
    std::cerr << "sieve: notice: skipped " << unreadable.skipped.size() << " unreadable file(s): " << names
              << "\n";
  }
  if (loaded.inputs.empty()) throw Error("no readable inputs");
  for (const NamedInput& in : loaded.inputs) {
    for (const std::string& w : in.warnings) std::cerr << "sieve: warning: " << in.name << ": " << w << "\n";
  }
  for (const NamedInput& in : loaded.inputs) check_input(in.tensor, shape, in.name);
  return loaded;
}

std::optional<InputRange> known_input_range(const Model& model, const LoadedInputs& loaded,
                                            const InputOptions& o, size_t model_input) {
  const bool stated = !o.scale.empty() || !o.mean.empty() || !o.std.empty() || o.raw_range.size() == 2;
  const Shape& s = model.input_shapes().at(model_input);
  return sieve::known_input_range(loaded.profile, loaded.preprocessing, stated,
                                  s.size() >= 2 && s[1] > 0 ? s[1] : 1);
}

}  // namespace sieve::cli
