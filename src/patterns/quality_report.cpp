#include <cmath>
#include <iomanip>
#include <sstream>

#include "sieve/error.hpp"
#include "sieve/io/inputs.hpp"
#include "sieve/io/line_chart.hpp"
#include "sieve/signal_quality.hpp"

namespace sieve {

std::string describe(QualityOutput output) {
  return output == QualityOutput::pre ? "pre: t = y = wᵀx" : "post: t = relu(wᵀx + b)";
}

std::string quality_table(QualityOutput output, const std::vector<LayerQuality>& layers) {
  size_t width = 5;
  for (const LayerQuality& l : layers) width = std::max(width, l.node.size());
  std::ostringstream out;
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
  return out.str();
}

namespace {

nlohmann::json number_or_null(double v) {
  return std::isnan(v) ? nlohmann::json(nullptr) : nlohmann::json(v);
}

nlohmann::json layer_json(const LayerQuality& l) {
  nlohmann::json j{{"node", l.node},
                   {"op_type", l.op_type},
                   {"neurons", l.neurons},
                   {"neurons_used", l.neurons_used},
                   {"neurons_dead", l.neurons - l.neurons_used}};
  for (const std::string& e : quality_estimators()) {
    j["mean_rho"][e] = number_or_null(l.mean_rho.at(e));
    nlohmann::json per = nlohmann::json::array();
    for (double r : l.rho.at(e)) per.push_back(number_or_null(r));
    j["rho"][e] = per;
  }
  return j;
}

}  // namespace

nlohmann::json quality_json(const QualityReport& report) {
  nlohmann::json j{{"model", report.model},
                   {"patterns", report.patterns},
                   {"pattern_data", report.pattern_data},
                   {"pattern_images", report.pattern_images},
                   {"fit_data", report.fit_data},
                   {"fit_images", report.fit_images},
                   {"eval_data", report.eval_data},
                   {"eval_images", report.eval_images},
                   {"seed", report.seed},
                   {"ridge", report.ridge},
                   {"regularization", "lambda = ridge * trace(Sigma_x) / D per layer and group (fit split)"},
                   {"estimators", quality_estimators()}};
  for (size_t k = 0; k < report.outputs.size(); ++k) {
    nlohmann::json layers = nlohmann::json::array();
    for (const LayerQuality& l : report.results.at(k)) layers.push_back(layer_json(l));
    j["outputs"][to_string(report.outputs[k])] = {{"t", describe(report.outputs[k])}, {"layers", layers}};
  }
  return j;
}

std::string quality_svg(const QualityReport& report) {
  LineChart chart{"layer", "ρ(S) = 1 − corr(t, vᵀd)", 0, 1, {}};
  for (size_t k = 0; k < report.outputs.size(); ++k) {
    ChartPanel panel{describe(report.outputs[k]), to_string(report.outputs[k]), {}, {}};
    const std::vector<LayerQuality>& layers = report.results.at(k);
    for (const LayerQuality& l : layers) panel.x_labels.push_back(l.node + " (" + l.op_type + ")");
    for (const std::string& e : quality_estimators()) {
      ChartSeries series{e, {}};
      for (const LayerQuality& l : layers) series.y.push_back(l.mean_rho.at(e));
      panel.series.push_back(std::move(series));
    }
    chart.panels.push_back(std::move(panel));
  }
  return line_chart_svg(chart);
}

void check_disjoint_splits(const std::string& pattern_data, const std::vector<std::string>& fit_data,
                           const std::vector<std::string>& eval_data) {
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
  for (const std::string& d : fit_data) splits.emplace_back("--data", d);
  for (const std::string& e : eval_data) splits.emplace_back("--eval", e);
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

QualityReport measure_signal_quality(
    const Model& model, const QualityRun& run, const Preprocessing& preprocessing,
    const std::function<void(const std::string& stage, int64_t done, int64_t total)>& progress) {
  const PatternFile patterns = read_pattern_file_for(run.patterns_path, model);
  if (!run.allow_overlap) check_disjoint_splits(patterns.data_description, run.fit_data, run.eval_data);
  InputStream fit_data(run.fit_data, preprocessing, model.input_shapes().at(0));
  InputStream eval_data(run.eval_data, preprocessing, model.input_shapes().at(0));
  auto statistics = [&](InputStream& data, const std::string& stage) {
    return fit_quality_statistics(model, data, run.batch, [&](int64_t done, int64_t total) {
      if (progress) progress(stage, done, total);
    });
  };
  const QualityStatistics fit = statistics(fit_data, "statistics (fit v)");
  const QualityStatistics eval = statistics(eval_data, "statistics (evaluation)");
  QualityReport report{run.model_path,
                       run.patterns_path,
                       patterns.data_description,
                       patterns.statistics.images,
                       run.fit_data,
                       run.eval_data,
                       fit.images,
                       eval.images,
                       run.seed,
                       run.ridge,
                       run.outputs,
                       {}};
  report.results = signal_quality(model, patterns, fit, eval, run.outputs, run.seed, run.ridge);
  return report;
}

}  // namespace sieve
