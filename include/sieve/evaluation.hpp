#pragma once

// Measures of explanations: region perturbation (PatternNet §5, Samek et al. 2017), completeness,
// sparseness, input invariance (book ch. 14), continuity (MSM §7.1) and model-parameter randomisation
// (Adebayo et al. 2018). Region perturbation, completeness and sparseness take explanations computed by
// any analyzer or read from a file, one per sample and shaped like it; the others run the analyzers on
// changed inputs or models.

#include <algorithm>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "sieve/analyzer.hpp"
#include "sieve/io/line_chart.hpp"
#include "sieve/io/preprocess.hpp"
#include "sieve/model.hpp"
#include "sieve/tensor.hpp"

namespace sieve {

// ---- Region perturbation -------------------------------------------------------------------------

// The non-overlapping tiles of a sample: [1, C, H, W] gets size×size tiles, [1, C, L] and [1, D] tiles
// of `size` elements; anchored at (0, 0), edge tiles truncated. Tiles are numbered row-major.
struct TileGrid {
  int64_t channels = 1, height = 1, width = 1;  // a 1-D sample has height 1
  int64_t tile_height = 1, tile_width = 1;
  int64_t rows = 1, columns = 1;
  int64_t count() const { return rows * columns; }
  // Rows [first, last) and columns [first, last) of tile `t`.
  int64_t row_begin(int64_t t) const { return (t / columns) * tile_height; }
  int64_t row_end(int64_t t) const { return std::min(height, row_begin(t) + tile_height); }
  int64_t column_begin(int64_t t) const { return (t % columns) * tile_width; }
  int64_t column_end(int64_t t) const { return std::min(width, column_begin(t) + tile_width); }
};
// Throws when `size` is below 1 or larger than a spatial dimension of the sample.
TileGrid tile_grid(const Shape& sample_shape, int64_t size);

// Each tile's score: the sum of the explanation over its pixels and all channels (in double).
std::vector<double> tile_scores(const Tensor& explanation, const TileGrid& grid);

enum class PerturbationOrder { morf, lerf, random };
std::string to_string(PerturbationOrder order);
// Most relevant first (descending score), least relevant first (ascending), ties by tile index.
std::vector<int64_t> tile_order(const std::vector<double>& scores, PerturbationOrder order);
// A uniformly random order drawn from `seed`.
std::vector<int64_t> random_tile_order(int64_t tiles, uint64_t seed);

enum class PerturbationFill { patch_mean, zero, baseline, uniform, blur };
enum class PerturbationMeasure { softmax, logit };

struct RegionPerturbationOptions {
  int64_t size = 9;
  int64_t steps = 100;
  // The orders that follow the explanation (morf, lerf); a random order is always run as the baseline.
  std::vector<PerturbationOrder> orders{PerturbationOrder::morf};
  PerturbationFill fill = PerturbationFill::patch_mean;
  Tensor baseline;     // fill baseline: one value ([1]) or one sample's shape
  double sigma = 2.0;  // fill blur: the Gaussian's standard deviation in pixels
  // fill uniform: the range per channel; without it the smallest and largest value of the samples.
  std::optional<InputRange> input_range;
  PerturbationMeasure measure = PerturbationMeasure::softmax;
  uint64_t seed = 0;       // random orders and uniform fills
  bool recompute = false;  // explain the perturbed input again after each step (needs analyzers)
  int64_t max_batch = 64;  // rows per forward pass
};
// "region_perturbation[:size=9,steps=100,order=morf+lerf,fill=patch_mean,baseline=VALUE|FILE.npy,
// sigma=2,measure=softmax,seed=0,recompute=0]". Throws for an unknown or malformed parameter.
RegionPerturbationOptions region_perturbation_options(const MethodSpec& spec);

// What the perturbed copies are filled with: a sample-shaped image whose tile pixels replace the
// sample's. patch_mean: every tile by its own per-channel mean; uniform: drawn once per sample from
// `seed`, so a replaced tile keeps its values through the later steps.
Tensor fill_image(const Tensor& sample, const TileGrid& grid, const RegionPerturbationOptions& options,
                  const std::vector<float>& low, const std::vector<float>& high, uint64_t seed);
// `sample` with the first `steps` tiles of `order` replaced by the fill's values.
Tensor perturbed(const Tensor& sample, const Tensor& fill, const TileGrid& grid,
                 const std::vector<int64_t>& order, int64_t steps);

// AOPC of one curve: the mean over s = 0..steps of v₀ − v_s (Samek et al. 2017).
double aopc(const std::vector<double>& curve);

struct DegradationCurves {
  PerturbationOrder order = PerturbationOrder::morf;
  std::vector<std::vector<double>> curves;  // per sample, steps + 1 values
  std::vector<double> mean_curve;
  std::vector<double> aopc;  // per sample
  double aopc_mean = 0.0;
};

struct MethodPerturbation {
  std::vector<DegradationCurves> orders;  // as requested
  // LeRF − MoRF: the mean over s of the curves' difference (= AOPC(MoRF) − AOPC(LeRF)), when both ran.
  std::vector<double> abpc;
  std::optional<double> abpc_mean;
};

struct RegionPerturbationResult {
  std::vector<int64_t> targets;  // the tracked output index per sample
  int64_t tiles = 0;
  std::vector<MethodPerturbation> methods;  // per set of explanations
  DegradationCurves random;                 // the random-order baseline
};

// Region perturbation of a single-input model's first output. `explanations[m][i]` is method m's
// explanation of sample i (shaped like it). `targets`: the tracked index per sample (empty: the class
// each sample is predicted as). Every perturbed copy of every sample, method and order runs through
// the model in batches of options.max_batch rows.
RegionPerturbationResult region_perturbation(const Model& model, const std::vector<Tensor>& samples,
                                             const std::vector<std::vector<Tensor>>& explanations,
                                             const RegionPerturbationOptions& options,
                                             std::vector<int64_t> targets = {});
// The same with the explanations computed by `analyzers` (prepared for `model`) for the tracked
// targets; with options.recompute each step explains the perturbed copies again and removes the most
// (least) relevant remaining tile.
RegionPerturbationResult region_perturbation(const Model& model, const std::vector<Tensor>& samples,
                                             const std::vector<const Analyzer*>& analyzers,
                                             const RegionPerturbationOptions& options,
                                             std::vector<int64_t> targets = {});

// PatternNet Fig. 4: the mean measure after each step, one line per set of explanations (`names`, one
// per entry of result.methods) and order, the random order dashed; the y range spans the curves (and
// 0..1 for the softmax).
LineChart degradation_chart(const RegionPerturbationResult& result, const RegionPerturbationOptions& options,
                            const std::vector<std::string>& names);

// Each sample explained by `analyzer` (prepared for `model`) for its target index, in batches.
std::vector<Tensor> explain_targets(const Model& model, const Analyzer& analyzer,
                                    const std::vector<Tensor>& samples, const std::vector<int64_t>& targets,
                                    int64_t max_batch = 64);

// The class each sample is predicted as (the largest value of the first output).
std::vector<int64_t> predicted_classes(const Model& model, const std::vector<Tensor>& samples,
                                       int64_t max_batch = 64);

// A baseline as text: a number ("0", "-0.5") as one value [1], or a .npy file. `what` names the
// parameter in messages.
Tensor parse_baseline(const std::string& text, const std::string& what);

// ---- Completeness and sparseness -----------------------------------------------------------------

struct Completeness {
  std::vector<double> relevance_sum;   // Σ R per sample
  std::vector<double> reference;       // f(x), or f(x) − f(x̄) with a baseline
  std::vector<double> relative_error;  // |Σ R − reference| / |reference|
  double mean_relative_error = 0.0;
};
// Σ R against the target's output value f(x) per sample, or f(x) − f(x̄) when `baseline` (one value
// [1], one sample's shape, or all samples' [N, ...]) is given, for methods that explain against a
// baseline (Integrated Gradients).
Completeness completeness(const Model& model, const std::vector<Tensor>& samples,
                          const std::vector<Tensor>& explanations, const std::vector<int64_t>& targets,
                          const Tensor& baseline = {}, int64_t max_batch = 64);

struct Sparseness {
  std::vector<double> gini, entropy;  // per sample, of |R|
  double mean_gini = 0.0, mean_entropy = 0.0;
};
// Gini index of |R| (0: all equal, → 1: one element holds everything; Hurley & Rickard 2009) and the
// Shannon entropy (nats) of p = |R| / Σ|R|. An all-zero explanation has Gini 0 and entropy log n.
Sparseness sparseness(const std::vector<Tensor>& explanations);

// ---- Input invariance (book ch. 14) ---------------------------------------------------------------

// Makes `model` the twin that takes x + shift (one value, or one per input channel) and gives what it
// gave on x: the shift is compensated in the first layer the input reaches (through reshapes), in its
// bias, b − W·shift. Where that layer's zero padding makes W·shift differ between output positions, or
// the layer has no bias of its own, the compensation −W·shift is added after the layer instead.
// Throws when the input does not reach a convolution or dense layer with constant weights that way.
void shift_input(Model& model, const std::vector<float>& shift);

struct InputInvariance {
  // Per sample: max |R(x) − R'(x + shift)| / max |R(x)|, with R' the twin's explanation.
  std::vector<double> relative_difference;
  double max_relative_difference = 0.0;
  bool passed = false;  // max_relative_difference ≤ tolerance
};
// `analyzer` prepared for `model`, `twin_analyzer` the same method prepared for `twin` (made with
// shift_input(·, shift)); both explain each sample's `targets` entry.
InputInvariance input_invariance(const Model& model, const Analyzer& analyzer, const Model& twin,
                                 const Analyzer& twin_analyzer, const std::vector<Tensor>& samples,
                                 const std::vector<float>& shift, const std::vector<int64_t>& targets,
                                 double tolerance, int64_t max_batch = 64);
// `sample` + shift, one value or one per channel (axis 1).
Tensor shifted(const Tensor& sample, const std::vector<float>& shift);

// ---- Continuity (MSM §7.1) ------------------------------------------------------------------------

struct ContinuityOptions {
  int64_t max_shift = 4;  // translations by 1..max_shift pixels along the last axis
  double noise = 0.0;     // and, if > 0, additive Gaussian noise of σ = noise · (max − min of the input)
  uint64_t seed = 0;
  int64_t max_batch = 64;
};
struct Continuity {
  // Per sample, for the translations by 1..max_shift: ‖R(x) − R(x′)‖₁ / ‖x − x′‖₂.
  std::vector<std::vector<double>> ratios;
  std::vector<double> max_ratio;  // per sample
  std::vector<double> mean_curve;
  double max = 0.0;  // over samples and translations
};
// "continuity[:max_shift=4,noise=0,seed=0]"; throws for an unknown or malformed parameter.
ContinuityOptions continuity_options(const MethodSpec& spec);
// x′ is x moved right by t elements along its last axis, the vacated columns repeating the first column
// (the background stays), plus the noise; each explained by `analyzer` for the sample's target.
Continuity continuity(const Model& model, const Analyzer& analyzer, const std::vector<Tensor>& samples,
                      const std::vector<int64_t>& targets, const ContinuityOptions& options);

// ---- Model-parameter randomisation (Adebayo et al. 2018) -----------------------------------------

struct LayerRandomization {
  std::string layer;  // the node whose weights were randomised last
  // Per sample, between the model's explanation R and the one of the randomised model R'.
  std::vector<double> spearman_abs, spearman, ssim;  // ρ(|R|, |R'|), ρ(R, R'), SSIM(|R|, |R'|)
  double mean_spearman_abs = 0.0, mean_spearman = 0.0, mean_ssim = 0.0;
};
// Cascading randomisation: `copy` (a second instance of `model`) gets the weights of its layers
// (convolutions and dense layers with constant weights) replaced one after the other, from the output
// down, by normal values with the standard deviation of the layer's own weights (seeded; biases kept).
// After each layer, `make_analyzer()` is prepared for the randomised copy and explains the samples
// for `targets`; the result is compared with `analyzer`'s explanation on `model`.
std::vector<LayerRandomization> randomization(const Model& model, const Analyzer& analyzer, Model& copy,
                                              const std::function<std::unique_ptr<Analyzer>()>& make_analyzer,
                                              const std::vector<Tensor>& samples,
                                              const std::vector<int64_t>& targets, uint64_t seed,
                                              int64_t max_batch = 64);

// ---- Similarity of explanations ------------------------------------------------------------------

// Spearman's rank correlation (Pearson of the ranks, ties ranked by their mean rank).
double spearman(std::span<const float> a, std::span<const float> b);
// SSIM (Wang et al. 2004) of two maps, summed over channels to [H, W] and each scaled to [0, 1] by its
// own range, with a uniform 7×7 window (as scikit-image's default), C1 = 0.01², C2 = 0.03².
double ssim(const Tensor& a, const Tensor& b);

}  // namespace sieve
