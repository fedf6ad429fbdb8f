#include <algorithm>
#include <cmath>

#include "sieve/analyzer.hpp"
#include "sieve/batch.hpp"
#include "sieve/error.hpp"
#include "sieve/io/npy.hpp"
#include "sieve/parse.hpp"
#include "sieve/text_inputs.hpp"

namespace sieve {

// How each model input is fed, which value is explained and which output, resolved from an
// ExplainSetup once per pass.
struct InputBinding {
  enum class Feed {
    explained,    // the values being explained
    per_sample,   // rows picked by sample
    shared_rows,  // one row repeated to every row of a batch
    whole,        // one value given unchanged to every batch
  };
  size_t wrt = 0;          // model input index
  ValueId explained = -1;  // the wrt input's value, or the output of its embedding lookup
  bool embedding = false;  // wrt is token ids explained at their lookup
  bool embedding_dimensions = false;
  size_t output = 0;          // model output index
  std::vector<Feed> feeds;    // per model input
  std::vector<Tensor> fixed;  // per model input; empty for wrt
};

struct BoundBatch {
  std::shared_ptr<const InputBinding> binding;
  std::vector<Tensor> inputs;       // every model input
  std::map<ValueId, Tensor> given;  // computed values supplied from outside
  std::vector<int64_t> samples;     // the run's sample of each row
};

namespace {

std::string joined(const std::vector<std::string>& names) {
  std::string s;
  for (const std::string& n : names) s += (s.empty() ? "" : ", ") + n;
  return s;
}

size_t index_of(const std::vector<std::string>& names, const std::string& name, const std::string& what) {
  const auto it = std::find(names.begin(), names.end(), name);
  if (it == names.end())
    throw Error("unknown " + what + " '" + name + "': the model's " + what + "s are " + joined(names));
  return static_cast<size_t>(it - names.begin());
}

// Integer inputs run as floats holding exact integers; anything else is a value of the wrong type.
void check_input_type(const Model& model, size_t i, const Tensor& value) {
  if (model.input_is_float(i)) return;
  for (int64_t k = 0; k < value.size(); ++k) {
    if (value[k] != std::nearbyint(value[k])) {
      throw Error("input '" + model.input_names()[i] + "' is " + model.input_types()[i] + " but element " +
                  std::to_string(k) + " is " + std::to_string(value[k]));
    }
  }
}

size_t default_wrt(const Model& model) {
  std::vector<std::string> floats;
  for (size_t i = 0; i < model.input_names().size(); ++i) {
    if (model.input_is_float(i)) floats.push_back(model.input_names()[i]);
  }
  if (floats.size() == 1) return index_of(model.input_names(), floats[0], "input");
  if (floats.empty() && model.input_names().size() == 1) return 0;
  throw Error("choose the input to explain (--wrt): the model has " +
              std::string(floats.empty() ? "no float input and several inputs: " : "several float inputs: ") +
              joined(floats.empty() ? model.input_names() : floats));
}

// The output of the one embedding lookup (a Gather from a constant table) reading integer input `ids`.
ValueId embedding_lookup(const Model& model, size_t input) {
  const Graph& graph = model.graph();
  const ValueId ids = graph.inputs.at(input);
  std::vector<const Node*> lookups;
  for (const Node& node : graph.nodes()) {
    if (node.op->is_table_lookup() && node.inputs.size() == 2 && node.inputs[1] == ids &&
        node.inputs[0] >= 0 && graph.value(node.inputs[0]).is_constant())
      lookups.push_back(&node);
  }
  const std::string& name = model.input_names()[input];
  if (lookups.empty()) {
    throw Error("input '" + name + "' is " + model.input_types()[input] +
                " and feeds no embedding lookup (a Gather from a constant table): integer inputs are "
                "explained at their lookup, so choose a float input or token ids");
  }
  if (lookups.size() > 1) {
    std::vector<std::string> names;
    for (const Node* n : lookups) names.push_back("'" + n->name + "'");
    throw Error("input '" + name + "' feeds several embedding lookups (" + joined(names) +
                "): explaining it at one of them is ambiguous");
  }
  return lookups[0]->outputs.at(0);
}

// Declared shapes whose leading dimension is the explained input's are batched with it.
bool batched_like(const Shape& declared, const Shape& wrt_declared) {
  return !declared.empty() && !wrt_declared.empty() && declared[0] == wrt_declared[0];
}

Shape with_leading(Shape shape, int64_t leading) {
  if (!shape.empty()) shape[0] = leading;
  return shape;
}

InputBinding::Feed bind_fixed(const Model& model, size_t i, const FixedInput& given,
                              const Shape& wrt_declared) {
  const std::string& name = model.input_names()[i];
  const Shape& declared = model.input_shapes()[i];
  check_input_type(model, i, given.value);
  if (!batched_like(declared, wrt_declared)) {
    if (given.per_sample) {
      throw Error("input '" + name + "' (declared " + to_string(declared) +
                  ") is not batched like the explained "
                  "input: give it as one shared value");
    }
    check_input(given.value, declared, name);
    return InputBinding::Feed::whole;
  }
  if (given.per_sample) {
    check_input(given.value, with_leading(declared, -1), name);
    return InputBinding::Feed::per_sample;
  }
  if (given.value.rank() == 0 || given.value.dim(0) != 1) {
    throw Error("input '" + name + "': a shared value of a batched input is one row " +
                to_string(with_leading(declared, 1)) + ", not " + to_string(given.value.shape()) +
                " (give one row per sample as a per-sample value)");
  }
  check_input(given.value, with_leading(declared, 1), name);
  return InputBinding::Feed::shared_rows;
}

}  // namespace

std::shared_ptr<const InputBinding> bind_inputs(const Model& model, const ExplainSetup& setup) {
  auto b = std::make_shared<InputBinding>();
  const std::vector<std::string>& names = model.input_names();
  b->wrt = explained_input(model, setup);
  b->embedding = !model.input_is_float(b->wrt);
  b->explained = b->embedding ? embedding_lookup(model, b->wrt) : model.graph().inputs.at(b->wrt);
  b->embedding_dimensions = setup.embedding_dimensions;
  b->output = setup.output.empty() ? 0 : index_of(model.output_names(), setup.output, "output");
  for (const auto& [name, value] : setup.fixed) {
    if (index_of(names, name, "input") == b->wrt)
      throw Error("input '" + name + "' is the explained input and cannot also be given fixed");
  }
  const Shape& wrt_declared = model.input_shapes()[b->wrt];
  b->feeds.resize(names.size());
  b->fixed.resize(names.size());
  for (size_t i = 0; i < names.size(); ++i) {
    if (i == b->wrt) {
      b->feeds[i] = InputBinding::Feed::explained;
      continue;
    }
    const auto it = setup.fixed.find(names[i]);
    if (it == setup.fixed.end()) {
      throw Error("input '" + names[i] + "' is not given: explaining '" + names[b->wrt] +
                  "' needs a value for every other input (--input " + names[i] + "=FILE.npy|VALUE)");
    }
    b->feeds[i] = bind_fixed(model, i, it->second, wrt_declared);
    b->fixed[i] = it->second.value;
  }
  return b;
}

namespace {

BoundBatch bound_batch(const Model& model, const Tensor& input, std::shared_ptr<const InputBinding> binding,
                       const std::vector<int64_t>& samples) {
  BoundBatch batch{std::move(binding), {}, {}, {}};
  const InputBinding& b = *batch.binding;
  check_input(input, model.input_shapes()[b.wrt], model.input_names()[b.wrt]);
  check_input_type(model, b.wrt, input);
  const int64_t rows = input.rank() == 0 ? 0 : input.dim(0);
  std::vector<int64_t> sample_rows = samples;
  if (sample_rows.empty()) {
    for (int64_t r = 0; r < rows; ++r) sample_rows.push_back(r);
  }
  batch.samples = sample_rows;
  for (size_t i = 0; i < b.feeds.size(); ++i) {
    switch (b.feeds[i]) {
      case InputBinding::Feed::explained:
        batch.inputs.push_back(input);
        break;
      case InputBinding::Feed::whole:
        batch.inputs.push_back(b.fixed[i]);
        break;
      case InputBinding::Feed::shared_rows:
        batch.inputs.push_back(padded_batch(b.fixed[i], rows));  // its one row, repeated
        break;
      case InputBinding::Feed::per_sample:
        for (int64_t s : sample_rows) {
          if (s >= b.fixed[i].dim(0)) {
            throw Error("input '" + model.input_names()[i] + "' has " + std::to_string(b.fixed[i].dim(0)) +
                        " per-sample row(s); sample " + std::to_string(s) + " has none");
          }
        }
        batch.inputs.push_back(gathered_rows(b.fixed[i], sample_rows));
        break;
    }
  }
  return batch;
}

}  // namespace

size_t explained_input(const Model& model, const ExplainSetup& setup) {
  return setup.wrt.empty() ? default_wrt(model) : index_of(model.input_names(), setup.wrt, "input");
}

void add_fixed_input(ExplainSetup& setup, const Model& model, const std::string& text, int64_t samples) {
  const size_t eq = text.find('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == text.size())
    throw Error("input '" + text + "': expected NAME=FILE.npy or NAME=VALUE");
  const std::string name = text.substr(0, eq), value = text.substr(eq + 1);
  const Shape& declared = model.input_shapes()[index_of(model.input_names(), name, "input")];
  const bool batched = batched_like(declared, model.input_shapes()[explained_input(model, setup)]);
  if (value.ends_with(".npy")) {
    Tensor t = read_npy(value);
    const bool per_sample = batched && samples > 1 && t.rank() > 0 && t.dim(0) == samples;
    setup.fixed[name] = FixedInput{std::move(t), per_sample};
    return;
  }
  const std::optional<double> number = parse_double(value);
  if (!number) throw Error("input '" + text + "': '" + value + "' is neither a .npy file nor a number");
  const Shape shape = batched ? with_leading(declared, 1) : declared;
  if (std::any_of(shape.begin(), shape.end(), [](int64_t d) { return d < 0; }))
    throw Error("input '" + name + "' of shape " + to_string(declared) +
                " has dynamic dimensions: give it as a .npy file");
  setup.fixed[name] = FixedInput{Tensor(shape, static_cast<float>(*number)), false};
}

ForwardPass::ForwardPass(const Model& model, const Tensor& input, const std::vector<ValueId>& also_keep)
    : ForwardPass(model, input, ExplainSetup{}, {}, also_keep) {}

ForwardPass::ForwardPass(const Model& model, const Tensor& input, const ExplainSetup& setup,
                         const std::vector<int64_t>& samples, const std::vector<ValueId>& also_keep)
    : ForwardPass(model, input, bind_inputs(model, setup), samples, also_keep) {}

ForwardPass::ForwardPass(const Model& model, const Tensor& input, std::shared_ptr<const InputBinding> binding,
                         const std::vector<int64_t>& samples, const std::vector<ValueId>& also_keep)
    : ForwardPass(model, bound_batch(model, input, std::move(binding), samples), also_keep) {}

ForwardPass::ForwardPass(const Model& model, BoundBatch batch, const std::vector<ValueId>& also_keep)
    : model_(&model),
      binding_(std::move(batch.binding)),
      inputs_(std::move(batch.inputs)),
      samples_(std::move(batch.samples)),
      plan_(model.graph(), model.graph().outputs.at(binding_->output), binding_->explained) {
  std::vector<ValueId> keep = also_keep;
  keep.push_back(binding_->explained);
  output_ =
      Executor(model.graph()).run(inputs_, &trace_, plan_.trace_keep(keep), batch.given).at(binding_->output);
  input_ = trace_.values.at(static_cast<size_t>(binding_->explained));
}

BoundBatch ForwardPass::batch_at(const Tensor& explained, const std::vector<int64_t>& rows) const {
  if (explained.shape() != with_leading(input_.shape(), static_cast<int64_t>(rows.size()))) {
    throw Error("values of shape " + to_string(explained.shape()) + " for " + std::to_string(rows.size()) +
                " rows do not fit the explained tensor " + to_string(input_.shape()));
  }
  BoundBatch batch{binding_, {}, {}, {}};
  for (int64_t r : rows) batch.samples.push_back(samples_.at(static_cast<size_t>(r)));
  for (size_t i = 0; i < inputs_.size(); ++i) {
    const InputBinding::Feed feed = binding_->feeds[i];
    if (feed == InputBinding::Feed::explained && !binding_->embedding) {
      batch.inputs.push_back(explained);
    } else {
      batch.inputs.push_back(feed == InputBinding::Feed::whole ? inputs_[i]
                                                               : gathered_rows(inputs_[i], rows));
    }
  }
  if (binding_->embedding) batch.given[binding_->explained] = explained;
  return batch;
}

ForwardPass ForwardPass::at(const Tensor& explained, const std::vector<int64_t>& rows,
                            const std::vector<ValueId>& also_keep) const {
  return ForwardPass(*model_, batch_at(explained, rows), also_keep);
}

Tensor ForwardPass::output_at(const Tensor& explained, const std::vector<int64_t>& rows) const {
  BoundBatch batch = batch_at(explained, rows);
  return Executor(model_->graph()).run(batch.inputs, nullptr, {}, batch.given).at(binding_->output);
}

bool ForwardPass::explains_embedding() const {
  return binding_->embedding;
}

Tensor ForwardPass::reverse(const Tensor& seed,
                            const std::function<const BackwardMapping*(size_t)>& mapping_for) const {
  return reverse_pass(model_->graph(), plan_, trace_, seed, mapping_for);
}

Tensor ForwardPass::reported(const Tensor& explanation) const {
  if (!binding_->embedding || binding_->embedding_dimensions) return explanation;
  const Shape& ids = inputs_[binding_->wrt].shape();
  const Shape& shape = explanation.shape();
  if (shape.size() < ids.size() || !std::equal(ids.begin(), ids.end(), shape.begin()))
    throw Error("an explanation of shape " + to_string(shape) + " does not extend the token ids " +
                to_string(ids));
  const int64_t tokens = element_count(ids), per = tokens == 0 ? 0 : explanation.size() / tokens;
  Tensor summed = Tensor::uninitialized(ids);
  for (int64_t t = 0; t < tokens; ++t) {
    double sum = 0.0;
    for (int64_t k = 0; k < per; ++k) sum += explanation[t * per + k];
    summed[t] = static_cast<float>(sum);
  }
  return summed;
}

}  // namespace sieve
