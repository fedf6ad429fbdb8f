#pragma once

// Each subcommand is a thin adapter: parse arguments, call the library, print.

#include <CLI/CLI.hpp>
#include <string>

namespace sieve::cli {

void add_info_command(CLI::App& app);
void add_predict_command(CLI::App& app);
void add_explain_command(CLI::App& app);
void add_methods_command(CLI::App& app);
void add_fit_patterns_command(CLI::App& app);
void add_signal_quality_command(CLI::App& app);
void add_evaluate_command(CLI::App& app);
// `command_line`: the whole command as typed, recorded in the report's provenance.
void add_report_command(CLI::App& app, const std::string& command_line);
void add_visualize_neuron_command(CLI::App& app);

}  // namespace sieve::cli
