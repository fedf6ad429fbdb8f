#include <iostream>

#include "commands.hpp"
#include "sieve/analyzer.hpp"

namespace sieve::cli {

void add_methods_command(CLI::App& app) {
  CLI::App* cmd =
      app.add_subcommand("methods", "List the explanation methods with their parameters and defaults");
  cmd->callback([] {
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
