// Rewrites that explanation rules need, each leaving the forward output unchanged up to float32
// rounding: BatchNormalization folded into the preceding Conv/Gemm, Identity/Dropout removed, zero Pad
// merged into the consuming Conv, and a final Softmax/LogSoftmax stripped so the logits are explained.

#include "graph/canonicalize.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <optional>

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

// Graph lookups for matching chains of nodes that exporters write for one operation.
class Chains {
 public:
  explicit Chains(const Graph& graph)
      : graph_(graph), producer_(graph.producers()), uses_(graph.use_counts()) {}
  // The node producing v when it has type `op_type` (and, with `single_use`, v has no other reader).
  const Node* producer(ValueId v, const char* op_type, bool single_use = true) const {
    if (v < 0) return nullptr;
    const int p = producer_[static_cast<size_t>(v)];
    if (p < 0 || (single_use && uses_[static_cast<size_t>(v)] != 1)) return nullptr;
    const Node& node = graph_.nodes()[static_cast<size_t>(p)];
    return node.spec.op_type == op_type ? &node : nullptr;
  }
  int uses(ValueId v) const { return uses_[static_cast<size_t>(v)]; }
  // The value of a one-element constant.
  std::optional<float> scalar(ValueId v) const {
    if (v < 0 || !graph_.value(v).is_constant() || graph_.value(v).constant.size() != 1) return std::nullopt;
    return graph_.value(v).constant[0];
  }
  // For a two-input node, the operand other than the one equal to `known` (either order).
  static ValueId other(const Node& node, ValueId known) {
    if (node.inputs.size() != 2) return -1;
    return node.inputs[0] == known ? node.inputs[1] : node.inputs[1] == known ? node.inputs[0] : -1;
  }
  // For a two-input node with a scalar constant operand equal to `value`, the other operand.
  ValueId operand_beside(const Node& node, float value) const {
    if (node.inputs.size() != 2) return -1;
    for (size_t i = 0; i < 2; ++i)
      if (scalar(node.inputs[i]) == value) return node.inputs[1 - i];
    return -1;
  }

 private:
  const Graph& graph_;
  std::vector<int> producer_, uses_;
};

// The reduced axes of a ReduceMean that keeps its dimensions, as negative axes counted from the end; empty
// when they are not a trailing run (−k, …, −1) or not known.
std::vector<int64_t> trailing_mean_axes(const Graph& graph, const Node& mean) {
  if (mean.spec.attributes.get_int("keepdims", 1) == 0) return {};
  std::vector<int64_t> axes = mean.spec.attributes.get_ints("axes");
  if (mean.inputs.size() > 1 && mean.inputs[1] >= 0) {
    if (!graph.value(mean.inputs[1]).is_constant()) return {};
    for (float v : graph.value(mean.inputs[1]).constant.values()) axes.push_back(std::llround(v));
  }
  const Value& x = graph.value(mean.inputs[0]);
  for (int64_t& a : axes) {
    if (a >= 0) {
      if (!x.shape_known) return {};
      a -= static_cast<int64_t>(x.shape.size());
    }
  }
  std::sort(axes.begin(), axes.end());
  for (size_t i = 0; i < axes.size(); ++i)
    if (axes[i] != -static_cast<int64_t>(axes.size()) + static_cast<int64_t>(i)) return {};
  return axes;
}

// A node replacing a matched chain: the op created from its spec, reading `inputs`, writing `output`.
Node fused_node(const std::string& name, const std::string& op_type, int64_t opset, Attributes attributes,
                std::vector<ValueId> inputs, ValueId output) {
  Node node;
  node.name = name;
  node.spec.op_type = op_type;
  node.spec.name = name;
  node.spec.opset = opset;
  node.spec.attributes = std::move(attributes);
  node.spec.num_inputs = inputs.size();
  node.spec.num_outputs = 1;
  for (ValueId v : inputs) node.spec.input_present.push_back(v >= 0);
  node.op = create_op(node.spec);
  node.inputs = std::move(inputs);
  node.outputs = {output};
  return node;
}

