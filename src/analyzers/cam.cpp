// Class activation maps at a chosen layer: Grad-CAM (Selvaraju et al.) weights the layer's channels by
// the spatial mean of the target's gradient, sums them and keeps the positive part; CAM (Zhou et al.)
// weights them by the target's weights behind a global average pooling; Guided Grad-CAM multiplies the
// upsampled Grad-CAM map with Guided Backprop.

#include "analyzers/cam.hpp"

#include <algorithm>
#include <cmath>

#include "analyzers/gradient_family.hpp"
#include "sieve/error.hpp"
#include "sieve/parse.hpp"

namespace sieve::analyzers {
namespace {

// The value a layer name stands for: a node's first output, or a value of that name. Empty: the last
// convolution's output, or the output of the element-wise activation that alone reads it.
ValueId resolve_layer(const Graph& graph, const std::string& layer, const std::string& method) {
  if (!layer.empty()) {
    for (const Node& node : graph.nodes()) {
      if (node.name == layer) return node.outputs.at(0);
    }
    for (size_t v = 0; v < graph.values().size(); ++v) {
      if (graph.values()[v].name == layer && !graph.values()[v].is_constant()) return static_cast<ValueId>(v);
    }
    std::vector<std::string> names;
    for (const Node& node : graph.nodes()) names.push_back(node.name);
    const std::string near = closest_match(layer, names);
    throw Error(method + ": unknown layer '" + layer + "': no node or value of the model has that name" +
                (near.empty() ? "" : " (did you mean '" + near + "'?)"));
  }
  const Node* last_conv = nullptr;
  for (const Node& node : graph.nodes()) {
    const LinearOp* linear = node.op->as_linear();
    if (linear != nullptr && linear->form() == LinearOp::Form::convolution) last_conv = &node;
  }
  if (last_conv == nullptr)
    throw Error(method + ": the model has no convolution; name the layer to explain with layer=NODE");
  const ValueId conv_out = last_conv->outputs.at(0);
  const Node* reader = nullptr;
  int readers = 0;
  for (const Node& node : graph.nodes()) {
    if (std::find(node.inputs.begin(), node.inputs.end(), conv_out) == node.inputs.end()) continue;
    reader = &node;
    ++readers;
  }
  if (readers == 1 && graph.role(*reader) == OpRole::monotone_activation) return reader->outputs.at(0);
  return conv_out;
}

// A linear average pooling whose output has one position per channel (as far as its shape is known).
bool is_global_average_pool(const Graph& graph, const Node& node) {
  const LinearOp* linear = node.op->as_linear();
  if (linear == nullptr || linear->form() != LinearOp::Form::average_pooling) return false;
  const Value& out = graph.value(node.outputs.at(0));
  if (!out.shape_known || out.shape.size() < 3) return false;
  return std::all_of(out.shape.begin() + 2, out.shape.end(), [](int64_t d) { return d == 1; });
}

// CAM's layer: the one value read by a global average pooling whose output reaches the model's output
// through linear, proportional and data-movement nodes only (the architecture CAM is defined for).
// Empty `layer`: the input of the last global average pooling.
ValueId cam_layer(const Graph& graph, const std::string& layer) {
  ValueId v = -1;
  if (layer.empty()) {
    for (const Node& node : graph.nodes()) {
      if (is_global_average_pool(graph, node)) v = node.inputs.at(0);
    }
    if (v < 0)
      throw Error("cam: the model has no global average pooling (CAM needs one before its last layers)");
  } else {
    v = resolve_layer(graph, layer, "cam");
  }
  const Node* pool = nullptr;
  for (const Node& node : graph.nodes()) {
    if (std::find(node.inputs.begin(), node.inputs.end(), v) == node.inputs.end()) continue;
    if (pool != nullptr || !is_global_average_pool(graph, node)) {
      throw Error("cam: layer '" + graph.value(v).name + "' is read by node '" + node.name + "' (" +
                  std::string(node.op->type()) +
                  "); CAM needs it read by one global average pooling only (grad_cam works at any layer)");
    }
    pool = &node;
  }
  if (pool == nullptr) throw Error("cam: layer '" + graph.value(v).name + "' is not read by any node");
  std::vector<bool> downstream(graph.values().size(), false);
  downstream[static_cast<size_t>(pool->outputs.at(0))] = true;
  for (const Node& node : graph.nodes()) {
    if (std::none_of(node.inputs.begin(), node.inputs.end(),
                     [&](ValueId in) { return in >= 0 && downstream[static_cast<size_t>(in)]; }))
      continue;
    const OpRole role = graph.role(node);
    if (role != OpRole::linear && role != OpRole::proportional && role != OpRole::data_movement) {
      throw Error("cam: node '" + node.name + "' (" + std::string(node.op->type()) +
                  ") after the global average pooling is not linear; CAM's weights exist only for a "
                  "linear head (grad_cam works on any)");
    }
    for (ValueId out : node.outputs) {
      if (out >= 0) downstream[static_cast<size_t>(out)] = true;
    }
  }
  return v;
}

// Bilinear resampling of maps [N, 1, h(, w)] to [N, 1, H(, W)] with half-pixel centres (PyTorch's
// align_corners=False), edge values held.
Tensor bilinear(const Tensor& map, const Shape& size) {
  const int64_t n = map.dim(0);
  const int64_t h = map.dim(2), w = map.rank() > 3 ? map.dim(3) : 1;
  const int64_t to_h = size[0], to_w = size.size() > 1 ? size[1] : 1;
  Shape shape{n, 1, to_h};
  if (size.size() > 1) shape.push_back(to_w);
  Tensor out = Tensor::uninitialized(shape);
  const auto source = [](int64_t dst, int64_t from, int64_t to, int64_t& lo, int64_t& hi, float& frac) {
    const double s = std::max(
        0.0, (static_cast<double>(dst) + 0.5) * static_cast<double>(from) / static_cast<double>(to) - 0.5);
    lo = std::min<int64_t>(static_cast<int64_t>(s), from - 1);
    hi = std::min<int64_t>(lo + 1, from - 1);
    frac = static_cast<float>(s - static_cast<double>(lo));
  };
  for (int64_t i = 0; i < n; ++i) {
    const float* m = map.data() + i * h * w;
    for (int64_t y = 0; y < to_h; ++y) {
      int64_t y0 = 0, y1 = 0;
      float fy = 0.0f;
      source(y, h, to_h, y0, y1, fy);
      for (int64_t x = 0; x < to_w; ++x) {
        int64_t x0 = 0, x1 = 0;
        float fx = 0.0f;
        source(x, w, to_w, x0, x1, fx);
        out[(i * to_h + y) * to_w + x] = (1 - fy) * ((1 - fx) * m[y0 * w + x0] + fx * m[y0 * w + x1]) +
                                         fy * ((1 - fx) * m[y1 * w + x0] + fx * m[y1 * w + x1]);
      }
    }
  }
  return out;
}

enum class MapKind { grad_cam, cam, guided_grad_cam };

class ActivationMap : public Analyzer {
 public:
  ActivationMap(Params& p, MapKind kind) : kind_(kind) {
    layer_ = p.text("layer", "");
    if (kind != MapKind::guided_grad_cam) upsample_ = p.integer("upsample", 1, 0, 1) == 1;
    if (kind == MapKind::guided_grad_cam) {
      const MethodSpec plain{"guided_backprop", {}};
      Params defaults(plain);
      guided_backprop_ = make_guided_backprop(defaults);
    }
  }

