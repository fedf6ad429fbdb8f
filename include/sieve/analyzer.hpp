#pragma once

// Explanation methods ("analyzers"). An analyzer is created by name with parameters
// ("integrated_gradients:steps=32"), runs on a batch and returns explanations shaped like the input.
// Analyzers that only need one forward and one reverse pass share the forward pass of the batch.

#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sieve/io/preprocess.hpp"
#include "sieve/model.hpp"
#include "sieve/params.hpp"
#include "sieve/reverse.hpp"

namespace sieve {

// A model input held fixed while another is explained: one row per sample, batched with the explained
// input, or one value shared by every batch. A shared value of an input batched like the explained one
// (the same declared leading dimension) is one row [1, ...], repeated to the rows of each batch; any
// other shared value is given whole.
struct FixedInput {
  Tensor value;
  bool per_sample = false;
};

// Which input and output an explanation is about, and the values of the model's other inputs.
struct ExplainSetup {
  std::string wrt;     // the explained input; empty: the model's only float input (or its only input)
  std::string output;  // the explained output; empty: the first
  std::map<std::string, FixedInput> fixed;  // every input but `wrt`, by name
  // Integer token ids are explained at the output of their embedding lookup (a Gather from a constant
  // table): one value per token, summed over the embedding axis, or with this set the full map.
  bool embedding_dimensions = false;
};

struct InputBinding;
struct BoundBatch;
struct PatternFile;

// `setup` checked against `model` once (names, shapes and types of the fixed inputs, the embedding
// lookup of token ids), for every pass of a run. Throws for an unknown, missing or ill-shaped input.
std::shared_ptr<const InputBinding> bind_inputs(const Model& model, const ExplainSetup& setup);

// A batch run forward once, with the trace the reverse passes need.
class ForwardPass {
 public:
  // A model with one input, explaining its first output. `also_keep`: values beyond the gradient's
  // needs that the analyzers' mappings read.
  ForwardPass(const Model& model, const Tensor& input, const std::vector<ValueId>& also_keep = {});
  // `input`: a batch of the values of setup.wrt. Row r takes row samples[r] of the per-sample fixed
  // inputs (row r when `samples` is empty). Throws for an unknown, missing or ill-shaped input.
  ForwardPass(const Model& model, const Tensor& input, const ExplainSetup& setup,
              const std::vector<int64_t>& samples = {}, const std::vector<ValueId>& also_keep = {});
  // The same with the setup bound once (bind_inputs).
  ForwardPass(const Model& model, const Tensor& input, std::shared_ptr<const InputBinding> binding,
              const std::vector<int64_t>& samples = {}, const std::vector<ValueId>& also_keep = {});
  // The same model, setup and fixed inputs at other values of the explained tensor (a path, noisy
  // copies): row r of `explained` belongs to row rows[r] of this pass. `also_keep` as for the constructor.
  ForwardPass at(const Tensor& explained, const std::vector<int64_t>& rows,
                 const std::vector<ValueId>& also_keep = {}) const;
  // The explained output at other values of the explained tensor, as `at` computes it but without a
  // trace (for methods that only score perturbed copies).
  Tensor output_at(const Tensor& explained, const std::vector<int64_t>& rows) const;

  const Model& model() const { return *model_; }
  // The explained tensor: the wrt input, or for token ids the output of their embedding lookup.
  const Tensor& input() const { return input_; }
  const Tensor& output() const { return output_; }
  ValueId explained_output() const { return plan_.output(); }
  // The value input() is: the wrt input, or the embedding lookup's output.
  ValueId explained_input() const { return plan_.input(); }
  // The run's sample that row `row` belongs to (the row itself for a pass made without samples), so
  // randomness drawn per sample does not depend on how the samples were batched.
  int64_t sample(int64_t row) const { return samples_.at(static_cast<size_t>(row)); }
  // Whether input() is the embedding lookup of token ids (its last axis the embedding dimensions).
  bool explains_embedding() const;
  // A forward value kept in the trace (inputs, constants, and what the constructor was asked to keep);
  // empty when it was not kept.
  const Tensor& value(ValueId v) const { return trace_.values.at(static_cast<size_t>(v)); }
  // Reverse pass from `seed` (shaped like the output); `mapping_for(node_index)` may override nodes.
  Tensor reverse(const Tensor& seed,
                 const std::function<const BackwardMapping*(size_t)>& mapping_for = {}) const;
  // An explanation shaped like input() as it is reported for the wrt input: for token ids one value
  // per token (the sum over the embedding axis) unless the setup asks for embedding dimensions.
  Tensor reported(const Tensor& explanation) const;

