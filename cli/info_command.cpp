#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "sieve/error.hpp"
#include "sieve/model.hpp"

namespace sieve::cli {
namespace {

struct InfoOptions {
  std::string model;
  bool json = false;
};

void run_info(const InfoOptions& o) {
  const OperatorScan scan = scan_operators(o.model);
  if (!scan.unsupported.empty()) {
    std::string list;
    for (const std::string& u : scan.unsupported) list += (list.empty() ? "" : ", ") + u;
    throw Error(o.model + ": unsupported operators (opset " + std::to_string(scan.opset) + "): " + list);
  }
  const Model model = Model::load(o.model);
  const ModelReport& r = model.report();
  if (o.json) {
    nlohmann::json j = model_summary_json(o.model, model);
    j["all_operators_supported"] = true;
    std::cout << j.dump(2) << "\n";
    return;
  }
  std::cout << "model:      " << o.model << "\n"
            << "producer:   " << (r.producer.empty() ? "(unknown)" : r.producer) << "\n"
            << "opset:      " << r.opset << "\n";
  for (size_t i = 0; i < model.input_names().size(); ++i) {
    std::cout << "input:      " << model.input_names()[i] << " " << to_string(model.input_shapes()[i])
              << "\n";
  }
  for (size_t i = 0; i < model.output_names().size(); ++i) {
    std::cout << "output:     " << model.output_names()[i] << " " << to_string(model.output_shapes()[i])
              << "\n";
  }
  std::cout << "parameters: " << r.parameter_count << "\n"
            << "operators in the file:";
  for (const auto& [op, n] : r.onnx_op_counts) std::cout << " " << op << "×" << n;
  std::cout << "\noperators after canonicalization:";
  for (const auto& [op, n] : r.op_counts) std::cout << " " << op << "×" << n;
  std::cout << "\nfolded at load time: " << r.folded_constant_nodes << " constant node(s)\n"
            << "canonicalizations:" << (r.canonicalizations.empty() ? " none" : "") << "\n";
  for (const std::string& c : r.canonicalizations) std::cout << "  - " << c << "\n";
  std::cout << "all operators supported: yes\n";
}

}  // namespace

void add_info_command(CLI::App& app) {
  auto options = std::make_shared<InfoOptions>();
  CLI::App* cmd =
      app.add_subcommand("info", "Show a model's inputs, outputs, operators and canonicalizations");
  cmd->add_option("model", options->model, "ONNX model file")->required();
  cmd->add_flag("--json", options->json, "Print one JSON object");
  cmd->callback([options] { run_info(*options); });
}

}  // namespace sieve::cli
