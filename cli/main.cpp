#include <iostream>
#include <string>

#include "commands.hpp"
#include "sieve/error.hpp"

namespace {

// "did you mean" for a mistyped subcommand or option: the first command-line word that names neither,
// matched against the subcommands or the options of the subcommand given.
std::string suggestion(const CLI::App& app, int argc, char** argv) {
  if (argc < 2) return "";
  const std::string command = argv[1];
  if (command.empty() || command[0] == '-') return "";
  std::vector<std::string> commands;
  const CLI::App* sub = nullptr;
  for (const CLI::App* s : app.get_subcommands([](const CLI::App*) { return true; })) {
    commands.push_back(s->get_name());
    if (s->get_name() == command) sub = s;
  }
  if (sub == nullptr) {
    const std::string near = sieve::closest_match(command, commands);
    return near.empty() ? "" : " (did you mean '" + near + "'?)";
  }
  std::vector<std::string> flags;
  for (const CLI::Option* o : sub->get_options([](const CLI::Option*) { return true; })) {
    for (const std::string& l : o->get_lnames()) flags.push_back("--" + l);
    for (const std::string& s : o->get_snames()) flags.push_back("-" + s);
  }
  for (int i = 2; i < argc; ++i) {
    std::string word = argv[i];
    if (word.size() < 2 || word[0] != '-' || std::isdigit(static_cast<unsigned char>(word[1])) ||
        word[1] == '.')
      continue;
    word = word.substr(0, word.find('='));
    if (std::find(flags.begin(), flags.end(), word) != flags.end()) continue;
    const std::string near = sieve::closest_match(word, flags);
    return near.empty() ? "" : " (did you mean '" + near + "'?)";
  }
  return "";
}

// The command as a shell would take it back: words with characters other than these quoted.
std::string command_line(int argc, char** argv) {
  std::string line;
  for (int i = 0; i < argc; ++i) {
    const std::string word = argv[i];
    const bool plain =
        !word.empty() &&
        word.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_./:=,+-@") ==
            std::string::npos;
    std::string quoted = "'";
    for (char c : word) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
    line += (i > 0 ? " " : "") + (plain ? word : quoted + "'");
  }
  return line;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"sieve: explain the predictions of neural networks stored as ONNX models"};
  app.set_version_flag("--version", std::string("sieve ") + SIEVE_VERSION);
  app.require_subcommand(1);
  sieve::cli::add_info_command(app);
  sieve::cli::add_predict_command(app);
  sieve::cli::add_explain_command(app);
  sieve::cli::add_methods_command(app);
  sieve::cli::add_fit_patterns_command(app);
  sieve::cli::add_signal_quality_command(app);
  sieve::cli::add_evaluate_command(app);
  sieve::cli::add_report_command(app, command_line(argc, argv));
  sieve::cli::add_visualize_neuron_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
    std::cerr << "sieve: error: " << sieve::single_line(e.what()) << suggestion(app, argc, argv) << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "sieve: error: " << sieve::single_line(e.what()) << "\n";
    return 1;
  }
  return 0;
}
