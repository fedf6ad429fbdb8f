#include <iostream>

#include "commands.hpp"
#include "sieve/error.hpp"

int main(int argc, char** argv) {
  CLI::App app{"sieve: explain the predictions of neural networks stored as ONNX models"};
  app.require_subcommand(1);
  sieve::cli::add_info_command(app);
  sieve::cli::add_predict_command(app);
  sieve::cli::add_explain_command(app);
  sieve::cli::add_methods_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const sieve::Error& e) {
    std::cerr << "sieve: error: " << e.what() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "sieve: error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
