#pragma once

// PatternNet and PatternAttribution (Kindermans et al. 2018): per output neuron of every linear layer,
// the pattern a — the direction along which the neuron's output y = wᵀx varies in the input — learned
// from data in closed form, then used instead of the weights on the way back.

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "sieve/io/stream.hpp"
#include "sieve/model.hpp"

namespace sieve {

// Sums over every sample (every output position of every image, for a convolution) of one layer, per
// output neuron, in float64. y = wᵀx is the layer's output without bias, x its input (patch); the
// positive regime is where the layer's real output (with bias) is > 0. The negative regime is "all"
// minus "positive". Statistics merge by addition.
struct LayerStatistics {
  std::string node;         // node name
  Shape weight_shape;       // the op's own weight layout
  int64_t output_axis = 0;  // weight axis of the output neurons
  int64_t neurons = 0;
  double count = 0;                        // samples (the same for every neuron)
  std::vector<double> count_pos;           // [neurons]
  std::vector<double> sum_y, sum_y_pos;    // [neurons]
  std::vector<double> sum_x, sum_x_pos;    // weight-shaped
  std::vector<double> sum_xy, sum_xy_pos;  // weight-shaped
  void merge(const LayerStatistics& other);
};

// The layers patterns are fitted for: Conv, Gemm and MatMul with constant weights on the path from the
// model's input to its first output, in topological order.
std::vector<size_t> pattern_layers(const Model& model);

// Streaming accumulation of the statistics of every pattern layer.
class PatternStatistics {
 public:
  PatternStatistics() = default;
  explicit PatternStatistics(const Model& model);
  // One forward pass over `batch` and the sums of every layer: for a convolution they come from its
  // backward-weights kernel with the (masked) output as the gradient, no patch is materialized.
  void accumulate(const Model& model, const Tensor& batch);
  // Adds another fit of the same model (throws when the layers differ).
  void merge(const PatternStatistics& other);
  const std::vector<LayerStatistics>& layers() const { return layers_; }
  std::vector<LayerStatistics>& layers() { return layers_; }
  int64_t images = 0;

 private:
  std::vector<LayerStatistics> layers_;
};

// One streaming pass over a data set, `batch` samples at a time (the model's own batch size when it is
// fixed; a short last batch is padded and the padding left out of the sums); memory holds one batch and the
// statistics. `progress(done, total)`, total 0 if unknown.
PatternStatistics fit_pattern_statistics(const Model& model, InputStream& data, int64_t batch,
                                         const std::function<void(int64_t, int64_t)>& progress = {});

enum class PatternType { relu, linear, linear_last };
PatternType parse_pattern_type(const std::string& text);
std::string to_string(PatternType type);

// Fitted patterns of one layer, in the op's weight layout: `positive` is a₊ (relu) or a (linear),
// `negative` is a₋ (relu) or a (linear). A neuron with a zero denominator has a zero pattern.
struct LayerPatterns {
  std::string node;
  Tensor positive, negative;
};

// Estimators (METHODS.md §3.2): linear a = cov[x,y] / wᵀcov[x,y]; relu (two-component)
// a± = (E±[xy] − E±[x]·E[y]) / wᵀ(E±[xy] − E±[x]·E[y]) with E[y] over all samples; linear_last uses
// the linear estimator for the last layer and relu for the others. Every pattern has wᵀa = 1.
std::vector<LayerPatterns> estimate_patterns(const Model& model, const PatternStatistics& stats,
                                             PatternType type);

// A hash of the graph (operators, node names, wiring) and every constant, for refusing pattern files
// of other models.
std::string model_fingerprint(const Model& model);

struct PatternFile {
  std::string fingerprint;
  PatternType type = PatternType::relu;
  std::string data_description;
  PatternStatistics statistics;
  std::vector<LayerPatterns> patterns;
};
// safetensors: per layer NODE/pattern_pos, NODE/pattern_neg (float32) and the raw statistics
// NODE/count, NODE/count_pos, NODE/sum_y, … (float64); JSON metadata with the fingerprint, type,
// sample counts and data description.
void write_pattern_file(const std::string& path, const PatternFile& file);
PatternFile read_pattern_file(const std::string& path);
// Reads a pattern file and checks it was made for `model` (throws naming both fingerprints otherwise).
PatternFile read_pattern_file_for(const std::string& path, const Model& model);
// Throws when `file` was not made for `model` (its fingerprint or its number of layers), naming
// `source` (the file, or what the patterns were fitted on) and both fingerprints.
void check_patterns_fit(const PatternFile& file, const Model& model, const std::string& source);

// Patterns of `type` fitted on one pass over `data` (fit_pattern_statistics), described by
// `data_description` in the file.
PatternFile fit_pattern_file(const Model& model, InputStream& data, PatternType type, int64_t batch,
                             const std::string& data_description,
                             const std::function<void(int64_t, int64_t)>& progress = {});
// The pattern files of `model` fitted on parts of a data set, made one: their statistics added (the
// same as one fit on all parts) and the patterns of `type` estimated from the sum.
PatternFile merge_pattern_files(const Model& model, const std::vector<std::string>& paths, PatternType type);

}  // namespace sieve
