#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "sieve/analyzer.hpp"
#include "sieve/methods.hpp"

namespace sieve::cli {

void add_methods_command(CLI::App& app) {
  auto json = std::make_shared<bool>(false);
  CLI::App* cmd =
      app.add_subcommand("methods", "List the explanation methods with their parameters and defaults");
  cmd->add_flag("--json", *json, "Print one JSON object");
  cmd->callback([json] {
    if (*json) {
      nlohmann::json j{{"methods", nlohmann::json::array()}};
      for (const MethodInfo& m : available_methods()) {
        nlohmann::json parameters = nlohmann::json::array();
        for (const MethodParameter& p : m.parameters)
          parameters.push_back(
              {{"name", p.name}, {"default", p.default_value}, {"description", p.description}});
        j["methods"].push_back({{"name", m.name},
                                {"description", m.description},
                                {"picture", m.visualization},
                                {"parameters", parameters}});
      }
      std::cout << j.dump() << "\n";
      return;
    }
    for (const MethodInfo& m : available_methods()) {
      std::cout << m.name << "\n    " << m.description << "\n    picture: " << m.visualization << "\n";
      for (const MethodParameter& p : m.parameters) {
        std::cout << "    " << p.name << "=" << (p.default_value.empty() ? "(none)" : p.default_value) << "  "
                  << p.description << "\n";
      }
    }
  });
}

}  // namespace sieve::cli