  void prepare(const Model& model) override { layer_value(model.graph()); }

  std::vector<ValueId> trace_values(const Model& model) const override {
    return {layer_value(model.graph())};
  }

  Tensor explain(const ForwardPass& pass, const Target& target) const override {
    const Graph& graph = pass.model().graph();
    const ValueId layer = layer_value(graph);
    const std::string& layer_name = graph.value(layer).name;
    const std::vector<int> producers = graph.producers();
    const int producer = producers.at(static_cast<size_t>(layer));
    if (producer < 0)
      throw Error(name() + ": layer '" + layer_name + "' is not computed by a node of the model");
    // The reverse pass stops at the layer's producer, having recorded the gradient arriving there.
    Tensor gradient;
    const BackwardMapping record = [&](const Node& node, const VjpArgs& a) -> std::vector<Tensor> {
      for (size_t o = 0; o < node.outputs.size(); ++o) {
        if (node.outputs[o] == layer) gradient = a.grad_outputs[o];
      }
      return {};
    };
    pass.reverse(target.gradient_seed(pass.output()), [&](size_t n) -> const BackwardMapping* {
      return static_cast<int>(n) == producer ? &record : nullptr;
    });
    const Tensor& activation = pass.value(layer);
    if (gradient.empty() || activation.empty()) {
      throw Error(name() + ": layer '" + layer_name +
                  "' does not lie between the explained input and output");
    }
    if (activation.rank() < 3) {
      throw Error(name() + ": layer '" + layer_name + "' of shape " + to_string(activation.shape()) +
                  " has no spatial axes to map");
    }
    // CAM's weight of a channel is the target's weight behind the average pooling: the gradient summed
    // over the channel's positions (Grad-CAM's mean times their count).
    const Tensor map = weighted_channels(activation, gradient, kind_ == MapKind::cam);
    const bool guided = kind_ == MapKind::guided_grad_cam;
    if (!guided && !upsample_) return map;
    const Tensor& x = pass.input();
    if (x.rank() != map.rank() || x.rank() > 4) {
      throw Error(name() + ": cannot upsample the map " + to_string(map.shape()) + " of layer '" +
                  layer_name + "' to the input " + to_string(x.shape()) +
                  (guided ? "" : " (upsample=0 gives the map itself)"));
    }
    const Tensor upsampled = bilinear(map, Shape(x.shape().begin() + 2, x.shape().end()));
    const Tensor guide = guided ? guided_backprop_->explain(pass, target) : Tensor();
    // One map per sample, the same for every channel of the input.
    Tensor result = Tensor::uninitialized(x.shape());
    const int64_t channels = x.dim(1), plane = upsampled.size() / x.dim(0);
    for (int64_t i = 0; i < x.dim(0); ++i) {
      for (int64_t c = 0; c < channels; ++c) {
        for (int64_t j = 0; j < plane; ++j) {
          const int64_t at = (i * channels + c) * plane + j;
          result[at] = upsampled[i * plane + j] * (guided ? guide[at] : 1.0f);
          // Both factors are finite, so only their product can leave float32's range.
          if (!std::isfinite(result[at]))
            throw Error(name() + ": guided backprop × Grad-CAM of sample " + std::to_string(i) +
                        " exceeds float32's range (|value| > 3.4e38; guided backprop " +
                        format_number(guide[at]) + ", map " + format_number(upsampled[i * plane + j]) +
                        "): the model's activations and gradients are too large for this product");
        }
      }
    }
    return result;
  }

