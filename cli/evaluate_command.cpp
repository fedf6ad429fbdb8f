// sieve evaluate: measures of explanations (region perturbation, completeness, sparseness, input
// invariance, randomisation, continuity) as a table, JSON with every number, CSV of the degradation
// curves and an SVG plot of them (PatternNet Fig. 4).

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "commands.hpp"
#include "input_options.hpp"
#include "sieve/error.hpp"
#include "sieve/evaluation.hpp"
#include "sieve/io/line_chart.hpp"
#include "sieve/io/npy.hpp"
#include "sieve/methods.hpp"
#include "sieve/parse.hpp"
#include "sieve/patterns.hpp"
#include "sieve/results.hpp"
#include "text_files.hpp"

namespace fs = std::filesystem;

namespace sieve::cli {
namespace {

struct EvaluateOptions {
  std::string model;
  std::vector<std::string> inputs, methods, metrics;
  std::string explanations, target = "max", patterns, json, csv, svg;
  InputOptions input;
};

const std::vector<std::string> kMetrics{"region_perturbation", "completeness",  "sparseness",
                                        "input_invariance",    "randomization", "continuity"};

// What is evaluated: each method's explanations of every input, or the arrays of one file.
struct Evaluated {
  std::vector<std::string> names;
  std::vector<MethodSpec> specs;  // empty for a file
  std::vector<std::unique_ptr<Analyzer>> analyzers;
  std::vector<std::vector<Tensor>> explanations;  // [method][input]
};

std::vector<Tensor> explanations_from_file(const std::string& path, const std::vector<Tensor>& samples) {
  const Tensor all = read_npy(path);
  Shape expected = samples.at(0).shape();
  expected[0] = static_cast<int64_t>(samples.size());
  if (all.shape() != expected)
    throw Error("--explanations " + path + ": shape " + to_string(all.shape()) +
                " does not match the inputs " + to_string(expected));
  std::vector<Tensor> out;
  for (int64_t i = 0; i < all.dim(0); ++i) out.push_back(batch_row(all, i));
  return out;
}

// One class per input: the predicted one (max) or one given index or class name.
std::vector<int64_t> tracked_targets(const EvaluateOptions& o, const Model& model,
                                     const std::vector<Tensor>& samples,
                                     const std::vector<std::string>& class_names) {
  const ParsedTargets parsed = parse_targets(o.target, class_names);
  const TargetSelection& t = parsed.selection;
  if (t.kind == TargetSelection::Kind::max) return predicted_classes(model, samples, o.input.batch);
  if (t.kind != TargetSelection::Kind::indices || t.indices.size() != 1)
    throw Error("--target " + o.target +
                ": evaluate tracks one class per input: max, or one class index or name");
  return std::vector<int64_t>(samples.size(), t.indices[0]);
}

nlohmann::json curves_json(const DegradationCurves& d) {
  return {{"curves", d.curves}, {"mean_curve", d.mean_curve}, {"aopc", d.aopc}, {"aopc_mean", d.aopc_mean}};
}

// NaN (a zero reference) as null.
nlohmann::json numbers(const std::vector<double>& v) {
  nlohmann::json out = nlohmann::json::array();
  for (double x : v) out.push_back(std::isnan(x) ? nlohmann::json(nullptr) : nlohmann::json(x));
  return out;
}

std::string fixed(double v, int precision = 4) {
  if (std::isnan(v)) return "-";
  std::ostringstream s;
  s << std::fixed << std::setprecision(precision) << v;
  return s.str();
}

size_t name_width(const Evaluated& e) {
  size_t w = 8;
  for (const std::string& n : e.names) w = std::max(w, n.size() + 2);
  return w;
}

void print_region_perturbation(const RegionPerturbationResult& r, const RegionPerturbationOptions& p,
                               const Evaluated& e) {
  const int w = static_cast<int>(name_width(e));
  std::cout << "region perturbation: " << r.tiles << " tiles of " << p.size << ", " << p.steps
            << " steps, AOPC of the " << (p.measure == PerturbationMeasure::softmax ? "softmax" : "logit")
            << " (higher: steeper drop)\n";
  std::cout << "  " << std::left << std::setw(w) << "method" << std::setw(8) << "order" << std::right
            << std::setw(12) << "AOPC" << std::setw(12) << "ABPC" << std::setw(14) << "v_0" << std::setw(14)
            << "v_steps"
            << "\n";
  auto row = [&](const std::string& name, const DegradationCurves& d, std::optional<double> abpc) {
    std::cout << "  " << std::left << std::setw(w) << name << std::setw(8) << to_string(d.order) << std::right
              << std::setw(12) << fixed(d.aopc_mean) << std::setw(12) << (abpc ? fixed(*abpc) : "-")
              << std::setw(14) << fixed(d.mean_curve.front()) << std::setw(14) << fixed(d.mean_curve.back())
              << "\n";
  };
  for (size_t m = 0; m < r.methods.size(); ++m) {
    for (const DegradationCurves& d : r.methods[m].orders) row(e.names[m], d, r.methods[m].abpc_mean);
  }
  row("(random)", r.random, std::nullopt);
}

void write_csv(const std::string& path, const RegionPerturbationResult& r, const Evaluated& e,
               const std::vector<NamedInput>& inputs) {
  std::ostringstream s;
  s << std::setprecision(9) << "method,order,input,step,value\n";
  auto curves = [&](const std::string& method, const DegradationCurves& d) {
    for (size_t i = 0; i < d.curves.size(); ++i) {
      for (size_t k = 0; k < d.curves[i].size(); ++k)
        s << method << "," << to_string(d.order) << "," << inputs[i].name << "," << k << "," << d.curves[i][k]
          << "\n";
    }
    for (size_t k = 0; k < d.mean_curve.size(); ++k)
      s << method << "," << to_string(d.order) << ",mean," << k << "," << d.mean_curve[k] << "\n";
  };
  for (size_t m = 0; m < r.methods.size(); ++m) {
    for (const DegradationCurves& d : r.methods[m].orders) curves(e.names[m], d);
  }
  curves("random", r.random);
  write_text(path, s.str());
}

nlohmann::json perturbation_parameters(const RegionPerturbationOptions& p) {
  static const char* fills[] = {"patch_mean", "zero", "baseline", "uniform", "blur"};
  std::vector<std::string> orders;
  for (PerturbationOrder order : p.orders) orders.push_back(to_string(order));
  nlohmann::json j{{"size", p.size},
                   {"steps", p.steps},
                   {"orders", orders},
                   {"fill", fills[static_cast<int>(p.fill)]},
                   {"measure", p.measure == PerturbationMeasure::softmax ? "softmax" : "logit"},
                   {"seed", p.seed},
                   {"recompute", p.recompute}};
  if (p.fill == PerturbationFill::blur) j["sigma"] = p.sigma;
  return j;
}

// The baseline completeness compares against: the metric's own, else the method's (Integrated Gradients).
Tensor completeness_baseline(const MethodSpec& metric, const Evaluated& e, size_t m) {
  const auto given = metric.params.find("baseline");
  if (given != metric.params.end())
    return parse_baseline(given->second, "metric 'completeness': parameter baseline");
  if (e.specs.empty()) return {};
  const std::map<std::string, std::string> params = method_parameters(e.specs[m]);
  const auto own = params.find("baseline");
  return own == params.end()
             ? Tensor{}
             : parse_baseline(own->second, "method " + e.specs[m].text() + ": parameter baseline");
}

struct InvarianceParameters {
  std::vector<float> shift{-1.0f};  // one value, or one per input channel
  double tolerance = 1e-3;
};

// The shift as one number, numbers joined by '+' (one per channel, as order=morf+lerf lists orders:
// "-0.485+-0.456+-0.406"), or a .npy file of one value per channel. A '+' right after an 'e' belongs to
// an exponent ("1e+3").
std::vector<float> parse_shift(const std::string& text) {
  const std::string what = "metric 'input_invariance': parameter shift=" + text;
  if (text.size() > 4 && text.ends_with(".npy")) {
    const Tensor values = read_npy(text);
    if (values.size() == 0) throw Error(what + " holds no values");
    for (float v : values.values()) {
      if (!std::isfinite(v)) throw Error(what + " holds a value that is not a finite number");
    }
    return std::vector<float>(values.values().begin(), values.values().end());
  }
  std::vector<float> shift;
  size_t begin = 0;
  for (size_t at = 0; at <= text.size(); ++at) {
    if (at < text.size() && (text[at] != '+' || at == begin || text[at - 1] == 'e' || text[at - 1] == 'E'))
      continue;
    const std::optional<double> v = parse_double(text.substr(begin, at - begin));
    if (!v) throw Error(what + " must be a number, numbers joined by '+' (one per channel) or a .npy file");
    shift.push_back(static_cast<float>(*v));
    begin = at + 1;
  }
  return shift;
}

std::string shift_text(const std::vector<float>& shift) {
  if (shift.size() == 1) return format_number(shift[0]);
  std::string out;
  for (float v : shift) out += (out.empty() ? "" : "+") + format_number(v);
  return out;
}

InvarianceParameters invariance_parameters(const MethodSpec& m) {
  InvarianceParameters p;
  for (const auto& [key, value] : m.params) {
    const std::optional<double> v = parse_double(value);
    if (key == "shift") {
      p.shift = parse_shift(value);
    } else if (key == "tolerance" && v && *v >= 0.0) {
      p.tolerance = *v;
    } else if (key == "tolerance") {
      throw Error("metric 'input_invariance': parameter tolerance=" + value + " must be a number at least 0");
    } else {
      throw Error("metric 'input_invariance' has no parameter '" + key + "'");
    }
  }
  return p;
}

// Book ch. 14: each method on x by the model against x + shift by the twin whose first layer compensates
// the shift.
void evaluate_input_invariance(const EvaluateOptions& o, const MethodSpec& metric, const Model& model,
                               const LoadedInputs& loaded, const std::vector<Tensor>& samples,
                               const std::vector<int64_t>& targets, const Evaluated& e, nlohmann::json& j) {
  if (e.specs.empty())
    throw Error("metric input_invariance explains shifted inputs: give methods (-m), not --explanations");
  const InvarianceParameters p = invariance_parameters(metric);
  Model twin = Model::load(o.model);
  shift_input(twin, p.shift);
  AnalyzerContext context;
  // Pattern methods use the model's own patterns in the twin, as the book does: covariance-based
  // patterns do not change with a shift of the input. The file is rewritten for the twin's fingerprint.
  const bool patterns_used = std::any_of(e.specs.begin(), e.specs.end(), [](const MethodSpec& spec) {
    return spec.name.starts_with("pattern.");
  });
  const std::string twin_patterns =
      (fs::temp_directory_path() / ("sieve_twin_patterns_" + std::to_string(getpid()) + ".safetensors"))
          .string();
  if (patterns_used && !o.patterns.empty()) {
    PatternFile file = read_pattern_file_for(o.patterns, model);
    file.fingerprint = model_fingerprint(twin);
    write_pattern_file(twin_patterns, file);
    context.patterns_file = twin_patterns;
  }
  // Bounds of the twin's inputs (z^B) move with the inputs. shift_input has checked that the shift has
  // one value or one per channel, as the range has.
  if (std::optional<InputRange> range = known_input_range(model, loaded, o.input)) {
    const size_t channels = std::max(range->low.size(), p.shift.size());
    auto moved = [&](std::vector<float> bounds) {
      if (bounds.size() == 1) bounds.resize(channels, bounds[0]);
      for (size_t c = 0; c < bounds.size(); ++c) bounds[c] += p.shift[p.shift.size() == 1 ? 0 : c];
      return bounds;
    };
    range->low = moved(range->low);
    range->high = moved(range->high);
    context.input_range = range;
  }
  const int w = static_cast<int>(name_width(e));
  std::cout << "input invariance: the model on x against its twin on x + (" << shift_text(p.shift)
            << ") (first-layer bias compensated), max |R - R'| / max |R|\n";
  std::cout << "  " << std::left << std::setw(w) << "method" << std::setw(16) << "verdict" << std::right
            << std::setw(16) << "max rel. diff"
            << "\n";
  j["input_invariance"]["shift"] = p.shift.size() == 1 ? nlohmann::json(p.shift[0]) : nlohmann::json(p.shift);
  j["input_invariance"]["tolerance"] = p.tolerance;
  for (size_t m = 0; m < e.specs.size(); ++m) {
    std::unique_ptr<Analyzer> twin_analyzer = create_analyzer(e.specs[m], context);
    nlohmann::json entry;
    std::string verdict, difference = "-";
    try {
      twin_analyzer->prepare(twin);
      const InputInvariance r = input_invariance(model, *e.analyzers[m], twin, *twin_analyzer, samples,
                                                 p.shift, targets, p.tolerance, o.input.batch);
      verdict = r.passed ? "pass" : "fail";
      difference = fixed(r.max_relative_difference, 6);
      entry = {{"relative_difference", r.relative_difference},
               {"max_relative_difference", r.max_relative_difference},
               {"passed", r.passed}};
    } catch (const Error& error) {
      // A method that cannot run on the twin is reported with the reason, not fatal.
      verdict = "not run";
      entry = {{"passed", nullptr}, {"not_run", error.what()}};
    }
    std::cout << "  " << std::left << std::setw(w) << e.names[m] << std::setw(16) << verdict << std::right
              << std::setw(16) << difference << "\n";
    j["input_invariance"]["methods"][e.names[m]] = entry;
  }
  if (!context.patterns_file.empty()) fs::remove(twin_patterns);
}

// The randomisation and continuity plots go beside the --svg file: OUT.svg → OUT_randomization.svg,
// OUT_continuity.svg.
std::string svg_beside(const std::string& svg, const std::string& metric) {
  const fs::path p(svg);
  return (p.parent_path() / (p.stem().string() + "_" + metric + p.extension().string())).string();
}

uint64_t randomization_seed(const MethodSpec& m) {
  for (const auto& [key, value] : m.params) {
    if (key != "seed") throw Error("metric 'randomization' has no parameter '" + key + "'");
    const std::optional<int64_t> seed = parse_integer(value);
    if (!seed || *seed < 0)
      throw Error("metric 'randomization': parameter seed=" + value + " must be a whole number >= 0");
  }
  const auto it = m.params.find("seed");
  return it == m.params.end() ? 0 : static_cast<uint64_t>(*parse_integer(it->second));
}

// Adebayo et al. 2018: each method's explanation as the layers are randomised from the output down.
void evaluate_randomization(const EvaluateOptions& o, const MethodSpec& metric, const Model& model,
                            const LoadedInputs& loaded, const std::vector<Tensor>& samples,
                            const std::vector<int64_t>& targets, const Evaluated& e, nlohmann::json& j) {
  if (e.specs.empty())
    throw Error("metric randomization explains randomised models: give methods (-m), not --explanations");
  const uint64_t seed = randomization_seed(metric);
  AnalyzerContext context;
  context.input_range = known_input_range(model, loaded, o.input);
  context.patterns_file = o.patterns;
  std::cout << "randomization (cascading from the output, seed " << seed
            << "): Spearman of |R| and of R, SSIM of |R|, means over the inputs\n";
  j["randomization"]["seed"] = seed;
  LineChart chart{"layers randomised, from the output down to",
                  "Spearman rank correlation of |R| (mean over inputs)",
                  -1.0,
                  1.0,
                  {ChartPanel{}}};
  ChartPanel& panel = chart.panels.front();
  for (size_t m = 0; m < e.specs.size(); ++m) {
    Model copy = Model::load(o.model);
    std::cout << "  " << e.names[m] << "\n    " << std::left << std::setw(28) << "randomised down to"
              << std::right << std::setw(12) << "rho(|R|)" << std::setw(12) << "rho(R)" << std::setw(12)
              << "SSIM"
              << "\n";
    try {
      const std::vector<LayerRandomization> layers = randomization(
          model, *e.analyzers[m], copy, [&] { return create_analyzer(e.specs[m], context); }, samples,
          targets, seed, o.input.batch);
      nlohmann::json list = nlohmann::json::array();
      for (const LayerRandomization& l : layers) {
        std::cout << "    " << std::left << std::setw(28) << l.layer << std::right << std::setw(12)
                  << fixed(l.mean_spearman_abs) << std::setw(12) << fixed(l.mean_spearman) << std::setw(12)
                  << fixed(l.mean_ssim) << "\n";
        list.push_back({{"layer", l.layer},
                        {"spearman_abs", l.spearman_abs},
                        {"spearman", l.spearman},
                        {"ssim", l.ssim},
                        {"mean_spearman_abs", l.mean_spearman_abs},
                        {"mean_spearman", l.mean_spearman},
                        {"mean_ssim", l.mean_ssim}});
      }
      j["randomization"]["methods"][e.names[m]] = {{"layers", list}};
      std::vector<double> curve{1.0};  // the unchanged model's explanation against itself
      for (const LayerRandomization& l : layers) curve.push_back(l.mean_spearman_abs);
      if (panel.x_labels.empty()) {
        panel.x_labels.push_back("none");
        for (const LayerRandomization& l : layers) panel.x_labels.push_back(l.layer);
      }
      panel.series.push_back({e.names[m], curve, false});
    } catch (const Error& error) {
      // Pattern methods have patterns of the trained model only: reported, not fatal.
      std::cout << "    not run: " << error.what() << "\n";
      j["randomization"]["methods"][e.names[m]] = {{"not_run", error.what()}};
    }
  }
  if (!o.svg.empty() && !panel.series.empty())
    write_text(svg_beside(o.svg, "randomization"), line_chart_svg(chart));
}

// MSM §7.1: the largest ‖R(x) − R(x′)‖₁ / ‖x − x′‖₂ over small translations of each input.
void evaluate_continuity(const EvaluateOptions& o, const MethodSpec& metric, const Model& model,
                         const std::vector<Tensor>& samples, const std::vector<int64_t>& targets,
                         const Evaluated& e, nlohmann::json& j) {
  if (e.specs.empty())
    throw Error("metric continuity explains translated inputs: give methods (-m), not --explanations");
  ContinuityOptions p = continuity_options(metric);
  p.max_batch = o.input.batch;
  std::cout << "continuity: ||R(x) - R(x')||_1 / ||x - x'||_2 over translations by 1.." << p.max_shift
            << (p.noise > 0.0 ? " with noise" : "") << "\n";
  const int w = static_cast<int>(name_width(e));
  std::cout << "  " << std::left << std::setw(w) << "method" << std::right << std::setw(14) << "max"
            << std::setw(14) << "mean of max"
            << "\n";
  j["continuity"]["max_shift"] = p.max_shift;
  j["continuity"]["noise"] = p.noise;
  // The mean ratio per translation, one line per method (in the methods' own units, so the scale is
  // shared only within one family).
  LineChart chart{"translation (elements along the last axis)",
                  "mean ||R(x) - R(x')||_1 / ||x - x'||_2",
                  0.0,
                  0.0,
                  {ChartPanel{}}};
  ChartPanel& panel = chart.panels.front();
  for (int64_t t = 1; t <= p.max_shift; ++t) panel.x_labels.push_back(std::to_string(t));
  for (size_t m = 0; m < e.specs.size(); ++m) {
    const Continuity c = continuity(model, *e.analyzers[m], samples, targets, p);
    panel.series.push_back({e.names[m], c.mean_curve, false});
    for (double v : c.mean_curve) chart.y_max = std::max(chart.y_max, v);
    double mean = 0.0;
    for (double v : c.max_ratio) mean += v / static_cast<double>(c.max_ratio.size());
    std::cout << "  " << std::left << std::setw(w) << e.names[m] << std::right << std::setw(14)
              << fixed(c.max) << std::setw(14) << fixed(mean) << "\n";
    j["continuity"]["methods"][e.names[m]] = {
        {"ratios", c.ratios}, {"max_ratio", c.max_ratio}, {"mean_curve", c.mean_curve}, {"max", c.max}};
  }
  if (chart.y_max <= 0.0) chart.y_max = 1.0;  // explanations that do not move at all
  if (!o.svg.empty()) write_text(svg_beside(o.svg, "continuity"), line_chart_svg(chart));
}

// The metrics asked for, each name once and every parameter checked before any work.
std::vector<MethodSpec> parse_metrics(const EvaluateOptions& o) {
  std::vector<MethodSpec> metrics;
  for (const std::string& text : o.metrics) {
    const MethodSpec spec = MethodSpec::parse(text);
    if (std::find(kMetrics.begin(), kMetrics.end(), spec.name) == kMetrics.end()) {
      const std::string near = closest_match(spec.name, kMetrics);
      throw Error("unknown metric '" + spec.name + "'" +
                  (near.empty() ? "" : " (did you mean '" + near + "'?)") +
                  "; metrics: region_perturbation, completeness, sparseness, input_invariance, "
                  "randomization, continuity");
    }
    for (const MethodSpec& m : metrics) {
      if (m.name == spec.name) throw Error("--metric " + spec.name + " is given more than once");
    }
    metrics.push_back(spec);
  }
  for (const MethodSpec& m : metrics) {
    if (m.name == "region_perturbation") region_perturbation_options(m);
    if (m.name == "completeness") {
      for (const auto& [key, value] : m.params) {
        if (key != "baseline") throw Error("metric 'completeness' has no parameter '" + key + "'");
        parse_baseline(value, "metric 'completeness': parameter baseline");
      }
    }
    if (m.name == "input_invariance") invariance_parameters(m);
    if (m.name == "randomization") randomization_seed(m);
    if (m.name == "continuity") continuity_options(m);
    if (m.name == "sparseness" && !m.params.empty())
      throw Error("metric 'sparseness' has no parameter '" + m.params.begin()->first + "'");
  }
  return metrics;
}

// The methods' analyzers (or the explanations of the file), and the explanations the metrics read.
Evaluated prepare_explanations(const EvaluateOptions& o, const std::vector<MethodSpec>& metrics,
                               const Model& model, const LoadedInputs& loaded,
                               const std::vector<Tensor>& samples, const std::vector<int64_t>& targets) {
  std::optional<RegionPerturbationOptions> perturbation;
  for (const MethodSpec& m : metrics) {
    if (m.name == "region_perturbation") perturbation = region_perturbation_options(m);
  }
  Evaluated e;
  if (!o.explanations.empty()) {
    e.names.push_back(o.explanations);
    e.explanations.push_back(explanations_from_file(o.explanations, samples));
  } else {
    AnalyzerContext context;
    context.input_range = known_input_range(model, loaded, o.input);
    context.patterns_file = o.patterns;
    for (const std::string& text : o.methods) {
      e.specs.push_back(MethodSpec::parse(text));
      e.names.push_back(e.specs.back().text());
      e.analyzers.push_back(create_analyzer(e.specs.back(), context));
      e.analyzers.back()->prepare(model);
    }
    const bool explanations_needed =
        std::any_of(metrics.begin(), metrics.end(),
                    [](const MethodSpec& m) { return m.name == "completeness" || m.name == "sparseness"; }) ||
        (perturbation && !perturbation->recompute);
    for (const std::unique_ptr<Analyzer>& a : e.analyzers) {
      if (explanations_needed)
        e.explanations.push_back(explain_targets(model, *a, samples, targets, o.input.batch));
    }
  }

  return e;
}

void evaluate_region_perturbation(const EvaluateOptions& o, const MethodSpec& metric, const Model& model,
                                  const LoadedInputs& loaded, const std::vector<Tensor>& samples,
                                  const std::vector<int64_t>& targets, const Evaluated& e,
                                  nlohmann::json& j) {
  RegionPerturbationOptions p = region_perturbation_options(metric);
  p.max_batch = o.input.batch;
  if (p.fill == PerturbationFill::uniform) p.input_range = known_input_range(model, loaded, o.input);
  if (p.recompute && e.analyzers.empty())
    throw Error(
        "metric region_perturbation:recompute=1 explains every step again: give methods (-m), not "
        "--explanations");
  std::vector<const Analyzer*> analyzers;
  for (const std::unique_ptr<Analyzer>& a : e.analyzers) analyzers.push_back(a.get());
  const RegionPerturbationResult r = p.recompute
                                         ? region_perturbation(model, samples, analyzers, p, targets)
                                         : region_perturbation(model, samples, e.explanations, p, targets);
  print_region_perturbation(r, p, e);
  nlohmann::json out{{"parameters", perturbation_parameters(p)}, {"tiles", r.tiles}};
  for (size_t m = 0; m < r.methods.size(); ++m) {
    nlohmann::json method;
    for (const DegradationCurves& d : r.methods[m].orders) method[to_string(d.order)] = curves_json(d);
    if (r.methods[m].abpc_mean) {
      method["abpc"] = r.methods[m].abpc;
      method["abpc_mean"] = *r.methods[m].abpc_mean;
    }
    out["methods"][e.names[m]] = method;
  }
  out["random"] = curves_json(r.random);
  j["region_perturbation"] = out;
  if (!o.csv.empty()) write_csv(o.csv, r, e, loaded.inputs);
  if (!o.svg.empty()) write_text(o.svg, line_chart_svg(degradation_chart(r, p, e.names)));
}

void evaluate_completeness(const EvaluateOptions& o, const MethodSpec& metric, const Model& model,
                           const std::vector<Tensor>& samples, const std::vector<int64_t>& targets,
                           const Evaluated& e, nlohmann::json& j) {
  std::cout << "completeness: sum of R against the target's logit f(x) (or f(x) - f(baseline))\n";
  const int w = static_cast<int>(name_width(e));
  std::cout << "  " << std::left << std::setw(w) << "method" << std::right << std::setw(14) << "mean sum R"
            << std::setw(14) << "mean ref" << std::setw(16) << "mean rel. err"
            << "\n";
  for (size_t m = 0; m < e.names.size(); ++m) {
    const Completeness c = completeness(model, samples, e.explanations[m], targets,
                                        completeness_baseline(metric, e, m), o.input.batch);
    double sum = 0.0, ref = 0.0;
    for (size_t i = 0; i < samples.size(); ++i) sum += c.relevance_sum[i], ref += c.reference[i];
    const double n = static_cast<double>(samples.size());
    std::cout << "  " << std::left << std::setw(w) << e.names[m] << std::right << std::setw(14)
              << fixed(sum / n) << std::setw(14) << fixed(ref / n) << std::setw(16)
              << fixed(c.mean_relative_error) << "\n";
    j["completeness"][e.names[m]] = {
        {"relevance_sum", c.relevance_sum},
        {"reference", c.reference},
        {"relative_error", numbers(c.relative_error)},
        {"mean_relative_error", std::isnan(c.mean_relative_error) ? nlohmann::json(nullptr)
                                                                  : nlohmann::json(c.mean_relative_error)}};
  }
}

void evaluate_sparseness(const Evaluated& e, nlohmann::json& j) {
  std::cout << "sparseness of |R|: Gini index (1: one element holds all) and entropy (nats)\n";
  const int w = static_cast<int>(name_width(e));
  std::cout << "  " << std::left << std::setw(w) << "method" << std::right << std::setw(12) << "Gini"
            << std::setw(12) << "entropy"
            << "\n";
  for (size_t m = 0; m < e.names.size(); ++m) {
    const Sparseness s = sparseness(e.explanations[m]);
    std::cout << "  " << std::left << std::setw(w) << e.names[m] << std::right << std::setw(12)
              << fixed(s.mean_gini) << std::setw(12) << fixed(s.mean_entropy) << "\n";
    j["sparseness"][e.names[m]] = {{"gini", s.gini},
                                   {"entropy", s.entropy},
                                   {"mean_gini", s.mean_gini},
                                   {"mean_entropy", s.mean_entropy}};
  }
}

void run_evaluate(const EvaluateOptions& o) {
  if (o.methods.empty() == o.explanations.empty())
    throw Error(
        "give the explanations to evaluate: methods (-m NAME, repeatable) or --explanations FILE.npy");
  const std::vector<MethodSpec> metrics = parse_metrics(o);
  const Model model = Model::load(o.model);
  const LoadedInputs loaded = load_cli_inputs(o.model, model, o.inputs, o.input);
  std::vector<Tensor> samples;
  for (const NamedInput& in : loaded.inputs) samples.push_back(in.tensor);
  const std::vector<std::string> class_names =
      loaded.profile ? loaded.profile->class_names : std::vector<std::string>{};
  const std::vector<int64_t> targets = tracked_targets(o, model, samples, class_names);
  const Evaluated e = prepare_explanations(o, metrics, model, loaded, samples, targets);

  nlohmann::json j{{"model", o.model}, {"methods", e.names}, {"targets", targets}};
  for (const NamedInput& in : loaded.inputs) j["inputs"].push_back(in.name);
  for (const MethodSpec& metric : metrics) {
    if (metric.name == "region_perturbation")
      evaluate_region_perturbation(o, metric, model, loaded, samples, targets, e, j);
    if (metric.name == "completeness") evaluate_completeness(o, metric, model, samples, targets, e, j);
    if (metric.name == "input_invariance")
      evaluate_input_invariance(o, metric, model, loaded, samples, targets, e, j);
    if (metric.name == "randomization")
      evaluate_randomization(o, metric, model, loaded, samples, targets, e, j);
    if (metric.name == "continuity") evaluate_continuity(o, metric, model, samples, targets, e, j);
    if (metric.name == "sparseness") evaluate_sparseness(e, j);
  }
  if (!o.json.empty()) write_text(o.json, j.dump(2) + "\n");
}

}  // namespace

void add_evaluate_command(CLI::App& app) {
  auto options = std::make_shared<EvaluateOptions>();
  CLI::App* cmd = app.add_subcommand("evaluate",
                                     "Measure explanations: region perturbation, completeness, sparseness, "
                                     "input invariance, randomization, continuity");
  cmd->add_option("model", options->model, "ONNX model file")->required();
  cmd->add_option("inputs", options->inputs, "Inputs: .npy, PNG/JPEG, IDX files or directories of images")
      ->required();
  cmd->add_option("--method,-m", options->methods, "Method NAME[:key=value,...] to evaluate (repeatable)")
      ->allow_extra_args(false);
  cmd->add_option("--explanations", options->explanations,
                  "Evaluate these explanations instead ([N, ...] .npy, shaped like the inputs)");
  cmd->add_option("--metric", options->metrics,
                  "NAME[:key=value,...]: region_perturbation, completeness, sparseness, input_invariance, "
                  "randomization (repeatable)")
      ->required()
      ->allow_extra_args(false);
  cmd->add_option("--target", options->target,
                  "The tracked class: max (the predicted one, default), or one class index or name");
  cmd->add_option("--patterns", options->patterns,
                  "pattern.net / pattern.attribution: the fitted pattern file");
  cmd->add_option("--json", options->json, "Write every number as JSON");
  cmd->add_option("--csv", options->csv, "Write the region perturbation curves as CSV");
  cmd->add_option(
      "--svg", options->svg,
      "Write a plot of the mean degradation curves (SVG); randomisation and continuity curves go to "
      "OUT_randomization.svg and OUT_continuity.svg");
  add_input_options(cmd, options->input);
  cmd->callback([options] { run_evaluate(*options); });
}

}  // namespace sieve::cli
