#pragma once

// The quality ρ(S) of a signal estimator (PatternNet §4.1, Eq. 1; METHODS.md §3.3), computed exactly
// from second-order statistics instead of by SGD:
//
//   ρ(S) = 1 − max_v corr(t, vᵀd),   d = x − S(x),
//
// per output neuron of every pattern layer, with x the neuron's input (patch), y = wᵀx its output
// without bias and t either y (`pre`) or relu(y + b) (`post`). v* is the ridge least-squares
// regression of t on d fitted on one data split; the correlation is then measured on another. See
// docs/signal_quality.md.

#include <cstdint>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "sieve/io/stream.hpp"
#include "sieve/model.hpp"
#include "sieve/patterns.hpp"

namespace sieve {

// Sums over every sample of one pattern layer (every output position of every image for a Conv), in
// float64. A Conv with groups > 1 has one patch per group: patch k of group g holds the input
// elements that neuron j of group g multiplies with its filter element k.
struct QualityLayerStatistics {
  std::string node, op_type;
  Shape weight_shape;       // the op's own weight layout
  int64_t output_axis = 0;  // weight axis of the output neurons
  int64_t neurons = 0;
  int64_t groups = 1;          // Conv groups (1 for Gemm / MatMul); neurons / groups neurons per group
  int64_t patch = 0;           // D: elements of one patch (C_in/groups · k… for Conv, K for Gemm / MatMul)
  double count = 0;            // samples
  std::vector<double> sum_x;   // [groups, D]        Σx
  std::vector<double> sum_xx;  // [groups, D, D]     Σxxᵀ, column-major; only the lower triangle is kept
  // Per neuron, neuron-major [neurons, D] (x is the neuron's group patch): Σx·y_p, Σx·y_n, Σx·t with
  // y_p = y·1[z>0], y_n = y·1[z≤0], t = relu(z), z = y + b the layer's real output.
  std::vector<double> sum_x_yp, sum_x_yn, sum_x_t;
  // Per neuron [neurons]: Σy_p, Σy_n, Σy_p², Σy_n², Σt, Σt², Σy_p·t, Σy_n·t.
  std::vector<double> sum_yp, sum_yn, sum_yp2, sum_yn2, sum_t, sum_t2, sum_yp_t, sum_yn_t;
  void merge(const QualityLayerStatistics& other);
};

// Streaming accumulation of the ρ(S) statistics of every pattern layer (sieve::pattern_layers). Memory
// per layer is dominated by Σxxᵀ: groups · D² doubles (the first dense layer of VGG-16 would need
// 5 GB; a layer over 2³⁰ doubles is refused).
class QualityStatistics {
 public:
  QualityStatistics() = default;
  explicit QualityStatistics(const Model& model);
  // One forward pass over `batch`. A Conv's patches come from the op itself run with an identity kernel
  // (no separate im2col), a few images at a time; all products are formed in float64.
  void accumulate(const Model& model, const Tensor& batch);
  // Adds statistics of the same model gathered on other data (throws when the layers differ).
  void merge(const QualityStatistics& other);
  const std::vector<QualityLayerStatistics>& layers() const { return layers_; }
  int64_t images = 0;

