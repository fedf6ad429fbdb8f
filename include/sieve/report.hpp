#pragma once

// `sieve report`: one self-contained HTML page about a model's predictions and their explanations —
// the model's summary, the top classes and every method's picture per input (misclassified inputs
// first when true labels are given), one method across several models, each method's parameters,
// rules and conservation, evaluation curves, ρ(S) of the patterns, and where it all came from. Pictures
// are inline PNG data URIs and charts inline SVG: the page needs no other file and no network.

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "sieve/io/inputs.hpp"
#include "sieve/io/preprocess.hpp"
#include "sieve/model.hpp"
#include "sieve/signal_quality.hpp"

namespace sieve {

// One model of the report: the first is the one the report is about; the others are compared with it
// on the same inputs with the first method.
struct ReportModel {
  std::string path;  // as given, shown in the report
  const Model* model = nullptr;
  std::vector<std::string> class_names;   // empty: classes by index
  std::optional<InputRange> input_range;  // the model input's value range (z^B bounds, uniform fills)
};

struct ReportOptions {
  std::vector<std::string> methods;   // method texts ("lrp.epsilon:epsilon=0.25"), at least one
  std::vector<std::string> metrics;   // region_perturbation[:...] and sparseness, evaluated on model 1
  std::string patterns;               // pattern file of the first model (pattern.net, pattern.attribution)
  std::optional<QualityRun> quality;  // ρ(S) of these patterns on these splits, when given
  Preprocessing preprocessing;        // how the ρ(S) splits are read
  std::string viz;                    // the picture of every method; empty: each method's own
  std::vector<int64_t> labels;        // the true class of every input; empty: none given
  int top = 5;                        // classes listed per input
  int64_t batch = 32;                 // largest batch run at once
  std::string command_line;           // shown under provenance
  // Stages timed by the caller (loading the models and inputs), listed before the report's own.
  std::vector<std::pair<std::string, double>> timings;
};

// The true classes of `inputs` inputs: an IDX or .npy file of one integer per input (FILE[a:b] for a
// slice, as for data), or a comma list of class indices and names. Throws sieve::Error naming the file
// or item for a count that differs from the inputs, a value that is not a class index below `classes`
// (when positive) or an unknown name (with the nearest one).
std::vector<int64_t> read_labels(const std::string& text, size_t inputs, int64_t classes,
                                 const std::vector<std::string>& class_names);

// The page. `inputs` are samples of the first model's input; every model takes them as they are.
// Throws sieve::Error for an unknown method or metric, a method that cannot explain a model, or
// inputs that do not fit a model.
std::string report_html(const std::vector<ReportModel>& models, const std::vector<NamedInput>& inputs,
                        const ReportOptions& options);

// Throws sieve::Error unless `path` ends in .html or .htm and its directory exists (checked by
// write_report, and by callers before any work).
void check_report_path(const std::string& path);
// Writes the page atomically (sieve::write_file_atomically) after check_report_path.
void write_report(const std::string& path, const std::string& html);

// `text` with & < > " ' escaped for HTML text and attribute values.
std::string html_escape(const std::string& text);

}  // namespace sieve
