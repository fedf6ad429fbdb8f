// sieve visualize-neuron: activation maximization (METHODS.md "Activation maximization"): an input
// that maximizes a class or a channel's mean activation, per target a PNG, and the value per step as
// CSV and as an SVG line chart.

#include <algorithm>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "commands.hpp"
#include "input_options.hpp"
#include "sieve/activation_maximization.hpp"
#include "sieve/error.hpp"
#include "sieve/io/line_chart.hpp"
#include "sieve/parse.hpp"
#include "sieve/visualize.hpp"
#include "text_files.hpp"

namespace fs = std::filesystem;

namespace sieve::cli {
namespace {

struct VisualizeOptions {
  std::string model, out, objective = "logit", start = "random";
  std::vector<std::string> targets, data;
  int64_t steps = 200, blur_every = 0, jitter = 0;
  double lr = 0.1, l2 = 0.0, blur_sigma = 0.5, init_scale = 0.1, prior_weight = 0.0,
         prior_regularization = 0.1;
  uint64_t seed = 0;
  InputOptions input;
};

// A file name from a target's label: letters, digits, '-' and '.' kept, everything else '_'.
std::string file_stem(size_t index, const std::string& label) {
  std::string stem = std::to_string(index) + "_";
  for (char c : label) stem += std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' ? c : '_';
  return stem;
}

void run_visualize(const VisualizeOptions& o) {
  const Model model = Model::load(o.model);
  if (fs::exists(o.out) && !fs::is_directory(o.out))
    throw Error("--out " + o.out + ": exists and is not a directory");
  const bool wants_data = o.start == "mean" || o.prior_weight > 0.0;
  if (wants_data && o.data.empty())
    throw Error(std::string(o.start == "mean" ? "--start mean" : "--prior-weight") + " needs --data");
  if (!wants_data && !o.data.empty())
    throw Error("--data is used by --start mean and --prior-weight; neither is given");
  const LoadedInputs loaded = o.data.empty() ? resolve_preprocessing(o.model, model, o.input, {})
                                             : load_cli_inputs(o.model, model, o.data, o.input);
  const std::vector<std::string> class_names =
      loaded.profile ? loaded.profile->class_names : std::vector<std::string>{};
  std::vector<NeuronTarget> targets;
  for (const std::string& t : o.targets) targets.push_back(parse_neuron_target(t, class_names));

  ActivationMaximizationOptions options;
  options.objective = o.objective == "log-softmax" ? ActivationMaximizationOptions::Objective::log_softmax
                                                   : ActivationMaximizationOptions::Objective::logit;
  options.steps = o.steps;
  options.learning_rate = o.lr;
  options.l2 = o.l2;
  options.blur_every = o.blur_every;
  options.blur_sigma = o.blur_sigma;
  options.jitter = o.jitter;
  options.seed = o.seed;
  options.init_scale = o.init_scale;
  options.range = known_input_range(model, loaded, o.input);
  std::vector<Tensor> samples;
  for (const NamedInput& in : loaded.inputs) samples.push_back(in.tensor);
  if (o.start == "mean") {
    options.start = samples.at(0).clone();
    for (int64_t j = 0; j < options.start.size(); ++j) {
      double sum = 0.0;
      for (const Tensor& s : samples) sum += s[j];
      options.start[j] = static_cast<float>(sum / static_cast<double>(samples.size()));
    }
  }
  GaussianPrior prior;
  if (o.prior_weight > 0.0) {
    prior = fit_gaussian_prior(samples, o.prior_regularization);
    options.prior = &prior;
    options.prior_weight = o.prior_weight;
  }

  std::vector<NeuronVisualization> results;
  for (const NeuronTarget& t : targets) results.push_back(visualize_neuron(model, t, options));

  fs::create_directories(o.out);
  std::ostringstream csv;
  csv << "step";
  for (const NeuronTarget& t : targets) csv << "," << '"' << t.label << '"';
  csv << "\n";
  for (size_t step = 0; step < results.front().values.size(); ++step) {
    csv << step;
    for (const NeuronVisualization& r : results) csv << "," << format_number(r.values[step]);
    csv << "\n";
  }
  write_text((fs::path(o.out) / "values.csv").string(), csv.str());

  const std::string value_name = targets.front().node.empty()
                                     ? (o.objective == "log-softmax" ? "log-softmax" : "logit")
                                     : "mean activation";
  LineChart chart{"step", value_name, 0, 1, {ChartPanel{}}};
  bool first = true;
  for (size_t k = 0; k < targets.size(); ++k) {
    chart.panels.front().series.push_back({targets[k].label, results[k].values, false});
    for (double v : results[k].values) {
      chart.y_min = first ? v : std::min(chart.y_min, v);
      chart.y_max = first ? v : std::max(chart.y_max, v);
      first = false;
    }
  }
  if (chart.y_max <= chart.y_min) chart.y_max = chart.y_min + 1.0;
  write_text((fs::path(o.out) / "values.svg").string(), line_chart_svg(chart));

  std::vector<std::vector<Image>> row(1);
  for (size_t k = 0; k < targets.size(); ++k) {
    const Image image = input_image(results[k].image);
    write_png((fs::path(o.out) / (file_stem(k, targets[k].label) + ".png")).string(), image);
    row.front().push_back(image);
    std::cout << std::left << std::setw(24) << targets[k].label << std::right << " " << value_name << " "
              << format_number(results[k].values.front()) << " -> " << format_number(results[k].values.back())
              << "\n";
  }
  write_png((fs::path(o.out) / "grid.png").string(), grid(row, 2, 28));
}

}  // namespace

void add_visualize_neuron_command(CLI::App& app) {
  auto options = std::make_shared<VisualizeOptions>();
  CLI::App* cmd = app.add_subcommand(
      "visualize-neuron",
      "Activation maximization: an input that maximizes a class or a channel's mean activation");
  cmd->add_option("model", options->model, "ONNX model file")->required();
  cmd->add_option("--target,-t", options->targets,
                  "CLASS (an index or a class name of the profile) or NODE:CHANNEL (repeatable)")
      ->required();
  cmd->add_option("--out,-o", options->out,
                  "Directory for one PNG per target, grid.png, values.csv and values.svg")
      ->required();
  cmd->add_option("--objective", options->objective, "For classes: logit or log-softmax (default logit)")
      ->check(CLI::IsMember({"logit", "log-softmax"}));
  cmd->add_option("--steps", options->steps, "Gradient ascent steps (default 200)")->check(at_least(1));
  cmd->add_option("--lr", options->lr, "Step size (default 0.1)")->check(positive_real());
  cmd->add_option("--l2", options->l2, "Weight lambda of the penalty lambda*||x||^2 (default 0)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--blur-every", options->blur_every, "Blur the image every k steps (default 0: never)")
      ->check(at_least(0));
  cmd->add_option("--blur-sigma", options->blur_sigma, "Sigma of that blur in pixels (default 0.5)")
      ->check(positive_real());
  cmd->add_option("--jitter", options->jitter,
                  "Take each step's gradient at the image rolled by up to +-J pixels (default 0)")
      ->check(at_least(0));
  cmd->add_option("--seed", options->seed, "Seed of the random start and the jitter (default 0)");
  cmd->add_option("--start", options->start, "random (N(0, init-scale^2)) or mean (the mean of --data)")
      ->check(CLI::IsMember({"random", "mean"}));
  cmd->add_option("--init-scale", options->init_scale, "Standard deviation of the random start (default 0.1)")
      ->check(positive_real());
  cmd->add_option("--data", options->data,
                  "Data for --start mean and the Gaussian prior (files or directories)");
  cmd->add_option("--prior-weight", options->prior_weight,
                  "Weight of the gradient of log N(x; mean, covariance of --data) (default 0: no prior)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--prior-regularization", options->prior_regularization,
                  "r: the prior's covariance is Sigma + r*trace(Sigma)/D*I (default 0.1)")
      ->check(positive_real());
  add_input_options(cmd, options->input);
  cmd->callback([options] { run_visualize(*options); });
}

}  // namespace sieve::cli