 private:
  std::string name() const {
    return kind_ == MapKind::cam ? "cam" : kind_ == MapKind::guided_grad_cam ? "guided_grad_cam" : "grad_cam";
  }

  ValueId layer_value(const Graph& graph) const {
    return kind_ == MapKind::cam ? cam_layer(graph, layer_) : resolve_layer(graph, layer_, name());
  }

  // relu(Σ_k α_k A_k), α_k the mean (or with `sum` the sum) of the gradient over channel k's positions:
  // [N, 1, spatial...].
  static Tensor weighted_channels(const Tensor& activation, const Tensor& gradient, bool sum_weights) {
    const int64_t n = activation.dim(0), channels = activation.dim(1);
    const int64_t plane = activation.size() / (n * channels);
    Shape shape = activation.shape();
    shape[1] = 1;
    Tensor map = Tensor::uninitialized(shape);
    for (int64_t i = 0; i < n; ++i) {
      std::vector<double> sum(static_cast<size_t>(plane), 0.0);
      for (int64_t k = 0; k < channels; ++k) {
        const int64_t base = (i * channels + k) * plane;
        double alpha = 0.0;
        for (int64_t j = 0; j < plane; ++j) alpha += gradient[base + j];
        if (!sum_weights) alpha /= static_cast<double>(plane);
        for (int64_t j = 0; j < plane; ++j) sum[static_cast<size_t>(j)] += alpha * activation[base + j];
      }
      for (int64_t j = 0; j < plane; ++j)
        map[i * plane + j] = static_cast<float>(std::max(0.0, sum[static_cast<size_t>(j)]));
    }
    return map;
  }

  std::string layer_;
  MapKind kind_;
  bool upsample_ = true;
  std::unique_ptr<Analyzer> guided_backprop_;
};

}  // namespace

std::unique_ptr<Analyzer> make_grad_cam(Params& p) {
  return std::make_unique<ActivationMap>(p, MapKind::grad_cam);
}
std::unique_ptr<Analyzer> make_cam(Params& p) {
  return std::make_unique<ActivationMap>(p, MapKind::cam);
}
std::unique_ptr<Analyzer> make_guided_grad_cam(Params& p) {
  return std::make_unique<ActivationMap>(p, MapKind::guided_grad_cam);
}

}  // namespace sieve::analyzers
