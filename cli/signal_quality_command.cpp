// sieve signal-quality: ρ(S) of the signal estimators random, S_w, S_a and S_a+- per pattern layer
// (PatternNet §4.1, Fig. 3), as a table, JSON and an SVG line plot.

#include <cmath>
#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "commands.hpp"
#include "input_options.hpp"
#include "plot.hpp"
#include "progress.hpp"
#include "sieve/error.hpp"
#include "sieve/signal_quality.hpp"

namespace sieve::cli {
namespace {

struct QualityOptions {
  std::string model, patterns, output = "both", json, svg;
  std::vector<std::string> data, eval;
  uint64_t seed = 0;
  double ridge = kQualityRidge;
  bool allow_overlap = false;
  InputOptions input;
};

// The three splits (patterns, --data, --eval) must not share samples: the same file with overlapping
// ranges is an error unless --allow-overlap.
void check_disjoint_splits(const QualityOptions& o, const std::string& pattern_data) {
  std::vector<std::pair<std::string, std::string>> splits;  // (which split, data argument)
  // The pattern file lists its data as "A, B" (one fit) and "X + Y" (merged fits).
  std::string listed = pattern_data;
  for (size_t at = listed.find(" + "); at != std::string::npos; at = listed.find(" + "))
    listed.replace(at, 3, ", ");
  for (size_t begin = 0; begin < listed.size();) {
    const size_t end = std::min(listed.find(", ", begin), listed.size());
    splits.emplace_back("the patterns' data", listed.substr(begin, end - begin));
    begin = end + 2;
  }
  for (const std::string& d : o.data) splits.emplace_back("--data", d);
  for (const std::string& e : o.eval) splits.emplace_back("--eval", e);
  for (size_t i = 0; i < splits.size(); ++i) {
    for (size_t j = i + 1; j < splits.size(); ++j) {
      if (splits[i].first == splits[j].first) continue;
      if (!slices_overlap(parse_data_slice(splits[i].second), parse_data_slice(splits[j].second))) continue;
      throw Error(splits[i].first + " " + splits[i].second + " and " + splits[j].first + " " +
                  splits[j].second +
                  " share samples; give disjoint slices such as FILE[0:1000] and FILE[1000:2000], or "
                  "--allow-overlap");
    }
  }
}

std::string describe(QualityOutput output) {
  return output == QualityOutput::pre ? "pre: t = y = wᵀx" : "post: t = relu(wᵀx + b)";
}

void print_table(std::ostream& out, QualityOutput output, const std::vector<LayerQuality>& layers) {
  size_t width = 5;
  for (const LayerQuality& l : layers) width = std::max(width, l.node.size());
  out << "rho(S), output " << describe(output) << "\n";
  out << std::left << std::setw(static_cast<int>(width) + 2) << "layer" << std::setw(8) << "op" << std::right
      << std::setw(11) << "neurons";
  for (const std::string& e : quality_estimators()) out << std::setw(9) << e;
  out << "\n";
  for (const LayerQuality& l : layers) {
    out << std::left << std::setw(static_cast<int>(width) + 2) << l.node << std::setw(8) << l.op_type
        << std::right << std::setw(11) << (std::to_string(l.neurons_used) + "/" + std::to_string(l.neurons));
    for (const std::string& e : quality_estimators()) {
      const double r = l.mean_rho.at(e);
      std::ostringstream cell;
      if (std::isnan(r)) {
        cell << "-";
      } else {
        cell << std::fixed << std::setprecision(4) << r;
      }
      out << std::setw(9) << cell.str();
    }
    out << "\n";
  }
}

// Fig. 3 of the paper: ρ per layer (x) for each estimator, one panel per output.
std::string svg_plot(const std::vector<QualityOutput>& outputs,
                     const std::vector<std::vector<LayerQuality>>& results) {
  static const char* colors[] = {"#7f7f7f", "#1f77b4", "#ff7f0e", "#2ca02c"};
  const std::vector<std::string>& estimators = quality_estimators();
  size_t longest = 4;  // characters of the longest x label "node (op)"
  for (const LayerQuality& l : results.at(0))
    longest = std::max(longest, std::min<size_t>(l.node.size(), 40) + l.op_type.size() + 3);
  const double panel_w = 460, left = 62, right = 18, top = 58, plot_h = 260;
  // Labels rotated by 40°: about 6.2 px per character, sin 40° ≈ 0.65 of it downwards.
  const double bottom = 44 + 0.65 * 6.2 * static_cast<double>(longest);
  const double plot_w = panel_w - left - right, width = panel_w * static_cast<double>(outputs.size()),
               height = top + plot_h + bottom;
  std::ostringstream s;
  s << std::fixed << std::setprecision(1);
  s << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width << "\" height=\"" << height
    << "\" viewBox=\"0 0 " << width << " " << height << "\" font-family=\"sans-serif\" font-size=\"11\">\n"
    << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  // Legend across the top.
  double lx = left;
  for (size_t e = 0; e < estimators.size(); ++e) {
    s << "<line x1=\"" << lx << "\" y1=\"14\" x2=\"" << lx + 22 << "\" y2=\"14\" stroke=\"" << colors[e]
      << "\" stroke-width=\"2\"/>\n"
      << marker(e, lx + 11, 14, colors[e]) << "<text x=\"" << lx + 28 << "\" y=\"18\">"
      << xml_escape(estimators[e]) << "</text>\n";
    lx += 90;
  }
  for (size_t p = 0; p < outputs.size(); ++p) {
    const std::vector<LayerQuality>& layers = results[p];
    const double x0 = panel_w * static_cast<double>(p) + left, y0 = top;
    const size_t n = layers.size();
    auto px = [&](size_t i) {
      return x0 + (static_cast<double>(i) + 0.5) * plot_w / static_cast<double>(std::max<size_t>(n, 1));
    };
    auto py = [&](double rho) { return y0 + (1.0 - std::clamp(rho, 0.0, 1.0)) * plot_h; };
    s << "<g data-output=\"" << to_string(outputs[p]) << "\">\n"
      << "<text x=\"" << x0 + plot_w / 2 << "\" y=\"" << top - 12
      << "\" text-anchor=\"middle\" font-size=\"13\">" << xml_escape(describe(outputs[p])) << "</text>\n";
    for (int t = 0; t <= 5; ++t) {
      const double v = t / 5.0, y = py(v);
      s << "<line x1=\"" << x0 << "\" y1=\"" << y << "\" x2=\"" << x0 + plot_w << "\" y2=\"" << y
        << "\" stroke=\"#dddddd\"/>\n"
        << "<text x=\"" << x0 - 6 << "\" y=\"" << y + 4 << "\" text-anchor=\"end\">" << std::setprecision(1)
        << v << "</text>\n";
    }
    s << "<rect x=\"" << x0 << "\" y=\"" << y0 << "\" width=\"" << plot_w << "\" height=\"" << plot_h
      << "\" fill=\"none\" stroke=\"black\"/>\n";
    for (size_t i = 0; i < n; ++i) {
      const double x = px(i), y = y0 + plot_h;
      std::string label = layers[i].node;
      if (label.size() > 40) label = "…" + label.substr(label.size() - 39);
      s << "<line x1=\"" << x << "\" y1=\"" << y << "\" x2=\"" << x << "\" y2=\"" << y + 4
        << "\" stroke=\"black\"/>\n"
        << "<text x=\"" << x << "\" y=\"" << y + 14 << "\" text-anchor=\"end\" transform=\"rotate(-40 " << x
        << " " << y + 14 << ")\">" << xml_escape(label) << " (" << layers[i].op_type << ")</text>\n";
    }
    s << "<text x=\"" << x0 + plot_w / 2 << "\" y=\"" << height - 8
      << "\" text-anchor=\"middle\" font-size=\"12\">"
      << "layer</text>\n"
      << "<text x=\"" << x0 - 44 << "\" y=\"" << y0 + plot_h / 2
      << "\" text-anchor=\"middle\" font-size=\"12\" "
      << "transform=\"rotate(-90 " << x0 - 44 << " " << y0 + plot_h / 2
      << ")\">ρ(S) = 1 − corr(t, vᵀd)</text>\n";
    for (size_t e = 0; e < estimators.size(); ++e) {
      s << "<polyline data-estimator=\"" << xml_escape(estimators[e]) << "\" fill=\"none\" stroke=\""
        << colors[e] << "\" stroke-width=\"2\" points=\"";
      bool first = true;
      for (size_t i = 0; i < n; ++i) {
        const double r = layers[i].mean_rho.at(estimators[e]);
        if (std::isnan(r)) continue;  // no neuron used: a gap in the markers, the line goes on
        s << (first ? "" : " ") << px(i) << "," << py(r);
        first = false;
      }
      s << "\"/>\n";
      for (size_t i = 0; i < n; ++i) {
        const double r = layers[i].mean_rho.at(estimators[e]);
        if (!std::isnan(r)) s << marker(e, px(i), py(r), colors[e]);
      }
    }
    s << "</g>\n";
  }
  s << "</svg>\n";
  return s.str();
}

nlohmann::json layer_json(const LayerQuality& l) {
  nlohmann::json j{{"node", l.node},
                   {"op_type", l.op_type},
                   {"neurons", l.neurons},
                   {"neurons_used", l.neurons_used},
                   {"neurons_dead", l.neurons - l.neurons_used}};
  for (const std::string& e : quality_estimators()) {
    const double m = l.mean_rho.at(e);
    j["mean_rho"][e] = std::isnan(m) ? nlohmann::json(nullptr) : nlohmann::json(m);
    nlohmann::json per = nlohmann::json::array();
    for (double r : l.rho.at(e)) per.push_back(std::isnan(r) ? nlohmann::json(nullptr) : nlohmann::json(r));
    j["rho"][e] = per;
  }
  return j;
}

void run_quality(const QualityOptions& o) {
  std::vector<QualityOutput> outputs;
  if (o.output == "both") {
    outputs = {QualityOutput::pre, QualityOutput::post};
  } else {
    outputs = {parse_quality_output(o.output)};
  }
  const Model model = Model::load(o.model);
  const PatternFile patterns = read_pattern_file_for(o.patterns, model);
  if (!o.allow_overlap) check_disjoint_splits(o, patterns.data_description);
  std::vector<std::string> all_data = o.data;
  all_data.insert(all_data.end(), o.eval.begin(), o.eval.end());
  const LoadedInputs resolved = resolve_preprocessing(o.model, model, o.input, all_data);
  // Both streams first, so a missing or unfitting file is reported before any work.
  InputStream fit_data(o.data, resolved.preprocessing, model.input_shapes().at(0));
  InputStream eval_data(o.eval, resolved.preprocessing, model.input_shapes().at(0));
  auto statistics = [&](InputStream& data, const std::string& label) {
    Progress progress(label);
    return fit_quality_statistics(model, data, o.input.batch, [&](int64_t done, int64_t total) {
      progress.update(static_cast<size_t>(done), static_cast<size_t>(std::max<int64_t>(total, done)));
    });
  };
  const QualityStatistics fit = statistics(fit_data, "statistics (fit v)");
  const QualityStatistics eval = statistics(eval_data, "statistics (evaluation)");
  const std::vector<std::vector<LayerQuality>> results =
      signal_quality(model, patterns, fit, eval, outputs, o.seed, o.ridge);

  std::cout << "patterns fitted on " << patterns.statistics.images << " input(s) ("
            << patterns.data_description << "), v on " << fit.images << ", evaluated on " << eval.images
            << "\n";
  for (size_t k = 0; k < outputs.size(); ++k) {
    if (k > 0) std::cout << "\n";
    print_table(std::cout, outputs[k], results[k]);
  }
  if (!o.json.empty()) {
    nlohmann::json j{
        {"model", o.model},
        {"patterns", o.patterns},
        {"pattern_data", patterns.data_description},
        {"pattern_images", patterns.statistics.images},
        {"fit_data", o.data},
        {"fit_images", fit.images},
        {"eval_data", o.eval},
        {"eval_images", eval.images},
        {"seed", o.seed},
        {"ridge", o.ridge},
        {"regularization", "lambda = ridge * trace(Sigma_x) / D per layer and group (fit split)"},
        {"estimators", quality_estimators()}};
    for (size_t k = 0; k < outputs.size(); ++k) {
      nlohmann::json layers = nlohmann::json::array();
      for (const LayerQuality& l : results[k]) layers.push_back(layer_json(l));
      j["outputs"][to_string(outputs[k])] = {{"t", describe(outputs[k])}, {"layers", layers}};
    }
    write_text(o.json, j.dump(2) + "\n");
  }
  if (!o.svg.empty()) write_text(o.svg, svg_plot(outputs, results));
}

}  // namespace

void add_signal_quality_command(CLI::App& app) {
  auto options = std::make_shared<QualityOptions>();
  CLI::App* cmd = app.add_subcommand(
      "signal-quality",
      "Measure the signal estimators random, S_w, S_a, S_a+- per layer: rho(S) (PatternNet Fig. 3)");
  cmd->add_option("model", options->model, "ONNX model file")->required();
  cmd->add_option("--patterns", options->patterns, "Pattern file of this model (sieve fit-patterns), split 1")
      ->required();
  cmd->add_option("--data", options->data, "Data to fit the projection v on (split 2); FILE[a:b] for a slice")
      ->required();
  cmd->add_option("--eval", options->eval,
                  "Data to measure the correlation on (split 3); FILE[a:b] for a slice")
      ->required();
  cmd->add_option("--output", options->output,
                  "The neuron output t: pre (y = wᵀx), post (relu(wᵀx + b)) or both (default)")
      ->check(CLI::IsMember({"pre", "post", "both"}));
  cmd->add_option("--json", options->json,
                  "Write every result (per layer, estimator, output and neuron) as JSON");
  cmd->add_option("--svg", options->svg, "Write a line plot of the mean rho per layer (SVG)");
  cmd->add_option("--seed", options->seed, "Seed of the random directions (default 0)");
  cmd->add_option("--ridge", options->ridge, "Ridge factor r: lambda = r * trace(Sigma_x) / D (default 1e-6)")
      ->check(positive_real());
  cmd->add_flag("--allow-overlap", options->allow_overlap,
                "Accept splits that share samples (the same file with overlapping ranges)");
  add_input_options(cmd, options->input);
  cmd->callback([options] { run_quality(*options); });
}

}  // namespace sieve::cli
