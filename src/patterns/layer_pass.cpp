#include "patterns/layer_pass.hpp"

#include "sieve/batch.hpp"
#include "sieve/error.hpp"
#include "sieve/patterns.hpp"

namespace sieve::patterns {
namespace {

// y = z − b along the neuron axis, when the bias is one value per neuron; otherwise recomputed.
Tensor output_without_bias(const LinearOp& op, const Tensor& x, const Tensor& z, const Tensor& w,
                           const Tensor& b, int64_t axis) {
  if (b.empty()) return z;
  if (b.size() != z.dim(axis)) return op.apply(x, w, Tensor());
  Tensor y = Tensor::uninitialized(z.shape());
  const int64_t c = z.dim(axis);
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < axis; ++d) outer *= z.dim(d);
  for (int64_t d = axis + 1; d < z.rank(); ++d) inner *= z.dim(d);
#pragma omp parallel for collapse(2) if (z.size() > 65536)
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t j = 0; j < c; ++j) {
      const int64_t base = (o * c + j) * inner;
      for (int64_t k = 0; k < inner; ++k) y[base + k] = z[base + k] - b[j];
    }
  }
  return y;
}

}  // namespace

std::vector<Tensor> constant_inputs(const Graph& graph, const Node& node, const Tensor& x) {
  std::vector<Tensor> inputs{x};
  for (size_t i = 1; i < node.inputs.size(); ++i)
    inputs.push_back(node.inputs[i] >= 0 ? graph.value(node.inputs[i]).constant : Tensor());
  return inputs;
}

std::vector<LayerPass> run_pattern_layers(const Model& model, const Tensor& batch, const std::string& what) {
  const Graph& graph = model.graph();
  if (model.input_shapes().size() != 1) throw Error(what + " needs a model with exactly one input");
  // A model with a fixed batch size runs a short batch padded, and the padding's rows are dropped.
  const int64_t rows = batch.rank() > 0 ? batch.dim(0) : 0;
  const Tensor input = padded_batch(batch, model.rows_per_pass(rows));
  check_input(input, model.input_shapes()[0], model.input_names()[0]);
  const std::vector<size_t> layers = pattern_layers(model);
  std::vector<bool> keep(graph.values().size(), false);
  for (size_t n : layers) {
    keep[static_cast<size_t>(graph.nodes()[n].inputs[0])] = true;
    keep[static_cast<size_t>(graph.nodes()[n].outputs[0])] = true;
  }
  Trace trace;
  Executor(graph).run({input}, &trace, keep);
  std::vector<LayerPass> passes;
  for (size_t n : layers) {
    LayerPass p;
    p.node = &graph.nodes()[n];
    p.op = p.node->op->as_linear();
    p.x = trace.values[static_cast<size_t>(p.node->inputs[0])];
    p.z = trace.values[static_cast<size_t>(p.node->outputs[0])];
    if (input.dim(0) != rows) {
      if (p.node->spec.attributes.get_int("transA", 0) != 0)
        throw Error(p.node->spec.where() + ": " + what + " cannot pad a batch for a transposed input");
      p.x = leading_rows(p.x, rows);
      p.z = leading_rows(p.z, rows);
    }
    const std::vector<Tensor> inputs = constant_inputs(graph, *p.node, p.x);
    p.w = p.op->weight(inputs);
    p.b = p.op->bias(inputs);
    p.axis = p.op->output_neuron_axis(p.z.rank());
    p.y = output_without_bias(*p.op, p.x, p.z, p.w, p.b, p.axis);
    passes.push_back(std::move(p));
  }
  return passes;
}

void for_each_batch(const Model& model, InputStream& data, int64_t batch,
                    const std::function<void(const Tensor&)>& accumulate,
                    const std::function<void(int64_t, int64_t)>& progress, const std::string& what) {
  const int64_t rows = model.rows_per_pass(batch);
  Tensor x;
  while (data.next(rows, x)) {
    accumulate(x);
    if (progress) progress(data.samples_read(), data.size_hint());
  }
  if (data.samples_read() == 0) throw Error("no data for " + what);
}

}  // namespace sieve::patterns
