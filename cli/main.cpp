#include <iostream>
#include <string>

#include "commands.hpp"

int main(int argc, char** argv) {
  CLI::App app{"sieve: explain the predictions of neural networks stored as ONNX models"};
  app.require_subcommand(1);
  sieve::cli::add_info_command(app);
  sieve::cli::add_predict_command(app);
  sieve::cli::add_explain_command(app);
  sieve::cli::add_methods_command(app);
  sieve::cli::add_fit_patterns_command(app);
  sieve::cli::add_signal_quality_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    // One line per error, even when a library (e.g. the ONNX checker) wrote several.
    std::string message = e.what();
    for (char& c : message) {
      if (c == '\n') c = ' ';
    }
    std::cerr << "sieve: error: " << message << "\n";
    return 1;
  }
  return 0;
}
