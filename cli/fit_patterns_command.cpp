#include <iostream>

#include "commands.hpp"
#include "input_options.hpp"
#include "progress.hpp"
#include "sieve/error.hpp"
#include "sieve/patterns.hpp"

namespace sieve::cli {
namespace {

struct FitOptions {
  std::string model, out, type = "relu";
  std::vector<std::string> data, merge;
  InputOptions input;
};

void run_fit(const FitOptions& o) {
  if (o.data.empty() == o.merge.empty()) throw Error("fit-patterns needs either --data or --merge");
  const PatternType type = parse_pattern_type(o.type);
  const Model model = Model::load(o.model);
  PatternFile file;
  if (!o.merge.empty()) {
    file = merge_pattern_files(model, o.merge, type);
  } else {
    const LoadedInputs resolved = resolve_preprocessing(o.model, model, o.input, o.data);
    InputStream data(o.data, resolved.preprocessing, model.input_shapes().at(0));
    std::string description;
    for (const std::string& d : o.data) description += (description.empty() ? "" : ", ") + d;
    Progress progress("fitting patterns");
    file = fit_pattern_file(model, data, type, o.input.batch, description, [&](int64_t done, int64_t total) {
      progress.update(static_cast<size_t>(done), static_cast<size_t>(std::max<int64_t>(total, done)));
    });
  }
  write_pattern_file(o.out, file);
  std::cout << "fitted " << to_string(type) << " patterns of " << file.patterns.size() << " layer(s) on "
            << file.statistics.images << " input(s) to " << o.out << "\n";
}

}  // namespace

void add_fit_patterns_command(CLI::App& app) {
  auto options = std::make_shared<FitOptions>();
  CLI::App* cmd =
      app.add_subcommand("fit-patterns", "Learn PatternNet / PatternAttribution patterns from data");
  cmd->add_option("model", options->model, "ONNX model file")->required();
  cmd->add_option("--data", options->data,
                  "Training data: .npy, IDX files, PNG/JPEG files or directories; FILE[a:b] for a slice");
  cmd->add_option("--merge", options->merge, "Pattern files of the same model to merge (instead of --data)");
  cmd->add_option("--type", options->type, "relu (two-component, default), linear or linear_last");
  cmd->add_option("--out,-o", options->out, "Pattern file to write (.safetensors)")->required();
  add_input_options(cmd, options->input);
  cmd->callback([options] { run_fit(*options); });
}

}  // namespace sieve::cli