// (x − mean(x)) / sqrt(mean((x − mean(x))²) + ε) [· γ + β] over trailing axes → LayerNormalization.
std::optional<Node> match_layer_norm(Graph& graph, const Chains& c, const Node& div,
                                     std::vector<const Node*>& used) {
  if (div.spec.op_type != "Div" || div.inputs.size() != 2) return std::nullopt;
  const Node* sub = c.producer(div.inputs[0], "Sub", false);
  const Node* sqrt = c.producer(div.inputs[1], "Sqrt");
  if (sub == nullptr || sqrt == nullptr || c.uses(div.inputs[0]) != 2) return std::nullopt;
  const ValueId x = sub->inputs[0];
  const Node* mean = c.producer(sub->inputs[1], "ReduceMean");
  const Node* add_eps = c.producer(sqrt->inputs[0], "Add");
  if (mean == nullptr || mean->inputs[0] != x || add_eps == nullptr) return std::nullopt;
  const std::vector<int64_t> axes = trailing_mean_axes(graph, *mean);
  const Node* variance = nullptr;
  std::optional<float> epsilon;
  for (size_t i = 0; i < 2 && variance == nullptr; ++i) {
    variance = c.producer(add_eps->inputs[i], "ReduceMean");
    epsilon = c.scalar(add_eps->inputs[1 - i]);
  }
  if (axes.empty() || variance == nullptr || !epsilon || trailing_mean_axes(graph, *variance) != axes)
    return std::nullopt;
  const Node* square = c.producer(variance->inputs[0], "Pow");
  if (square == nullptr || square->inputs[0] != div.inputs[0] || c.scalar(square->inputs[1]) != 2.0f)
    return std::nullopt;
  used = {mean, sub, square, variance, add_eps, sqrt, &div};
  // An element-wise affine map after it, with constant parameters that broadcast to the normalized axes.
  auto only_reader = [&](ValueId v, const char* op_type) -> const Node* {
    if (c.uses(v) != 1) return nullptr;
    for (const Node& n : graph.nodes())
      if (std::find(n.inputs.begin(), n.inputs.end(), v) != n.inputs.end())
        return n.spec.op_type == op_type ? &n : nullptr;
    return nullptr;
  };
  auto constant_parameter = [&](const Node& n, ValueId v) -> ValueId {
    const ValueId p = Chains::other(n, v);
    const bool fits = p >= 0 && graph.value(p).is_constant() &&
                      graph.value(p).constant.rank() <= static_cast<int64_t>(axes.size());
    return fits ? p : -1;
  };
  ValueId out = div.outputs[0], scale = -1, bias = -1;
  std::string name = div.name;
  if (const Node* mul = only_reader(out, "Mul");
      mul != nullptr && (scale = constant_parameter(*mul, out)) >= 0) {
    used.push_back(mul);
    out = mul->outputs[0];
    name = mul->name;
    if (const Node* add = only_reader(out, "Add");
        add != nullptr && (bias = constant_parameter(*add, out)) >= 0) {
      used.push_back(add);
      out = add->outputs[0];
      name = add->name;
    }
  }
  if (scale < 0) scale = add_constant(graph, name + "/scale", Tensor(Shape{1}, 1.0f));
  Attributes attributes;
  attributes.set("axis", axes.front());
  attributes.set("epsilon", *epsilon);
  return fused_node(name, "LayerNormalization", div.spec.opset, attributes, {x, scale, bias}, out);
}

