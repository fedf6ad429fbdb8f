// Rewrites that explanation rules need, each leaving the forward output unchanged up to float32
// rounding: BatchNormalization folded into the preceding Conv/Gemm, Identity/Dropout removed, zero Pad
// merged into the consuming Conv, and a final Softmax/LogSoftmax stripped so the logits are explained.

#include "graph/canonicalize.hpp"

#include <algorithm>
#include <cmath>

#include "sieve/error.hpp"

namespace sieve {
namespace {

// Makes every reader of `from` (nodes and graph outputs) read `to` instead.
void replace_uses(Graph& graph, ValueId from, ValueId to) {
  for (Node& node : graph.nodes()) {
    for (ValueId& v : node.inputs)
      if (v == from) v = to;
  }
  for (ValueId& v : graph.outputs)
    if (v == from) v = to;
}

bool is_constant_input(const Graph& graph, const Node& node, size_t i) {
  return i < node.inputs.size() && node.inputs[i] >= 0 && graph.value(node.inputs[i]).is_constant();
}

ValueId add_constant(Graph& graph, const std::string& name, Tensor t) {
  Value v{name, t.shape(), true, std::move(t)};
  return graph.add_value(std::move(v));
}

void remove_identities(Graph& graph, ModelReport& report) {
  int removed = 0;
  std::vector<Node> kept;
  for (Node& node : graph.nodes()) {
    const bool pass_through = node.op->is_identity() && !node.inputs.empty() && node.inputs[0] >= 0 &&
                              (node.outputs.size() < 2 || node.outputs[1] < 0);
    if (pass_through) {
      replace_uses(graph, node.outputs[0], node.inputs[0]);
      ++removed;
    } else {
      kept.push_back(std::move(node));
    }
  }
  graph.nodes() = std::move(kept);
  if (removed > 0)
    report.canonicalizations.push_back("removed " + std::to_string(removed) + " Identity/Dropout node(s)");
}

// Folds BN(y) = s·y + t (s = γ/√(σ²+ε), t = β − μ·s) into the Conv or Gemm producing y.
void fold_batchnorm(Graph& graph, ModelReport& report) {
  const std::vector<int> producer = graph.producers();
  const std::vector<int> uses = graph.use_counts();
  std::vector<bool> drop(graph.nodes().size(), false);
  for (size_t n = 0; n < graph.nodes().size(); ++n) {
    Node& bn = graph.nodes()[n];
    const LinearOp* affine = bn.op->as_linear();
    if (affine == nullptr || affine->form() != LinearOp::Form::channel_affine || bn.inputs.size() != 5 ||
        bn.inputs[0] < 0)
      continue;
    bool params_constant = true;
    for (size_t i = 1; i < 5; ++i) params_constant = params_constant && is_constant_input(graph, bn, i);
    const int p = producer[static_cast<size_t>(bn.inputs[0])];
    if (!params_constant || p < 0 || uses[static_cast<size_t>(bn.inputs[0])] != 1) continue;
    Node& prev = graph.nodes()[static_cast<size_t>(p)];
    const std::string& pt = prev.spec.op_type;
    if ((pt != "Conv" && pt != "Gemm") || !is_constant_input(graph, prev, 1) ||
        (prev.inputs.size() > 2 && prev.inputs[2] >= 0 && !is_constant_input(graph, prev, 2))) {
      continue;
    }
    std::vector<Tensor> bn_inputs;
    for (ValueId v : bn.inputs) bn_inputs.push_back(graph.value(v).constant);
    const Tensor scale = affine->weight(bn_inputs), shift = affine->bias(bn_inputs);
    const Tensor& w = graph.value(prev.inputs[1]).constant;
    const Tensor old_bias =
        prev.inputs.size() > 2 && prev.inputs[2] >= 0 ? graph.value(prev.inputs[2]).constant : Tensor();
    const int64_t channels = scale.size();

    Tensor new_w = w.clone(), new_b(Shape{channels});
    if (pt == "Conv") {
      if (w.dim(0) != channels) continue;
      const int64_t per = w.size() / channels;
      for (int64_t o = 0; o < channels; ++o) {
        for (int64_t k = 0; k < per; ++k) new_w[o * per + k] *= scale[o];
      }
    } else {
      const float alpha = prev.spec.attributes.get_float("alpha", 1.0f);
      const float beta = prev.spec.attributes.get_float("beta", 1.0f);
      const bool trans_b = prev.spec.attributes.get_int("transB", 0) != 0;
      if (w.rank() != 2 || (trans_b ? w.dim(0) : w.dim(1)) != channels || beta == 0.0f || alpha == 0.0f)
        continue;
      if (!old_bias.empty() && old_bias.size() != channels && old_bias.size() != 1) continue;
      const int64_t rows = w.dim(0), cols = w.dim(1);
      for (int64_t r = 0; r < rows; ++r) {
        for (int64_t c = 0; c < cols; ++c) new_w[r * cols + c] *= scale[trans_b ? r : c];
      }
      // Gemm adds beta·C, so the folded shift is divided by beta.
      for (int64_t o = 0; o < channels; ++o) {
        const float c = old_bias.empty() ? 0.0f : old_bias[old_bias.size() == 1 ? 0 : o];
        new_b[o] = c * scale[o] + shift[o] / beta;
      }
    }
    if (pt == "Conv") {
      for (int64_t o = 0; o < channels; ++o)
        new_b[o] = (old_bias.empty() ? 0.0f : old_bias[o]) * scale[o] + shift[o];
    }
    prev.inputs[1] = add_constant(graph, graph.value(prev.inputs[1]).name + "/bn_folded", std::move(new_w));
    const ValueId b = add_constant(graph, prev.name + "/bias_bn_folded", std::move(new_b));
    if (prev.inputs.size() < 3) prev.inputs.resize(3, -1);
    prev.inputs[2] = b;
    prev.spec.num_inputs = 3;
    prev.spec.input_present.resize(3, true);
    prev.spec.input_present[2] = true;
    replace_uses(graph, bn.outputs[0], prev.outputs[0]);
    drop[n] = true;
    report.canonicalizations.push_back("folded BatchNormalization '" + bn.name + "' into " + pt + " '" +
                                       prev.name + "'");
  }
  std::vector<Node> kept;
  for (size_t n = 0; n < graph.nodes().size(); ++n) {
    if (!drop[n]) kept.push_back(std::move(graph.nodes()[n]));
  }
  graph.nodes() = std::move(kept);
}

// A constant-mode Pad with value 0 that pads only spatial axes, feeding a Conv with explicit pads, is
// the Conv's own zero padding: add it to the Conv's pads.
void fold_zero_pads(Graph& graph, ModelReport& report) {
  const std::vector<int> uses = graph.use_counts();
  std::vector<bool> drop(graph.nodes().size(), false);
  auto& nodes = graph.nodes();
  for (size_t n = 0; n < nodes.size(); ++n) {
    Node& pad = nodes[n];
    if (pad.spec.op_type != "Pad" || pad.spec.attributes.get_string("mode", "constant") != "constant")
      continue;
    std::vector<int64_t> pads;
    float value = pad.spec.attributes.get_float("value", 0.0f);
    if (pad.spec.opset >= 11) {
      if (!is_constant_input(graph, pad, 1) || (pad.inputs.size() > 3 && pad.inputs[3] >= 0)) continue;
      for (float v : graph.value(pad.inputs[1]).constant.values())
        pads.push_back(static_cast<int64_t>(std::llround(v)));
      if (pad.inputs.size() > 2 && pad.inputs[2] >= 0) {
        if (!is_constant_input(graph, pad, 2)) continue;
        value = graph.value(pad.inputs[2]).constant[0];
      }
    } else {
      pads = pad.spec.attributes.get_ints("pads");
    }
    if (value != 0.0f || pads.empty() || pads.size() % 2 != 0) continue;
    const bool all_zero = std::all_of(pads.begin(), pads.end(), [](int64_t p) { return p == 0; });
    if (all_zero) {
      replace_uses(graph, pad.outputs[0], pad.inputs[0]);
      drop[n] = true;
      report.canonicalizations.push_back("removed all-zero Pad '" + pad.name + "'");
      continue;
    }
    const size_t rank = pads.size() / 2;
    if (rank < 3 || pads[0] != 0 || pads[1] != 0 || pads[rank] != 0 || pads[rank + 1] != 0 ||
        std::any_of(pads.begin(), pads.end(), [](int64_t p) { return p < 0; }) ||
        uses[static_cast<size_t>(pad.outputs[0])] != 1) {
      continue;
    }
    for (Node& conv : nodes) {
      if (conv.spec.op_type != "Conv" || conv.inputs.empty() || conv.inputs[0] != pad.outputs[0] ||
          conv.spec.attributes.get_string("auto_pad", "NOTSET") != "NOTSET") {
        continue;
      }
      const size_t spatial = rank - 2;
      std::vector<int64_t> conv_pads =
          conv.spec.attributes.get_ints("pads", std::vector<int64_t>(2 * spatial, 0));
      if (conv_pads.size() != 2 * spatial) break;
      for (size_t i = 0; i < spatial; ++i) {
        conv_pads[i] += pads[2 + i];
        conv_pads[spatial + i] += pads[rank + 2 + i];
      }
      conv.spec.attributes.set("pads", conv_pads);
      conv.op = create_op(conv.spec);
      conv.inputs[0] = pad.inputs[0];
      drop[n] = true;
      report.canonicalizations.push_back("merged zero Pad '" + pad.name + "' into Conv '" + conv.name + "'");
      break;
    }
  }
  std::vector<Node> kept;
  for (size_t n = 0; n < nodes.size(); ++n) {
    if (!drop[n]) kept.push_back(std::move(nodes[n]));
  }
  nodes = std::move(kept);
}

// A graph output computed by Softmax/LogSoftmax over the class axis is replaced by the softmax input.
void strip_final_softmax(Graph& graph, ModelReport& report) {
  const std::vector<int> producer = graph.producers();
  const std::vector<int> uses = graph.use_counts();
  for (ValueId& out : graph.outputs) {
    const int p = producer[static_cast<size_t>(out)];
    if (p < 0) continue;
    const Node& node = graph.nodes()[static_cast<size_t>(p)];
    if (graph.role(node) != OpRole::softmax) continue;
    if (uses[static_cast<size_t>(out)] != 1) continue;  // someone else reads the probabilities
    report.stripped_output_op = node.spec.op_type;
    report.canonicalizations.push_back("stripped final " + node.spec.op_type + " '" + node.name +
                                       "': the output is the logits");
    out = node.inputs[0];
  }
  graph.prune();
}

}  // namespace

void canonicalize(Graph& graph, const CanonicalizeOptions& options, ModelReport& report) {
  if (options.remove_identity) remove_identities(graph, report);
  if (options.fold_batchnorm) fold_batchnorm(graph, report);
  if (options.fold_zero_pad) fold_zero_pads(graph, report);
  if (options.strip_final_softmax) strip_final_softmax(graph, report);
  graph.prune();
  report.op_counts.clear();
  for (const Node& node : graph.nodes()) ++report.op_counts[node.spec.op_type];
}

}  // namespace sieve
