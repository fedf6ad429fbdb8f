#pragma once

// Explanation methods ("analyzers"). An analyzer is created by name with parameters
// ("integrated_gradients:steps=32"), runs on a batch and returns explanations shaped like the input.
// Analyzers that only need one forward and one reverse pass share the forward pass of the batch.

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sieve/io/preprocess.hpp"
#include "sieve/model.hpp"
#include "sieve/reverse.hpp"

namespace sieve {

struct MethodSpec {
  std::string name;
  std::map<std::string, std::string> params;
  // "name" or "name:key=value,key=value".
  static MethodSpec parse(const std::string& text);
  std::string text() const;
};

// A batch run forward once, with the trace the reverse passes need, explaining the model's first output.
class ForwardPass {
 public:
  // `also_keep`: values beyond the gradient's needs that the analyzers' mappings read.
  ForwardPass(const Model& model, const Tensor& input, const std::vector<ValueId>& also_keep = {});
  const Model& model() const { return *model_; }
  const Tensor& input() const { return input_; }
  const Tensor& output() const { return output_; }
  // Reverse pass from `seed` (shaped like the output); `mapping_for(node_index)` may override nodes.
  Tensor reverse(const Tensor& seed,
                 const std::function<const BackwardMapping*(size_t)>& mapping_for = {}) const;

 private:
  const Model* model_;
  Tensor input_, output_;
  ReversePlan plan_;
  Trace trace_;
};

// Output seed with value[i] at (sample i, target[i]) and zeros elsewhere; the output must be [N, classes].
Tensor target_seed(const Shape& output_shape, const std::vector<int64_t>& targets,
                   const std::vector<float>& values);
// The relevance family's seed: each sample's target logit at its target, zeros elsewhere.
Tensor logit_seed(const ForwardPass& pass, const std::vector<int64_t>& targets);

class Analyzer {
 public:
  virtual ~Analyzer() = default;
  // Binds the analyzer to `model` (which must outlive its use): per-model state such as modified
  // parameters or patterns is made here once, and set-up errors are raised here. An analyzer that was
  // not prepared for the model of a pass makes that state for each call.
  virtual void prepare(const Model&) {}
  // Explanations of pass.output()[i, targets[i]] for every sample i, shaped like the input batch.
  virtual Tensor explain(const ForwardPass& pass, const std::vector<int64_t>& targets) const = 0;
  // Forward values the analyzer's backward mappings read beyond the gradient's (kept in the trace).
  virtual std::vector<ValueId> trace_values(const Model&) const { return {}; }
};

struct MethodParameter {
  std::string name, default_value, description;
};
struct MethodInfo {
  std::string name, description;
  std::vector<MethodParameter> parameters;
  std::string visualization;  // default picture: heatmap, graymap or projection
};

// What an analyzer may need beyond its own parameters.
struct AnalyzerContext {
  std::optional<InputRange> input_range;  // the model input's value range (default bounds of z^B)
  std::vector<std::string> rules;  // user composite entries "PREDICATE:RULE[:k=v]", ahead of a preset's
  std::string composite_file;      // a JSON composite, ahead of a preset's (after `rules`)
  std::string patterns_file;       // fitted patterns for pattern.net / pattern.attribution
};

// Every registered method with its parameters and defaults.
const std::vector<MethodInfo>& available_methods();
// Throws sieve::Error for an unknown method, an unknown parameter or a malformed value.
std::unique_ptr<Analyzer> create_analyzer(const MethodSpec& spec, const AnalyzerContext& context = {});

// Which output neurons to explain: "max" (the predicted class), an index, a comma list, or "all".
struct TargetSelection {
  enum class Kind { max, indices, all } kind = Kind::max;
  std::vector<int64_t> indices;
  static TargetSelection parse(const std::string& text);
  // The explanation passes: one vector of per-sample targets each (one pass for max; one per class
  // for a list or all). Throws when an index is out of range for `classes`.
  std::vector<std::vector<int64_t>> resolve(const Tensor& logits) const;
};

}  // namespace sieve

namespace sieve {

// One explanation of one sample by one method for one target class.
struct Explanation {
  size_t sample = 0;
  size_t method = 0;
  int64_t target = 0;
  Tensor values;  // shaped like the sample ([1, ...])
};

// Explains every sample ([1, ...] each) with every analyzer for the selected targets, running the
// samples in batches of at most `max_batch` (of the model's own batch size when it is fixed); all
// analyzers share each batch's forward pass. Results are ordered by sample, then method, then target.
std::vector<Explanation> explain_samples(const Model& model, const std::vector<Tensor>& samples,
                                         const std::vector<const Analyzer*>& analyzers,
                                         const TargetSelection& targets, int64_t max_batch = 32,
                                         const std::function<void(size_t done, size_t total)>& progress = {});

}  // namespace sieve