 private:
  ForwardPass(const Model& model, BoundBatch batch, const std::vector<ValueId>& also_keep);
  BoundBatch batch_at(const Tensor& explained, const std::vector<int64_t>& rows) const;
  const Model* model_;
  std::shared_ptr<const InputBinding> binding_;
  std::vector<Tensor> inputs_;  // every model input of this batch
  std::vector<int64_t> samples_;
  Tensor input_, output_;
  ReversePlan plan_;
  Trace trace_;
};

// What one explanation pass explains in each sample of a batch: a weighted sum of the explained output,
// with weights shaped like the output batch. One flat index per sample (into the sample's output, of any
// shape; the class of a [batch, classes] output) is the one-hot case.
class Target {
 public:
  Target(std::vector<int64_t> indices);  // one flat index per sample (implicit, like a list of classes)
  Target(std::initializer_list<int64_t> indices);
  static Target weighted(Tensor weights);
  bool is_index() const { return weights_.empty(); }
  const std::vector<int64_t>& indices() const { return indices_; }  // empty for weights
  // The gradient family's seed: the weights (1 at each sample's index).
  Tensor gradient_seed(const Tensor& output) const;
  // The relevance family's seed: weights ⊙ output (each sample's output value at its index).
  Tensor relevance_seed(const Tensor& output) const;
  // The target of another batch whose row r belongs to row rows[r] of this target's batch.
  Target rows(const std::vector<int64_t>& rows) const;

 private:
  std::vector<int64_t> indices_;
  Tensor weights_;
};

// Output seed with value[i] at flat index target[i] of sample i's output and zeros elsewhere.
Tensor target_seed(const Shape& output_shape, const std::vector<int64_t>& targets,
                   const std::vector<float>& values);

class Analyzer {
 public:
  virtual ~Analyzer() = default;
  // Binds the analyzer to `model` (which must outlive its use): per-model state such as modified
  // parameters or patterns is made here once, and set-up errors are raised here. An analyzer that was
  // not prepared for the model of a pass makes that state for each call.
  virtual void prepare(const Model&) {}
  // Explanations of the target of every sample, shaped like pass.input().
  virtual Tensor explain(const ForwardPass& pass, const Target& target) const = 0;
  // Forward values the analyzer's backward mappings read beyond the gradient's (kept in the trace).
  virtual std::vector<ValueId> trace_values(const Model&) const { return {}; }
};

// What an analyzer may need beyond its own parameters.
struct AnalyzerContext {
  std::optional<InputRange> input_range;  // the model input's value range (default bounds of z^B)
  std::vector<std::string> rules;  // user composite entries "PREDICATE:RULE[:k=v]", ahead of a preset's
  std::string composite_file;      // a JSON composite, ahead of a preset's (after `rules`)
  std::string patterns_file;       // fitted patterns for pattern.net / pattern.attribution
  std::shared_ptr<const PatternFile> patterns;  // the same held in memory, used when no file is named
  int64_t max_batch = 32;  // rows per forward pass of the methods that run perturbed copies
  // Preprocessed samples [M, ...] of the model's explained input that prediction_difference samples
  // its windows from (--data).
  std::shared_ptr<const Tensor> data;
};

// What to explain in each sample's output: "max" (the largest value: the predicted class), a flat index,
// a comma list, "all", "sum" (the sum of the output) or a weight mask.
struct TargetSelection {
  enum class Kind { max, indices, all, sum, mask } kind = Kind::max;
  std::vector<int64_t> indices;
  // Kind mask: weights shaped like one output sample ([1, ...]) or like the output of all samples.
  Tensor mask;
  static TargetSelection parse(const std::string& text);
  static TargetSelection weights(Tensor mask);
  // For the index kinds: the explanation passes, one vector of per-sample indices each (one pass for
  // max; one per index for a list or all). Throws when an index is out of range for the output.
  std::vector<std::vector<int64_t>> resolve(const Tensor& output) const;
  // The explanation passes of a batch for any kind; row r of the batch is sample samples[r] (for a
  // mask over all samples). Throws when a mask does not fit the output.
  std::vector<Target> passes(const Tensor& output, const std::vector<int64_t>& samples) const;
};

}  // namespace sieve

namespace sieve {

// One explanation of one sample by one method for one target.
struct Explanation {
  size_t sample = 0;
  size_t method = 0;
  int64_t target = 0;  // the flat index into the sample's output; -1 for a sum or a mask
  Tensor values;       // shaped like the sample ([1, ...]), or [1, ..., dims] for embedding dimensions
  Tensor output;       // the sample's explained output ([1, ...]), shared by its explanations
};

// Explains every sample ([1, ...] each, values of setup.wrt) with every analyzer for the selected
// targets, running the samples in batches of at most `max_batch` (of the model's own batch size when it
// is fixed); all analyzers share each batch's forward pass. Per-sample fixed inputs have one row per
// sample. Results are ordered by sample, then method, then target.
std::vector<Explanation> explain_samples(const Model& model, const std::vector<Tensor>& samples,
                                         const std::vector<const Analyzer*>& analyzers,
                                         const TargetSelection& targets, const ExplainSetup& setup,
                                         int64_t max_batch = 32,
                                         const std::function<void(size_t done, size_t total)>& progress = {});
// The same for a model with one input, explaining its first output.
std::vector<Explanation> explain_samples(const Model& model, const std::vector<Tensor>& samples,
                                         const std::vector<const Analyzer*>& analyzers,
                                         const TargetSelection& targets, int64_t max_batch = 32,
                                         const std::function<void(size_t done, size_t total)>& progress = {});

}  // namespace sieve
