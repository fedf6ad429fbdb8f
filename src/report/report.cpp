#include "sieve/report.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <iomanip>
#include <memory>
#include <sstream>

#include "sieve/error.hpp"
#include "sieve/evaluation.hpp"
#include "sieve/io/files.hpp"
#include "sieve/io/formats.hpp"
#include "sieve/io/idx.hpp"
#include "sieve/io/line_chart.hpp"
#include "sieve/io/npy.hpp"
#include "sieve/lrp.hpp"
#include "sieve/methods.hpp"
#include "sieve/parse.hpp"
#include "sieve/patterns.hpp"
#include "sieve/predict.hpp"
#include "sieve/results.hpp"
#include "sieve/visualize.hpp"

namespace fs = std::filesystem;

namespace sieve {

std::string html_escape(const std::string& text) {
  std::string out;
  for (char c : xml_escape(text)) out += c == '\'' ? std::string("&#39;") : std::string(1, c);
  return out;
}

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

std::string base64(const std::string& bytes) {
  static const char digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  for (size_t i = 0; i < bytes.size(); i += 3) {
    uint32_t chunk = static_cast<uint8_t>(bytes[i]) << 16;
    if (i + 1 < bytes.size()) chunk |= static_cast<uint32_t>(static_cast<uint8_t>(bytes[i + 1])) << 8;
    if (i + 2 < bytes.size()) chunk |= static_cast<uint8_t>(bytes[i + 2]);
    out += digits[(chunk >> 18) & 63];
    out += digits[(chunk >> 12) & 63];
    out += i + 1 < bytes.size() ? digits[(chunk >> 6) & 63] : '=';
    out += i + 2 < bytes.size() ? digits[chunk & 63] : '=';
  }
  return out;
}

// A picture as an <img> with its PNG inline; shown at a fixed width, enlarged without smoothing.
std::string image_tag(const Image& image, const std::string& alt) {
  return "<img class=\"cell\" alt=\"" + html_escape(alt) + "\" src=\"data:image/png;base64," +
         base64(encode_png(image)) + "\">";
}

// A chart inline: the SVG element without the XML declaration a standalone file starts with.
std::string inline_svg(const std::string& svg) {
  const size_t start = svg.find("<svg");
  return "<div class=\"chart\">" + svg.substr(start == std::string::npos ? 0 : start) + "</div>\n";
}

std::string number(double v, int precision = 4) {
  if (std::isnan(v)) return "–";
  std::ostringstream s;
  s << std::fixed << std::setprecision(precision) << v;
  return s.str();
}

std::string class_text(int64_t c, const std::vector<std::string>& names) {
  const std::string index = std::to_string(c);
  return static_cast<size_t>(c) < names.size() ? names[static_cast<size_t>(c)] + " (" + index + ")" : index;
}

std::string utc_now() {
  const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm utc{};
  gmtime_r(&now, &utc);
  std::ostringstream s;
  s << std::put_time(&utc, "%Y-%m-%d %H:%M:%S UTC");
  return s.str();
}

const char* kStyle = R"(
body { font-family: sans-serif; font-size: 14px; margin: 16px 24px; color: #222; background: #fff; }
h1 { font-size: 22px; margin: 0 0 4px 0; }
h2 { font-size: 18px; margin: 28px 0 8px 0; border-bottom: 1px solid #ccc; }
h3 { font-size: 15px; margin: 18px 0 6px 0; }
nav a { margin-right: 12px; }
table { border-collapse: collapse; margin: 4px 0 8px 0; }
th, td { border: 1px solid #ccc; padding: 3px 6px; text-align: left; vertical-align: top; }
th { background: #f0f0f0; }
th.sortable { cursor: pointer; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
img.cell { width: 84px; image-rendering: pixelated; display: block; }
tr.wrong td { background: #fde8e8; }
.badge { color: #a00; font-weight: bold; }
pre { background: #f7f7f7; border: 1px solid #ddd; padding: 6px; overflow-x: auto; font-size: 12px; }
ol.top { margin: 0; padding-left: 18px; white-space: nowrap; }
.note { color: #555; }
)";

// Sorting a table by a column (numbers by their data-sort value) and hiding correctly classified rows.
const char* kScript = R"(
function sortRows(table, column) {
  var body = table.tBodies[0];
  var rows = Array.prototype.slice.call(body.rows);
  var ascending = table.getAttribute('data-sorted') !== String(column);
  rows.sort(function (a, b) {
    var x = a.cells[column].getAttribute('data-sort'), y = b.cells[column].getAttribute('data-sort');
    var d = isNaN(parseFloat(x)) ? x.localeCompare(y) : parseFloat(x) - parseFloat(y);
    return ascending ? d : -d;
  });
  rows.forEach(function (r) { body.appendChild(r); });
  table.setAttribute('data-sorted', ascending ? String(column) : '');
}
document.querySelectorAll('th.sortable').forEach(function (th) {
  th.addEventListener('click', function () { sortRows(th.closest('table'), th.cellIndex); });
});
var onlyWrong = document.getElementById('only-wrong');
if (onlyWrong) {
  onlyWrong.addEventListener('change', function () {
    document.querySelectorAll('#predictions tbody tr').forEach(function (r) {
      r.style.display = onlyWrong.checked && !r.classList.contains('wrong') ? 'none' : '';
    });
  });
}
)";

// One model's methods, created once and prepared for it.
struct PreparedMethods {
  std::vector<MethodSpec> specs;
  std::vector<std::unique_ptr<Analyzer>> owned;
  std::vector<const Analyzer*> analyzers;
};

PreparedMethods prepare_methods(const std::vector<MethodSpec>& specs, const ReportModel& m,
                                const ReportOptions& o) {
  AnalyzerContext context;
  context.input_range = m.input_range;
  context.patterns_file = o.patterns;
  context.max_batch = o.batch;
  PreparedMethods p;
  p.specs = specs;
  for (const MethodSpec& spec : specs) {
    p.owned.push_back(create_analyzer(spec, context));
    p.owned.back()->prepare(*m.model);
    p.analyzers.push_back(p.owned.back().get());
  }
  return p;
}

std::vector<MethodSpec> parse_methods(const std::vector<std::string>& texts) {
  if (texts.empty()) throw Error("the report needs at least one method (-m NAME)");
  std::vector<MethodSpec> specs;
  for (const std::string& t : texts) {
    MethodSpec spec = MethodSpec::parse(t);
    for (const MethodSpec& s : specs) {
      if (s.text() == spec.text()) throw Error("method " + spec.text() + " is given more than once");
    }
    specs.push_back(std::move(spec));
  }
  return specs;
}

std::vector<MethodSpec> parse_report_metrics(const std::vector<std::string>& texts) {
  std::vector<MethodSpec> metrics;
  for (const std::string& t : texts) {
    MethodSpec spec = MethodSpec::parse(t);
    if (spec.name == "region_perturbation") {
      region_perturbation_options(spec);
    } else if (spec.name == "sparseness") {
      if (!spec.params.empty())
        throw Error("metric 'sparseness' has no parameter '" + spec.params.begin()->first + "'");
    } else {
      throw Error("--evaluate " + t +
                  ": the report evaluates region_perturbation and sparseness (sieve evaluate measures the "
                  "others)");
    }
    for (const MethodSpec& m : metrics) {
      if (m.name == spec.name) throw Error("--evaluate " + spec.name + " is given more than once");
    }
    metrics.push_back(std::move(spec));
  }
  return metrics;
}

// What one model says about the inputs: predictions and every method's explanation of the predicted
// class.
struct ModelResults {
  std::vector<Prediction> predictions;
  std::vector<int64_t> predicted;
  std::vector<std::vector<Tensor>> explanations;  // [method][input]
};

ModelResults run_model(const ReportModel& m, const std::vector<Tensor>& samples,
                       const PreparedMethods& methods, const ReportOptions& o) {
  ModelResults r;
  r.predictions = predict(*m.model, samples, o.top, o.batch);
  for (const Prediction& p : r.predictions) r.predicted.push_back(p.top.at(0).first);
  r.explanations.assign(methods.analyzers.size(), std::vector<Tensor>(samples.size()));
  for (Explanation& e : explain_samples(*m.model, samples, methods.analyzers, TargetSelection{}, o.batch))
    r.explanations[e.method][e.sample] = std::move(e.values);
  return r;
}

void model_section(std::ostringstream& h, const ReportModel& m) {
  const nlohmann::json s = model_summary_json(m.path, *m.model);
  h << "<table class=\"summary\">\n";
  auto row = [&](const std::string& key, const std::string& value) {
    h << "<tr><th>" << html_escape(key) << "</th><td>" << html_escape(value) << "</td></tr>\n";
  };
  row("model", m.path);
  row("producer", s["producer"].get<std::string>().empty() ? "(unknown)" : s["producer"].get<std::string>());
  row("opset", std::to_string(s["opset"].get<int64_t>()));
  for (size_t i = 0; i < m.model->input_names().size(); ++i)
    row("input", m.model->input_names()[i] + " " + to_string(m.model->input_shapes()[i]));
  for (size_t i = 0; i < m.model->output_names().size(); ++i)
    row("output", m.model->output_names()[i] + " " + to_string(m.model->output_shapes()[i]));
  row("explained output", s["explained_output"].get<std::string>());
  row("parameters", std::to_string(s["parameters"].get<int64_t>()));
  auto ops = [](const nlohmann::json& counts) {
    std::string text;
    for (const auto& [op, n] : counts.items())
      text += (text.empty() ? "" : " ") + op + "×" + std::to_string(n.get<int>());
    return text;
  };
  row("operators in the file", ops(s["onnx_operators"]));
  row("operators after canonicalization", ops(s["operators"]));
  std::string rewrites;
  for (const nlohmann::json& c : s["canonicalizations"])
    rewrites += (rewrites.empty() ? "" : "; ") + c.get<std::string>();
  row("canonicalizations", rewrites.empty() ? "none" : rewrites);
  h << "</table>\n";
}

// Fig. 22.6: per input its top classes and every method's picture side by side; Fig. 22.5: with labels,
// the misclassified inputs first.
void predictions_section(std::ostringstream& h, const ReportModel& m, const std::vector<NamedInput>& inputs,
                         const std::vector<Image>& input_images, const PreparedMethods& methods,
                         const std::vector<Visualization>& pictures, const ModelResults& r,
                         const ReportOptions& o) {
  const bool labelled = !o.labels.empty();
  std::vector<size_t> order(inputs.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  size_t wrong = 0;
  if (labelled) {
    std::stable_partition(order.begin(), order.end(),
                          [&](size_t i) { return r.predicted[i] != o.labels[i]; });
    for (size_t i = 0; i < inputs.size(); ++i) wrong += r.predicted[i] != o.labels[i] ? 1 : 0;
    h << "<p>" << wrong << " of " << inputs.size()
      << " input(s) misclassified, listed first. <label><input type=\"checkbox\" id=\"only-wrong\"> show "
         "only "
         "misclassified inputs</label></p>\n";
  }
  h << "<p class=\"note\">Each method explains the predicted class (its logit; a class's logit shows when "
       "the pointer rests on it). Click a column heading to sort.</p>\n";
  h << "<table id=\"predictions\">\n<thead><tr><th class=\"sortable\">#</th><th "
       "class=\"sortable\">input</th>";
  if (labelled) h << "<th class=\"sortable\">true class</th>";
  h << "<th class=\"sortable\">top " << o.top << " (probability)</th>";
  for (const MethodSpec& spec : methods.specs) h << "<th>" << html_escape(spec.text()) << "</th>";
  h << "</tr></thead>\n<tbody>\n";
  for (size_t i : order) {
    const bool is_wrong = labelled && r.predicted[i] != o.labels[i];
    const std::vector<double> probabilities = softmax(r.predictions[i].logits);
    h << "<tr" << (is_wrong ? " class=\"wrong\"" : "") << "><td class=\"num\" data-sort=\"" << i << "\">" << i
      << "</td><td data-sort=\"" << html_escape(inputs[i].name) << "\">"
      << image_tag(input_images[i], inputs[i].name) << html_escape(inputs[i].name) << "</td>";
    if (labelled) {
      h << "<td data-sort=\"" << o.labels[i] << "\">" << html_escape(class_text(o.labels[i], m.class_names))
        << (is_wrong ? "<br><span class=\"badge\">misclassified</span>" : "") << "</td>";
    }
    const size_t best = static_cast<size_t>(r.predicted[i]);
    h << "<td data-sort=\"" << number(probabilities[best], 6) << "\"><ol class=\"top\">";
    for (const auto& [c, logit] : r.predictions[i].top) {
      h << "<li title=\"logit " << number(logit, 3) << "\">" << html_escape(class_text(c, m.class_names))
        << " " << number(probabilities[static_cast<size_t>(c)]) << "</li>";
    }
    h << "</ol></td>";
    for (size_t k = 0; k < methods.specs.size(); ++k) {
      const Image picture = visualize(pictures[k], r.explanations[k][i], input_images[i]);
      h << "<td>" << image_tag(picture, methods.specs[k].text() + " of " + inputs[i].name) << "</td>";
    }
    h << "</tr>\n";
  }
  h << "</tbody></table>\n";
}

// Fig. 22.7: the first method's picture of each model's predicted class, one column per model.
void models_section(std::ostringstream& h, const std::vector<ReportModel>& models,
                    const std::vector<NamedInput>& inputs, const std::vector<Image>& input_images,
                    const MethodSpec& method, Visualization picture,
                    const std::vector<ModelResults>& results) {
  h << "<p class=\"note\">" << html_escape(method.text())
    << " of each model's predicted class on the same inputs.</p>\n";
  h << "<table id=\"model-comparison\">\n<thead><tr><th>input</th>";
  for (const ReportModel& m : models) h << "<th>" << html_escape(m.path) << "</th>";
  h << "</tr></thead>\n<tbody>\n";
  for (size_t i = 0; i < inputs.size(); ++i) {
    h << "<tr><td>" << image_tag(input_images[i], inputs[i].name) << html_escape(inputs[i].name) << "</td>";
    for (size_t k = 0; k < models.size(); ++k) {
      const Image image = visualize(picture, results[k].explanations[0][i], input_images[i]);
      h << "<td>" << image_tag(image, method.text() + " by " + models[k].path + " of " + inputs[i].name)
        << html_escape(class_text(results[k].predicted[i], models[k].class_names)) << "</td>";
    }
    h << "</tr>\n";
  }
  h << "</tbody></table>\n";
}

// Every method's parameters (defaults filled in), and for relevance methods the rule of each node and the
// relevance entering and leaving each layer (means over the inputs' predicted classes).
void methods_section(std::ostringstream& h, const ReportModel& m, const std::vector<Tensor>& samples,
                     const PreparedMethods& methods, const ReportOptions& o) {
  for (size_t k = 0; k < methods.specs.size(); ++k) {
    const MethodSpec& spec = methods.specs[k];
    h << "<h3>" << html_escape(spec.text()) << "</h3>\n";
    const std::map<std::string, std::string> parameters = method_parameters(spec);
    if (parameters.empty()) {
      h << "<p class=\"note\">no parameters</p>\n";
    } else {
      h << "<table><thead><tr><th>parameter</th><th>value</th></tr></thead><tbody>\n";
      for (const auto& [key, value] : parameters)
        h << "<tr><td>" << html_escape(key) << "</td><td>" << html_escape(value) << "</td></tr>\n";
      h << "</tbody></table>\n";
    }
    const auto* relevance = dynamic_cast<const RelevanceAnalyzer*>(methods.analyzers[k]);
    if (relevance == nullptr) continue;
    h << "<pre>" << html_escape(rules_table(rules_json(spec.text(), *relevance, *m.model))) << "</pre>\n";
    const ConservationReport c =
        conservation_report(*relevance, *m.model, samples, TargetSelection{}, o.batch);
    h << "<pre>" << html_escape(conservation_table(conservation_json(spec.text(), c))) << "</pre>\n";
  }
}

void evaluation_section(std::ostringstream& h, const ReportModel& m, const std::vector<Tensor>& samples,
                        const PreparedMethods& methods, const ModelResults& r,
                        const std::vector<MethodSpec>& metrics, const ReportOptions& o) {
  std::vector<std::string> names;
  for (const MethodSpec& s : methods.specs) names.push_back(s.text());
  for (const MethodSpec& metric : metrics) {
    h << "<h3>" << html_escape(metric.text()) << "</h3>\n";
    if (metric.name == "sparseness") {
      h << "<p class=\"note\">Gini index of |R| (1: one element holds all) and its entropy (nats), means "
           "over the inputs.</p>\n<table><thead><tr><th>method</th><th>Gini</th><th>entropy</th></tr></thead>"
           "<tbody>\n";
      for (size_t k = 0; k < names.size(); ++k) {
        const Sparseness s = sparseness(r.explanations[k]);
        h << "<tr><td>" << html_escape(names[k]) << "</td><td class=\"num\">" << number(s.mean_gini)
          << "</td><td class=\"num\">" << number(s.mean_entropy) << "</td></tr>\n";
      }
      h << "</tbody></table>\n";
      continue;
    }
    RegionPerturbationOptions p = region_perturbation_options(metric);
    p.max_batch = o.batch;
    if (p.fill == PerturbationFill::uniform) p.input_range = m.input_range;
    const RegionPerturbationResult result =
        p.recompute ? region_perturbation(*m.model, samples, methods.analyzers, p, r.predicted)
                    : region_perturbation(*m.model, samples, r.explanations, p, r.predicted);
    h << "<p class=\"note\">" << result.tiles << " tiles of " << p.size << "×" << p.size << ", " << p.steps
      << " steps; AOPC of the " << (p.measure == PerturbationMeasure::softmax ? "softmax" : "logit")
      << " of the predicted class (higher: steeper drop).</p>\n";
    h << inline_svg(line_chart_svg(degradation_chart(result, p, names)));
    h << "<table><thead><tr><th>method</th><th>order</th><th>AOPC</th><th>ABPC</th><th>v_0</th>"
         "<th>v_steps</th></tr></thead><tbody>\n";
    auto row = [&](const std::string& name, const DegradationCurves& d, std::optional<double> abpc) {
      h << "<tr><td>" << html_escape(name) << "</td><td>" << to_string(d.order) << "</td><td class=\"num\">"
        << number(d.aopc_mean) << "</td><td class=\"num\">" << (abpc ? number(*abpc) : "–")
        << "</td><td class=\"num\">" << number(d.mean_curve.front()) << "</td><td class=\"num\">"
        << number(d.mean_curve.back()) << "</td></tr>\n";
    };
    for (size_t k = 0; k < result.methods.size(); ++k) {
      for (const DegradationCurves& d : result.methods[k].orders)
        row(names[k], d, result.methods[k].abpc_mean);
    }
    row("(random)", result.random, std::nullopt);
    h << "</tbody></table>\n";
  }
}

void quality_section(std::ostringstream& h, const ReportModel& m, const ReportOptions& o) {
  QualityRun run = *o.quality;
  run.patterns_path = o.patterns;
  run.batch = o.batch;
  const QualityReport q = measure_signal_quality(*m.model, run, o.preprocessing);
  h << "<p class=\"note\">Patterns fitted on " << q.pattern_images << " input(s) ("
    << html_escape(q.pattern_data) << "), v on " << q.fit_images << ", evaluated on " << q.eval_images
    << ".</p>\n";
  h << inline_svg(quality_svg(q));
  for (size_t k = 0; k < q.outputs.size(); ++k)
    h << "<pre>" << html_escape(quality_table(q.outputs[k], q.results[k])) << "</pre>\n";
}

}  // namespace

std::vector<int64_t> read_labels(const std::string& text, size_t inputs, int64_t classes,
                                 const std::vector<std::string>& class_names) {
  std::vector<int64_t> labels;
  const DataSlice slice = parse_data_slice(text);
  const std::string what = "--labels " + text;
  if (fs::is_regular_file(slice.path)) {
    const DataFormat format = format_of_file(slice.path);
    if (format != DataFormat::idx && format != DataFormat::npy)
      throw Error(what + ": labels are an IDX or .npy file of one class per input, or a comma list");
    const Tensor all = format == DataFormat::idx ? read_idx(slice.path) : read_npy(slice.path);
    if (all.rank() != 1)
      throw Error(what + ": labels hold one value per input, got shape " + to_string(all.shape()));
    const int64_t end = slice.end < 0 ? all.size() : std::min(slice.end, all.size());
    for (int64_t i = slice.begin; i < end; ++i) {
      const float v = all.data()[i];
      if (v != std::floor(v) || v < 0)
        throw Error(what + ": label " + std::to_string(i) + " is " + format_number(v) +
                    ", not a class index");
      labels.push_back(static_cast<int64_t>(v));
    }
  } else {
    for (size_t begin = 0; begin <= text.size();) {
      const size_t end = std::min(text.find(',', begin), text.size());
      const std::string item = text.substr(begin, end - begin);
      const std::optional<int64_t> index = parse_integer(item);
      const auto named = std::find(class_names.begin(), class_names.end(), item);
      if (index && *index >= 0) {
        labels.push_back(*index);
      } else if (named != class_names.end()) {
        labels.push_back(named - class_names.begin());
      } else {
        const std::string near = closest_match(item, class_names);
        throw Error(what + ": '" + item + "' is neither a file, a class index nor a class name" +
                    (near.empty() ? "" : " (did you mean '" + near + "'?)"));
      }
      begin = end + 1;
    }
  }
  if (labels.size() != inputs)
    throw Error(what + ": " + std::to_string(labels.size()) + " label(s) for " + std::to_string(inputs) +
                " input(s)");
  for (size_t i = 0; i < labels.size(); ++i) {
    if (classes > 0 && labels[i] >= classes)
      throw Error(what + ": label " + std::to_string(i) + " is class " + std::to_string(labels[i]) +
                  ", but the model has " + std::to_string(classes) + " classes");
  }
  return labels;
}

std::string report_html(const std::vector<ReportModel>& models, const std::vector<NamedInput>& inputs,
                        const ReportOptions& o) {
  if (models.empty()) throw Error("the report needs a model");
  if (inputs.empty()) throw Error("the report needs inputs");
  if (o.top < 1) throw Error("--top must be at least 1, got " + std::to_string(o.top));
  if (!o.labels.empty() && o.labels.size() != inputs.size())
    throw Error(std::to_string(o.labels.size()) + " label(s) for " + std::to_string(inputs.size()) +
                " input(s)");
  if (o.quality && o.patterns.empty()) throw Error("ρ(S) measures fitted patterns: give the pattern file");
  const std::vector<MethodSpec> specs = parse_methods(o.methods);
  const std::vector<MethodSpec> metrics = parse_report_metrics(o.metrics);
  std::vector<Visualization> pictures;
  for (const MethodSpec& spec : specs) pictures.push_back(method_visualization(spec, o.viz));
  std::vector<std::pair<std::string, double>> timings = o.timings;

  std::vector<Tensor> samples;
  std::vector<Image> input_images;
  for (const NamedInput& in : inputs) {
    samples.push_back(in.tensor);
    input_images.push_back(input_image(in.tensor));
  }
  for (const ReportModel& m : models) {
    for (const NamedInput& in : inputs)
      check_input(in.tensor, m.model->input_shapes().at(0), m.path + ": " + in.name);
  }

  // The first model with every method; the others with the first method, compared in Fig. 22.7's view
  // (a pattern method there needs patterns that fit each model: the file is checked against each).
  Clock::time_point start = Clock::now();
  const PreparedMethods methods = prepare_methods(specs, models[0], o);
  std::vector<ModelResults> results{run_model(models[0], samples, methods, o)};
  for (size_t k = 1; k < models.size(); ++k)
    results.push_back(run_model(models[k], samples, prepare_methods({specs[0]}, models[k], o), o));
  timings.emplace_back("predictions and explanations", seconds_since(start));

  std::ostringstream h;
  h << "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>sieve report: "
    << html_escape(models[0].path) << "</title>\n<style>" << kStyle << "</style>\n</head>\n<body>\n";
  h << "<h1>sieve report: " << html_escape(models[0].path) << "</h1>\n";
  h << "<nav><a href=\"#model\">model</a><a href=\"#inputs\">inputs</a>"
    << (models.size() > 1 ? "<a href=\"#models\">models</a>" : "") << "<a href=\"#methods\">methods</a>"
    << (metrics.empty() ? "" : "<a href=\"#evaluation\">evaluation</a>")
    << (o.quality ? "<a href=\"#signal-quality\">ρ(S)</a>" : "")
    << "<a href=\"#provenance\">provenance</a></nav>\n";
  h << "<h2 id=\"model\">Model</h2>\n";
  model_section(h, models[0]);
  h << "<h2 id=\"inputs\">Inputs, predictions and explanations</h2>\n";
  predictions_section(h, models[0], inputs, input_images, methods, pictures, results[0], o);
  if (models.size() > 1) {
    h << "<h2 id=\"models\">" << html_escape(specs[0].text()) << " across models</h2>\n";
    models_section(h, models, inputs, input_images, specs[0], pictures[0], results);
  }
  start = Clock::now();
  h << "<h2 id=\"methods\">Methods: parameters, rules and conservation</h2>\n";
  methods_section(h, models[0], samples, methods, o);
  timings.emplace_back("rules and conservation", seconds_since(start));
  if (!metrics.empty()) {
    start = Clock::now();
    h << "<h2 id=\"evaluation\">Evaluation</h2>\n";
    evaluation_section(h, models[0], samples, methods, results[0], metrics, o);
    timings.emplace_back("evaluation", seconds_since(start));
  }
  if (o.quality) {
    start = Clock::now();
    h << "<h2 id=\"signal-quality\">Signal quality ρ(S) of the patterns</h2>\n";
    quality_section(h, models[0], o);
    timings.emplace_back("signal quality", seconds_since(start));
  }

  h << "<h2 id=\"provenance\">Provenance</h2>\n<table>\n";
  auto row = [&](const std::string& key, const std::string& value) {
    h << "<tr><th>" << html_escape(key) << "</th><td>" << html_escape(value) << "</td></tr>\n";
  };
  row("sieve version", SIEVE_VERSION);
  for (const ReportModel& m : models) row("model fingerprint of " + m.path, model_fingerprint(*m.model));
  if (!o.patterns.empty()) row("patterns", o.patterns);
  row("inputs", std::to_string(inputs.size()));
  row("command line", o.command_line);
  row("date", utc_now());
  for (const auto& [stage, seconds] : timings) row("time: " + stage, number(seconds, 3) + " s");
  h << "</table>\n<script>" << kScript << "</script>\n</body>\n</html>\n";
  return h.str();
}

void check_report_path(const std::string& path) {
  const std::string ext = fs::path(path).extension().string();
  if (ext != ".html" && ext != ".htm") throw Error("--out " + path + ": the report is an .html file");
  const fs::path parent = fs::path(path).parent_path();
  if (!parent.empty() && !fs::is_directory(parent))
    throw Error("--out " + path + ": directory " + parent.string() + " does not exist");
  if (fs::is_directory(path)) throw Error("--out " + path + ": is a directory");
}

void write_report(const std::string& path, const std::string& html) {
  check_report_path(path);
  write_file_atomically(path, html);
}

}  // namespace sieve
