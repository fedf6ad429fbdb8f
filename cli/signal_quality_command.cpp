// sieve signal-quality: ρ(S) of the signal estimators random, S_w, S_a and S_a+- per pattern layer
// (PatternNet §4.1, Fig. 3), as a table, JSON and an SVG line plot.

#include <iostream>
#include <memory>

#include "commands.hpp"
#include "input_options.hpp"
#include "progress.hpp"
#include "sieve/error.hpp"
#include "sieve/signal_quality.hpp"
#include "text_files.hpp"

namespace sieve::cli {
namespace {

struct QualityOptions {
  std::string model, patterns, output = "both", json, svg;
  std::vector<std::string> data, eval;
  uint64_t seed = 0;
  double ridge = kQualityRidge;
  bool allow_overlap = false;
  InputOptions input;
};

void run_quality(const QualityOptions& o) {
  std::vector<QualityOutput> outputs;
  if (o.output == "both") {
    outputs = {QualityOutput::pre, QualityOutput::post};
  } else {
    outputs = {parse_quality_output(o.output)};
  }
  const Model model = Model::load(o.model);
  std::vector<std::string> all_data = o.data;
  all_data.insert(all_data.end(), o.eval.begin(), o.eval.end());
  const LoadedInputs resolved = resolve_preprocessing(o.model, model, o.input, all_data);
  const QualityRun run{o.model,       o.patterns, o.data,  o.eval,         outputs,
                       o.input.batch, o.seed,     o.ridge, o.allow_overlap};
  // One progress bar per statistics pass.
  std::unique_ptr<Progress> progress;
  std::string stage_shown;
  const QualityReport report = measure_signal_quality(
      model, run, resolved.preprocessing, [&](const std::string& stage, int64_t done, int64_t total) {
        if (stage != stage_shown) progress = std::make_unique<Progress>(stage), stage_shown = stage;
        progress->update(static_cast<size_t>(done), static_cast<size_t>(std::max<int64_t>(total, done)));
      });
  progress.reset();
  std::cout << "patterns fitted on " << report.pattern_images << " input(s) (" << report.pattern_data
            << "), v on " << report.fit_images << ", evaluated on " << report.eval_images << "\n";
  for (size_t k = 0; k < outputs.size(); ++k)
    std::cout << (k > 0 ? "\n" : "") << quality_table(report.outputs[k], report.results[k]);
  if (!o.json.empty()) write_text(o.json, quality_json(report).dump(2) + "\n");
  if (!o.svg.empty()) write_text(o.svg, quality_svg(report));
}

}  // namespace

void add_signal_quality_command(CLI::App& app) {
  auto options = std::make_shared<QualityOptions>();
  CLI::App* cmd = app.add_subcommand(
      "signal-quality",
      "Measure the signal estimators random, S_w, S_a, S_a+- per layer: rho(S) (PatternNet Fig. 3)");
  cmd->add_option("model", options->model, "ONNX model file")->required();
  cmd->add_option("--patterns", options->patterns, "Pattern file of this model (sieve fit-patterns), split 1")
      ->required();
  cmd->add_option("--data", options->data, "Data to fit the projection v on (split 2); FILE[a:b] for a slice")
      ->required();
  cmd->add_option("--eval", options->eval,
                  "Data to measure the correlation on (split 3); FILE[a:b] for a slice")
      ->required();
  cmd->add_option("--output", options->output,
                  "The neuron output t: pre (y = wᵀx), post (relu(wᵀx + b)) or both (default)")
      ->check(CLI::IsMember({"pre", "post", "both"}));
  cmd->add_option("--json", options->json,
                  "Write every result (per layer, estimator, output and neuron) as JSON");
  cmd->add_option("--svg", options->svg, "Write a line plot of the mean rho per layer (SVG)");
  cmd->add_option("--seed", options->seed, "Seed of the random directions (default 0)");
  cmd->add_option("--ridge", options->ridge, "Ridge factor r: lambda = r * trace(Sigma_x) / D (default 1e-6)")
      ->check(positive_real());
  cmd->add_flag("--allow-overlap", options->allow_overlap,
                "Accept splits that share samples (the same file with overlapping ranges)");
  add_input_options(cmd, options->input);
  cmd->callback([options] { run_quality(*options); });
}

}  // namespace sieve::cli
