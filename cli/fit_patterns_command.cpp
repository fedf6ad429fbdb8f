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
  file.fingerprint = model_fingerprint(model);
  file.type = type;
  if (!o.merge.empty()) {
    for (const std::string& path : o.merge) {
      const PatternFile part = read_pattern_file_for(path, model);
      if (file.statistics.layers().empty()) {
        file.statistics = part.statistics;
      } else {
        file.statistics.merge(part.statistics);
      }
      file.data_description += (file.data_description.empty() ? "" : " + ") + part.data_description;
    }
  } else {
    const LoadedInputs resolved = resolve_preprocessing(o.model, model, o.input, o.data);
    InputStream data(o.data, resolved.preprocessing, model.input_shapes().at(0));
    Progress progress("fitting patterns");
    file.statistics = fit_pattern_statistics(model, data, o.input.batch, [&](int64_t done, int64_t total) {
      progress.update(static_cast<size_t>(done), static_cast<size_t>(std::max<int64_t>(total, done)));
    });
    for (const std::string& d : o.data)
      file.data_description += (file.data_description.empty() ? "" : ", ") + d;
  }
  file.patterns = estimate_patterns(model, file.statistics, type);
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
