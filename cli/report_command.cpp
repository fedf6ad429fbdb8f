// sieve report: one self-contained HTML page of a model's predictions, explanations, rules,
// conservation, evaluation and ρ(S) (sieve::report_html).

#include <chrono>
#include <iostream>

#include "commands.hpp"
#include "input_options.hpp"
#include "sieve/error.hpp"
#include "sieve/report.hpp"

namespace sieve::cli {
namespace {

struct ReportCommandOptions {
  std::string model;
  std::vector<std::string> inputs, methods, compare_models, metrics;
  std::string labels, patterns, viz, out;
  std::vector<std::string> quality_data, quality_eval;
  int top = 5;
  InputOptions input;
};

ReportModel report_model(const std::string& path, const Model& model, const LoadedInputs& loaded,
                         const InputOptions& o) {
  return {path, &model, loaded.profile ? loaded.profile->class_names : std::vector<std::string>{},
          known_input_range(model, loaded, o)};
}

void run_report(const ReportCommandOptions& o, const std::string& command_line) {
  if (o.quality_data.empty() != o.quality_eval.empty())
    throw Error(
        "--quality-data and --quality-eval go together: rho(S) fits v on one split, measures on the other");
  if (!o.quality_data.empty() && o.patterns.empty())
    throw Error(
        "--quality-data and --quality-eval measure the patterns of --patterns: give the pattern file");
  check_report_path(o.out);
  const auto start = std::chrono::steady_clock::now();
  const Model model = Model::load(o.model);
  const LoadedInputs loaded = load_cli_inputs(o.model, model, o.inputs, o.input);
  // Every compared model gets the same inputs; its profile gives its class names and input range.
  std::vector<Model> others;
  std::vector<LoadedInputs> others_loaded;
  for (const std::string& path : o.compare_models) {
    others.push_back(Model::load(path));
    others_loaded.push_back(resolve_preprocessing(path, others.back(), o.input, o.inputs));
  }
  std::vector<ReportModel> models{report_model(o.model, model, loaded, o.input)};
  for (size_t k = 0; k < others.size(); ++k)
    models.push_back(report_model(o.compare_models[k], others[k], others_loaded[k], o.input));

  ReportOptions options;
  options.methods = o.methods;
  options.metrics = o.metrics;
  options.patterns = o.patterns;
  options.viz = o.viz;
  options.top = o.top;
  options.batch = o.input.batch;
  options.command_line = command_line;
  options.preprocessing = loaded.preprocessing;
  if (!o.quality_data.empty()) {
    options.quality = QualityRun{};
    options.quality->model_path = o.model;
    options.quality->fit_data = o.quality_data;
    options.quality->eval_data = o.quality_eval;
  }
  if (!o.labels.empty()) {
    const Shape& output = model.output_shapes().at(0);
    options.labels = read_labels(o.labels, loaded.inputs.size(), output.size() == 2 ? output[1] : -1,
                                 models[0].class_names);
  }
  options.timings.emplace_back(
      "loading models and inputs",
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  const std::string html = report_html(models, loaded.inputs, options);
  write_report(o.out, html);
  std::cout << "wrote the report of " << loaded.inputs.size() << " input(s), " << o.methods.size()
            << " method(s) and " << models.size() << " model(s) to " << o.out << " (" << html.size()
            << " bytes)\n";
}

}  // namespace

void add_report_command(CLI::App& app, const std::string& command_line) {
  auto options = std::make_shared<ReportCommandOptions>();
  CLI::App* cmd = app.add_subcommand(
      "report", "Write one self-contained HTML report: predictions, explanations, rules, evaluation");
  cmd->add_option("model", options->model, "ONNX model file")->required();
  cmd->add_option("inputs", options->inputs, "Inputs: .npy, PNG/JPEG, IDX files or directories of images")
      ->required();
  cmd->add_option("--method,-m", options->methods,
                  "Method NAME[:key=value,...], one per flag (repeatable; see sieve methods)")
      ->required()
      ->allow_extra_args(false);
  cmd->add_option("--compare-model", options->compare_models,
                  "Another ONNX model explained with the first method on the same inputs, shown beside the "
                  "first (repeatable)")
      ->allow_extra_args(false);
  cmd->add_option("--labels", options->labels,
                  "True classes: an IDX or .npy file of one class per input (FILE[a:b] for a slice) or a "
                  "comma list of class indices or names; misclassified inputs come first");
  cmd->add_option("--evaluate", options->metrics,
                  "Metric NAME[:key=value,...]: region_perturbation, sparseness (repeatable)")
      ->allow_extra_args(false);
  cmd->add_option("--patterns", options->patterns,
                  "pattern.net / pattern.attribution: the fitted pattern file");
  cmd->add_option("--quality-data", options->quality_data,
                  "With --patterns: data to fit rho(S)'s projection v on (as signal-quality --data)")
      ->allow_extra_args(false);
  cmd->add_option("--quality-eval", options->quality_eval,
                  "With --patterns: data to measure rho(S) on (as signal-quality --eval)")
      ->allow_extra_args(false);
  cmd->add_option("--top", options->top, "Number of top classes to show per input")->check(at_least(1));
  cmd->add_option("--viz", options->viz,
                  "Picture: heatmap, graymap, projection, scale_input, blend (default: per method)");
  cmd->add_option("--out,-o", options->out, "The report: an .html file")->required();
  add_input_options(cmd, options->input);
  add_skip_unreadable_option(cmd, options->input);
  cmd->callback([options, command_line] { run_report(*options, command_line); });
}

}  // namespace sieve::cli
