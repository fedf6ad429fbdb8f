#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "input_options.hpp"
#include "sieve/predict.hpp"
#include "sieve/results.hpp"

namespace sieve::cli {
namespace {

struct PredictOptions {
  std::string model;
  std::vector<std::string> inputs;
  int top = 5;
  bool json = false;
  InputOptions input;
};

void run_predict(const PredictOptions& o) {
  const Model model = Model::load(o.model);
  const LoadedInputs loaded = load_cli_inputs(o.model, model, o.inputs, o.input);
  std::vector<Tensor> samples;
  for (const NamedInput& in : loaded.inputs) samples.push_back(in.tensor);
  const std::vector<Prediction> predictions = predict(model, samples, o.top, o.input.batch);
  const std::vector<std::string> names =
      loaded.profile ? loaded.profile->class_names : std::vector<std::string>{};
  auto class_name = [&](int64_t c) {
    return static_cast<size_t>(c) < names.size() ? names[static_cast<size_t>(c)] : std::string();
  };

  if (o.json) {
    nlohmann::json j{{"model", o.model},
                     {"class_names", names.empty() ? nlohmann::json(nullptr) : nlohmann::json(names)},
                     {"predictions", nlohmann::json::array()}};
    for (size_t i = 0; i < predictions.size(); ++i) {
      const std::vector<double> probabilities = softmax(predictions[i].logits);
      nlohmann::json top = nlohmann::json::array(), classes = nlohmann::json::array();
      for (const auto& [c, logit] : predictions[i].top) {
        top.push_back({c, logit});
        const std::string name = class_name(c);
        classes.push_back({{"class", c},
                           {"name", name.empty() ? nlohmann::json(nullptr) : nlohmann::json(name)},
                           {"logit", logit},
                           {"probability", probabilities[static_cast<size_t>(c)]}});
      }
      j["predictions"].push_back({{"input", loaded.inputs[i].name},
                                  {"logits", predictions[i].logits},
                                  {"probabilities", probabilities},
                                  {"top", top},
                                  {"top_classes", classes}});
    }
    std::cout << j.dump() << "\n";
    return;
  }
  for (size_t i = 0; i < predictions.size(); ++i) {
    const std::vector<double> probabilities = softmax(predictions[i].logits);
    std::cout << loaded.inputs[i].name << "\n";
    for (const auto& [c, logit] : predictions[i].top) {
      std::cout << "  " << std::setw(5) << c << "  " << std::fixed << std::setprecision(4) << std::setw(10)
                << logit << std::setw(9) << probabilities[static_cast<size_t>(c)];
      const std::string name = class_name(c);
      if (!name.empty()) std::cout << "  " << name;
      std::cout << "\n";
    }
  }
}

}  // namespace

void add_predict_command(CLI::App& app) {
  auto options = std::make_shared<PredictOptions>();
  CLI::App* cmd = app.add_subcommand("predict", "Run a model on inputs and print logits and the top classes");
  cmd->add_option("model", options->model, "ONNX model file")->required();
  cmd->add_option("inputs", options->inputs, "Inputs: .npy, PNG/JPEG, IDX files or directories of images")
      ->required();
  cmd->add_option("--top", options->top, "Number of top classes to show")->check(at_least(1));
  cmd->add_flag("--json", options->json, "Print one JSON object");
  add_input_options(cmd, options->input);
  add_skip_unreadable_option(cmd, options->input);
  cmd->callback([options] { run_predict(*options); });
}

}  // namespace sieve::cli