// 0.5 · x · (1 + erf(x / √2)) → Gelu.
std::optional<Node> match_gelu(const Chains& c, const Node& half, std::vector<const Node*>& used) {
  if (half.spec.op_type != "Mul") return std::nullopt;
  const Node* product = c.producer(c.operand_beside(half, 0.5f), "Mul");
  if (product == nullptr) return std::nullopt;
  for (size_t i = 0; i < 2; ++i) {
    const ValueId x = product->inputs[i];
    const Node* one_plus = c.producer(product->inputs[1 - i], "Add");
    const Node* erf = one_plus ? c.producer(c.operand_beside(*one_plus, 1.0f), "Erf") : nullptr;
    const Node* div = erf ? c.producer(erf->inputs[0], "Div") : nullptr;
    if (div == nullptr || div->inputs[0] != x) continue;
    const std::optional<float> root2 = c.scalar(div->inputs[1]);
    if (!root2 || std::abs(*root2 - std::numbers::sqrt2_v<float>) > 1e-6f) continue;
    used = {div, erf, one_plus, product, &half};
    return fused_node(half.name, "Gelu", half.spec.opset, {}, {x}, half.outputs[0]);
  }
  return std::nullopt;
}

// x · HardSigmoid(x) with α = 1/6, β = ½ → HardSwish; x · Sigmoid(x) → SiLU.
std::optional<Node> match_self_gate(const Chains& c, const Node& mul, const char* gate_type,
                                    const char* fused, std::vector<const Node*>& used) {
  if (mul.spec.op_type != "Mul" || mul.inputs.size() != 2) return std::nullopt;
  const bool hard = std::string(gate_type) == "HardSigmoid";
  for (size_t i = 0; i < 2; ++i) {
    const Node* gate = c.producer(mul.inputs[i], gate_type);
    if (gate == nullptr || gate->inputs[0] != mul.inputs[1 - i] ||
        (hard && (gate->spec.attributes.get_float("alpha", 0.2f) != 1.0f / 6.0f ||
                  gate->spec.attributes.get_float("beta", 0.5f) != 0.5f)))
      continue;
    used = {gate, &mul};
    return fused_node(mul.name, fused, mul.spec.opset, {}, {gate->inputs[0]}, mul.outputs[0]);
  }
  return std::nullopt;
}

// LayerNorm, GELU, HardSwish and SiLU as exporters spell them at opsets without the operator become the one
// operator, so relevance treatments and reports see what the network computes.
void fuse_spelled_out(Graph& graph, ModelReport& report) {
  for (const char* kind : {"LayerNormalization", "Gelu", "HardSwish", "SiLU"}) {
    const Chains chains(graph);
    std::vector<bool> drop(graph.nodes().size(), false);
    std::vector<Node> added;
    int count = 0;
    for (const Node& node : graph.nodes()) {
      std::vector<const Node*> used;
      const std::string k = kind;
      std::optional<Node> fused = k == "LayerNormalization" ? match_layer_norm(graph, chains, node, used)
                                  : k == "Gelu"             ? match_gelu(chains, node, used)
                                  : k == "HardSwish"
                                      ? match_self_gate(chains, node, "HardSigmoid", kind, used)
                                      : match_self_gate(chains, node, "Sigmoid", kind, used);
      if (!fused) continue;
      const bool free = std::none_of(used.begin(), used.end(), [&](const Node* u) {
        return drop[static_cast<size_t>(u - graph.nodes().data())];
      });
      if (!free) continue;
      for (const Node* u : used) drop[static_cast<size_t>(u - graph.nodes().data())] = true;
      added.push_back(std::move(*fused));
      ++count;
    }
    if (count == 0) continue;
    std::vector<Node> kept;
    for (size_t n = 0; n < graph.nodes().size(); ++n)
      if (!drop[n]) kept.push_back(std::move(graph.nodes()[n]));
    for (Node& n : added) kept.push_back(std::move(n));
    graph.nodes() = std::move(kept);
    graph.sort_topologically();
    report.canonicalizations.push_back("fused " + std::to_string(count) + " spelled-out " + kind +
                                       " into one node each");
  }
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
  if (options.fuse_spelled_out) fuse_spelled_out(graph, report);
  if (options.strip_final_softmax) strip_final_softmax(graph, report);
  graph.prune();
  report.op_counts.clear();
  for (const Node& node : graph.nodes()) ++report.op_counts[node.spec.op_type];
}

}  // namespace sieve
