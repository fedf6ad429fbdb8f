#include "input_options.hpp"

#include "sieve/error.hpp"

namespace sieve::cli {

void add_input_options(CLI::App* cmd, InputOptions& o) {
  cmd->add_option("--profile", o.profile,
                  "Model profile JSON (default: MODEL.json next to the model, if present)");
  cmd->add_flag("--no-profile", o.no_profile, "Ignore the model's sidecar profile");
  cmd->add_option("--color", o.color, "Channel order of image inputs")
      ->check(CLI::IsMember({"rgb", "bgr", "grayscale"}));
  cmd->add_option("--scale", o.scale,
                  "Multiply raw pixel values by this (e.g. 0.00392156862745098 for 1/255)");
  cmd->add_option("--mean", o.mean, "Per-channel mean subtracted after scaling")->delimiter(',');
  cmd->add_option("--std", o.std, "Per-channel standard deviation divided after the mean")->delimiter(',');
  cmd->add_option("--raw-range", o.raw_range, "Raw value range LOW,HIGH of the inputs (default 0,255)")
      ->delimiter(',')
      ->expected(2);
  cmd->add_option("--batch", o.batch, "Largest batch run at once")->check(CLI::PositiveNumber);
}

LoadedInputs resolve_preprocessing(const std::string& model_path, const Model& model, const InputOptions& o,
                                   std::optional<size_t> model_input) {
  LoadedInputs loaded;
  if (!o.profile.empty())
    loaded.profile = read_profile(o.profile);
  else if (!o.no_profile)
    loaded.profile = find_profile(model_path);
  if (loaded.profile && loaded.profile->preprocessing) loaded.preprocessing = *loaded.profile->preprocessing;
  Preprocessing& p = loaded.preprocessing;
  if (!o.color.empty())
    p.color = o.color == "rgb" ? ColorOrder::rgb : o.color == "bgr" ? ColorOrder::bgr : ColorOrder::grayscale;
  if (o.scale) p.scale = *o.scale;
  if (!o.mean.empty()) p.mean = o.mean;
  if (!o.std.empty()) p.std = o.std;
  if (o.raw_range.size() == 2) {
    p.raw_low = o.raw_range[0];
    p.raw_high = o.raw_range[1];
  }
  if (!model_input && model.input_shapes().size() != 1) {
    throw Error(model_path + ": the model has " + std::to_string(model.input_shapes().size()) +
                " inputs; the command line supports single-input models");
  }
  return loaded;
}

LoadedInputs load_cli_inputs(const std::string& model_path, const Model& model,
                             const std::vector<std::string>& paths, const InputOptions& o,
                             std::optional<size_t> model_input) {
  LoadedInputs loaded = resolve_preprocessing(model_path, model, o, model_input);
  const Shape& shape = model.input_shapes()[model_input.value_or(0)];
  loaded.inputs = load_inputs(paths, loaded.preprocessing, shape);
  for (const NamedInput& in : loaded.inputs) check_input(in.tensor, shape, in.name);
  return loaded;
}

}  // namespace sieve::cli