 private:
  std::vector<QualityLayerStatistics> layers_;
  std::vector<Tensor> identity_;  // per layer: the identity kernel of a Conv (empty otherwise)
};

// One streaming pass over a data set, `batch` samples at a time (the model's own batch size when it is
// fixed; a short last batch is padded and the padding left out of the sums). `progress(done, total)`, total 0
// if unknown.
QualityStatistics fit_quality_statistics(const Model& model, InputStream& data, int64_t batch,
                                         const std::function<void(int64_t, int64_t)>& progress = {});

enum class QualityOutput { pre, post };
QualityOutput parse_quality_output(const std::string& text);  // "pre" or "post"
std::string to_string(QualityOutput output);

// The estimators compared, in this order: "random", "S_w", "S_a", "S_a+-".
const std::vector<std::string>& quality_estimators();

struct LayerQuality {
  std::string node, op_type;
  int64_t neurons = 0;                     // all output neurons of the layer
  int64_t neurons_used = 0;                // those with var(t) > 0 on both the fit and the evaluation split
  std::map<std::string, double> mean_rho;  // per estimator: mean ρ over the neurons used (NaN if none)
  std::map<std::string, std::vector<double>> rho;  // per estimator, per neuron (NaN where skipped)
};

// The default ridge factor: λ = kQualityRidge · trace(Σ_x)/D.
inline constexpr double kQualityRidge = 1e-6;

// ρ(S) per pattern layer (in topological order) for every estimator of quality_estimators():
// - S_w: d = x − w·y/(wᵀw);
// - S_a: d = x − a·y with the linear pattern a;
// - S_a+-: d = x − a₊·y_p − a₋·y_n with the two-component (relu) patterns;
// - random: d = x − r·y/(wᵀr), r a Gaussian direction per neuron drawn from `seed` (the same in every
//   call and for either output).
// Both pattern kinds are estimated from `patterns.statistics` (split 1), whatever the file's type. v*
// is fitted on `fit_v` (split 2) and the correlation measured on `eval` (split 3), which must be
// statistics of `model`. Σ_d is regularized with λ = ridge · trace(Σ_x)/D per layer and group (Σ_x of
// the fit split).
std::vector<LayerQuality> signal_quality(const Model& model, const PatternFile& patterns,
                                         const QualityStatistics& fit_v, const QualityStatistics& eval,
                                         QualityOutput output, uint64_t seed = 0,
                                         double ridge = kQualityRidge);
// Several outputs at once (shares the factorizations): one result per entry of `outputs`.
std::vector<std::vector<LayerQuality>> signal_quality(const Model& model, const PatternFile& patterns,
                                                      const QualityStatistics& fit_v,
                                                      const QualityStatistics& eval,
                                                      const std::vector<QualityOutput>& outputs,
                                                      uint64_t seed = 0, double ridge = kQualityRidge);

// A ρ(S) run as reported: where its three splits came from and the results per output.
struct QualityReport {
  std::string model, patterns, pattern_data;  // pattern_data: the pattern file's data description
  int64_t pattern_images = 0;
  std::vector<std::string> fit_data, eval_data;
  int64_t fit_images = 0, eval_images = 0;
  uint64_t seed = 0;
  double ridge = kQualityRidge;
  std::vector<QualityOutput> outputs;
  std::vector<std::vector<LayerQuality>> results;  // one per output
};
// A ρ(S) run on files, as `sieve signal-quality` makes it: the patterns in `patterns_path` (checked
// against `model`), v fitted on `fit_data` and the correlation measured on `eval_data` (data arguments,
// FILE[a:b] for a slice, read with `preprocessing`), the three splits checked to share no samples unless
// `allow_overlap`. Both streams are opened before any work, so a missing file is reported first.
// `progress(stage, done, total)` follows the statistics passes ("statistics (fit v)", "statistics
// (evaluation)"), total 0 if unknown.
struct QualityRun {
  std::string model_path, patterns_path;
  std::vector<std::string> fit_data, eval_data;
  std::vector<QualityOutput> outputs{QualityOutput::pre, QualityOutput::post};
  int64_t batch = 32;
  uint64_t seed = 0;
  double ridge = kQualityRidge;
  bool allow_overlap = false;
};
QualityReport measure_signal_quality(
    const Model& model, const QualityRun& run, const Preprocessing& preprocessing,
    const std::function<void(const std::string& stage, int64_t done, int64_t total)>& progress = {});
// "pre: t = y = wᵀx" or "post: t = relu(wᵀx + b)".
std::string describe(QualityOutput output);
// A table for people: one row per layer, one column per estimator (mean ρ), with a heading line.
std::string quality_table(QualityOutput output, const std::vector<LayerQuality>& layers);
// Every number: per output, layer, estimator the mean ρ and the ρ of each neuron (NaN as null).
nlohmann::json quality_json(const QualityReport& report);
// PatternNet Fig. 3: mean ρ per layer for each estimator, one panel per output.
std::string quality_svg(const QualityReport& report);
// Throws sieve::Error when two of the three splits (the patterns' data, as described in the pattern
// file, `fit_data` and `eval_data`) share samples: the same file with overlapping ranges.
void check_disjoint_splits(const std::string& pattern_data, const std::vector<std::string>& fit_data,
                           const std::vector<std::string>& eval_data);

// The random estimator's direction u = r/(wᵀr) of neuron `neuron` of pattern layer `layer` with
// filter w (exposed for tests).
std::vector<double> quality_random_direction(const std::vector<double>& w, uint64_t seed, size_t layer,
                                             int64_t neuron);

}  // namespace sieve
