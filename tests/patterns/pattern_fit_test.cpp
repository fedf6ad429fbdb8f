// Pattern fitting (METHODS.md §3.2): the statistics against a naive reference that extracts every
// patch in double, their invariance to batching, order and splitting, the estimators (wᵀa = 1, zero
// patterns for neurons that never fire, the paper's linear toy, the numpy references of the shared mlp)
// and the pattern files.

#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <numeric>
#include <random>
#include <sstream>
#include <tuple>

#include "sieve/error.hpp"
#include "sieve/io/npy.hpp"
#include "sieve/io/safetensors.hpp"
#include "sieve/io/stream.hpp"
#include "sieve/patterns.hpp"
#include "support/regime_flips.hpp"
#include "support/rounding.hpp"
#include "support/test_files.hpp"

namespace fs = std::filesystem;

namespace sieve {
namespace {

const std::string kModels = std::string(SIEVE_TEST_DATA) + "/shared/models/";
const std::string kRefs = std::string(SIEVE_TEST_DATA) + "/shared/refs/mlp/";
const std::string kToy = std::string(SIEVE_TEST_DATA) + "/../../examples/linear_toy/";

// Rows [begin, begin + count) of a batch, as their own tensor.
Tensor rows(const Tensor& t, int64_t begin, int64_t count) {
  const int64_t per = t.size() / t.dim(0);
  Shape shape = t.shape();
  shape[0] = count;
  return Tensor(shape, std::span<const float>(t.data() + begin * per, static_cast<size_t>(count * per)));
}

// The library's accumulation, `batch` rows at a time.
PatternStatistics fit(const Model& model, const Tensor& data, int64_t batch) {
  PatternStatistics stats(model);
  for (int64_t i = 0; i < data.dim(0); i += batch)
    stats.accumulate(model, rows(data, i, std::min(batch, data.dim(0) - i)));
  return stats;
}

// The streaming fit of .npy files, as the CLI runs it.
PatternStatistics fit_files(const Model& model, const std::vector<std::string>& paths, int64_t batch) {
  InputStream data(paths, Preprocessing{}, model.input_shapes().at(0));
  return fit_pattern_statistics(model, data, batch);
}

// The constant weight of every pattern layer, in order.
std::vector<Tensor> layer_weights(const Model& model) {
  std::vector<Tensor> weights;
  for (size_t n : pattern_layers(model))
    weights.push_back(model.graph().value(model.graph().nodes()[n].inputs[1]).constant);
  return weights;
}

// Element k of neuron j in a weight-shaped array (output neurons on axis 0, or 1 of a matrix).
size_t at(const LayerStatistics& s, int64_t j, int64_t k) {
  const int64_t fan_in = element_count(s.weight_shape) / s.neurons;
  return static_cast<size_t>(s.output_axis == 0 ? j * fan_in + k : k * s.neurons + j);
}

const std::vector<std::pair<const char*, std::vector<double> LayerStatistics::*>> kSums = {
    {"count_pos", &LayerStatistics::count_pos},  {"sum_y", &LayerStatistics::sum_y},
    {"sum_y_pos", &LayerStatistics::sum_y_pos},  {"sum_x", &LayerStatistics::sum_x},
    {"sum_x_pos", &LayerStatistics::sum_x_pos},  {"sum_xy", &LayerStatistics::sum_xy},
    {"sum_xy_pos", &LayerStatistics::sum_xy_pos}};

// Every sum of `got` equals `want` up to `rel` times the largest magnitude in that sum's array.
void expect_same_statistics(const PatternStatistics& got, const PatternStatistics& want, double rel,
                            const std::string& what) {
  EXPECT_EQ(got.images, want.images) << what;
  ASSERT_EQ(got.layers().size(), want.layers().size()) << what;
  for (size_t l = 0; l < want.layers().size(); ++l) {
    const LayerStatistics &g = got.layers()[l], &w = want.layers()[l];
    EXPECT_EQ(g.node, w.node) << what;
    EXPECT_EQ(g.weight_shape, w.weight_shape) << what;
    EXPECT_EQ(g.output_axis, w.output_axis) << what;
    EXPECT_EQ(g.neurons, w.neurons) << what;
    EXPECT_EQ(g.count, w.count) << what << " layer " << w.node;
    for (const auto& [name, field] : kSums) {
      const std::vector<double>&a = g.*field, &b = w.*field;
      ASSERT_EQ(a.size(), b.size()) << what << " " << w.node << " " << name;
      double scale = 0.0, worst = 0.0;
      for (size_t i = 0; i < b.size(); ++i) {
        scale = std::max(scale, std::abs(b[i]));
        worst = std::max(worst, std::abs(a[i] - b[i]));
      }
      EXPECT_LE(worst, rel * scale) << what << ": layer " << w.node << " " << name << " differs by "
                                    << worst / std::max(scale, 1e-300) << " of its largest value";
    }
  }
}

void expect_same_patterns(const std::vector<LayerPatterns>& got, const std::vector<LayerPatterns>& want,
                          double rel, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t l = 0; l < want.size(); ++l) {
    EXPECT_EQ(got[l].node, want[l].node) << what;
    for (const auto& [name, member] :
         {std::pair{"positive", &LayerPatterns::positive}, std::pair{"negative", &LayerPatterns::negative}}) {
      const Tensor &a = got[l].*member, &b = want[l].*member;
      ASSERT_EQ(a.shape(), b.shape()) << what;
      double scale = 0.0, worst = 0.0;
      for (int64_t i = 0; i < b.size(); ++i) {
        scale = std::max(scale, static_cast<double>(std::abs(b[i])));
        worst = std::max(worst, static_cast<double>(std::abs(a[i] - b[i])));
      }
      EXPECT_LE(worst, rel * scale) << what << ": layer " << l << " " << name;
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// Small networks written with the ONNX library, random weights and biases of both signs.

struct Layer {
  std::string kind;                      // Conv, Gemm, MatMul or Flatten
  std::string input, output, activated;  // x, the op's output z, and after the Relu (= output without)
  Shape in_shape, out_shape;             // with the batch
  Shape weight_shape;
  std::vector<float> weight, bias;  // bias empty: none
  bool trans_b = false, relu = false;
  std::array<int64_t, 2> strides{1, 1}, dilations{1, 1};
  std::array<int64_t, 4> pads{0, 0, 0, 0};  // ONNX order: begin h, begin w, end h, end w
  int64_t group = 1;
  bool linear() const { return kind != "Flatten"; }
};

struct ConvSpec {
  int64_t out, kh, kw;
  std::array<int64_t, 2> strides{1, 1};
  std::array<int64_t, 4> pads{0, 0, 0, 0};
  std::array<int64_t, 2> dilations{1, 1};
  int64_t group = 1;
};

class NetBuilder {
 public:
  NetBuilder(Shape input, uint32_t seed) : input_shape(std::move(input)), rng_(seed) {}

  NetBuilder& conv(const ConvSpec& c, bool relu = true) {
    Layer l = next("Conv", relu);
    const int64_t cin = l.in_shape[1];
    l.weight_shape = {c.out, cin / c.group, c.kh, c.kw};
    l.strides = c.strides;
    l.pads = c.pads;
    l.dilations = c.dilations;
    l.group = c.group;
    const int64_t h =
        (l.in_shape[2] + c.pads[0] + c.pads[2] - c.dilations[0] * (c.kh - 1) - 1) / c.strides[0] + 1;
    const int64_t w =
        (l.in_shape[3] + c.pads[1] + c.pads[3] - c.dilations[1] * (c.kw - 1) - 1) / c.strides[1] + 1;
    l.out_shape = {l.in_shape[0], c.out, h, w};
    randomize(l, c.out);
    return add(std::move(l));
  }
  NetBuilder& flatten() {
    Layer l = next("Flatten", false);
    l.out_shape = {l.in_shape[0], element_count(l.in_shape) / l.in_shape[0]};
    return add(std::move(l));
  }
  NetBuilder& gemm(int64_t n, bool trans_b, bool relu = true) {
    Layer l = next("Gemm", relu);
    const int64_t k = l.in_shape[1];
    l.trans_b = trans_b;
    l.weight_shape = trans_b ? Shape{n, k} : Shape{k, n};
    l.out_shape = {l.in_shape[0], n};
    randomize(l, n);
    return add(std::move(l));
  }
  NetBuilder& matmul(int64_t n) {
    Layer l = next("MatMul", false);
    l.weight_shape = {l.in_shape[1], n};
    l.out_shape = {l.in_shape[0], n};
    randomize(l, 0);
    return add(std::move(l));
  }
  // Sets bias element j of the last layer.
  NetBuilder& bias(int64_t j, float value) {
    layers.back().bias.at(static_cast<size_t>(j)) = value;
    return *this;
  }

  // With `probe`, every linear layer's input and output are graph outputs too (after the real one).
  std::string bytes(bool probe = false) const {
    onnx::ModelProto m;
    m.set_ir_version(8);
    m.add_opset_import()->set_version(13);
    auto* g = m.mutable_graph();
    g->set_name("net");
    declare(g->add_input(), "x", input_shape);
    for (size_t i = 0; i < layers.size(); ++i) {
      const Layer& l = layers[i];
      auto* n = g->add_node();
      n->set_op_type(l.kind);
      n->set_name(l.kind + std::to_string(i));
      n->add_input(l.input);
      n->add_output(l.output);
      if (l.linear()) {
        initializer(g, "w" + std::to_string(i), l.weight_shape, l.weight);
        n->add_input("w" + std::to_string(i));
        if (!l.bias.empty()) {
          initializer(g, "b" + std::to_string(i), {static_cast<int64_t>(l.bias.size())}, l.bias);
          n->add_input("b" + std::to_string(i));
        }
      }
      if (l.kind == "Conv") {
        ints(n, "strides", {l.strides[0], l.strides[1]});
        ints(n, "pads", {l.pads[0], l.pads[1], l.pads[2], l.pads[3]});
        ints(n, "dilations", {l.dilations[0], l.dilations[1]});
        ints(n, "kernel_shape", {l.weight_shape[2], l.weight_shape[3]});
        auto* a = n->add_attribute();
        a->set_name("group");
        a->set_type(onnx::AttributeProto::INT);
        a->set_i(l.group);
      }
      if (l.kind == "Gemm") {
        auto* a = n->add_attribute();
        a->set_name("transB");
        a->set_type(onnx::AttributeProto::INT);
        a->set_i(l.trans_b ? 1 : 0);
      }
      if (l.relu) {
        auto* r = g->add_node();
        r->set_op_type("Relu");
        r->set_name("Relu" + std::to_string(i));
        r->add_input(l.output);
        r->add_output(l.activated);
      }
    }
    declare(g->add_output(), layers.back().activated, layers.back().out_shape);
    if (probe) {
      for (const auto& [name, shape] : probe_values()) declare(g->add_output(), name, shape);
    }
    std::string s;
    m.SerializeToString(&s);
    return s;
  }
  Model model(bool probe = false) const { return Model::from_bytes(bytes(probe), "net.onnx"); }

  // The extra outputs of the probe model, in order: every linear layer's input and output, once each.
  std::vector<std::pair<std::string, Shape>> probe_values() const {
    std::vector<std::pair<std::string, Shape>> values;
    const auto add_value = [&](const std::string& name, const Shape& shape) {
      if (name == "x" || name == layers.back().activated) return;
      for (const auto& v : values) {
        if (v.first == name) return;
      }
      values.emplace_back(name, shape);
    };
    for (const Layer& l : layers) {
      if (!l.linear()) continue;
      add_value(l.input, l.in_shape);
      add_value(l.output, l.out_shape);
    }
    return values;
  }

  // Uniform inputs in [−1, 1].
  Tensor input(int64_t batch) {
    Shape shape = input_shape;
    shape[0] = batch;
    Tensor x(shape);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    for (float& v : x.values()) v = u(rng_);
    return x;
  }

  Shape input_shape;
  std::vector<Layer> layers;

 private:
  Layer next(const std::string& kind, bool relu) {
    Layer l;
    l.kind = kind;
    l.relu = relu;
    l.input = layers.empty() ? "x" : layers.back().activated;
    l.in_shape = layers.empty() ? input_shape : layers.back().out_shape;
    l.output = "z" + std::to_string(layers.size());
    l.activated = relu ? "a" + std::to_string(layers.size()) : l.output;
    return l;
  }
  NetBuilder& add(Layer l) {
    layers.push_back(std::move(l));
    return *this;
  }
  // Weights uniform in ±√(3/fan-in), biases uniform in ±0.3 (none when `biases` is 0).
  void randomize(Layer& l, int64_t biases) {
    const int64_t count = element_count(l.weight_shape);
    const int64_t out = l.kind == "Conv" || l.trans_b ? l.weight_shape[0] : l.weight_shape[1];
    const float limit = std::sqrt(3.0f * static_cast<float>(out) / static_cast<float>(count));
    std::uniform_real_distribution<float> w(-limit, limit), b(-0.3f, 0.3f);
    for (int64_t i = 0; i < count; ++i) l.weight.push_back(w(rng_));
    for (int64_t i = 0; i < biases; ++i) l.bias.push_back(b(rng_));
  }
  static void declare(onnx::ValueInfoProto* v, const std::string& name, const Shape& shape) {
    v->set_name(name);
    auto* t = v->mutable_type()->mutable_tensor_type();
    t->set_elem_type(onnx::TensorProto::FLOAT);
    t->mutable_shape()->add_dim()->set_dim_param("N");
    for (size_t d = 1; d < shape.size(); ++d) t->mutable_shape()->add_dim()->set_dim_value(shape[d]);
  }
  static void initializer(onnx::GraphProto* g, const std::string& name, const Shape& dims,
                          const std::vector<float>& values) {
    auto* t = g->add_initializer();
    t->set_name(name);
    t->set_data_type(onnx::TensorProto::FLOAT);
    for (int64_t d : dims) t->add_dims(d);
    for (float v : values) t->add_float_data(v);
  }
  static void ints(onnx::NodeProto* n, const std::string& name, std::vector<int64_t> values) {
    auto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::INTS);
    for (int64_t v : values) a->add_ints(v);
  }

  std::mt19937 rng_;
};

// Convolutions with stride 2 and padding, asymmetric padding with dilation and two groups, a depthwise
// convolution (channel multiplier 2), stride and dilation together; then Gemm (transB = 1 and 0),
// and a MatMul.
NetBuilder conv_net(uint32_t seed) {
  NetBuilder b(Shape{16, 4, 11, 10}, seed);
  b.conv({6, 3, 3, {2, 2}, {1, 1, 1, 1}})
      .conv({8, 2, 3, {1, 1}, {1, 0, 0, 2}, {2, 1}, 2})
      .conv({16, 3, 3, {1, 1}, {1, 1, 1, 1}, {1, 1}, 8})
      .conv({5, 3, 3, {2, 1}, {2, 2, 2, 2}, {2, 2}})
      .flatten()
      .gemm(12, true)
      .gemm(7, false)
      .matmul(4);
  return b;
}

// The sums of one layer over every sample (every output position of every image), each patch
// extracted explicitly, in double; `scale_*` bound the rounding of each sum: Σ|x|, Σ(Σ|w x| + |b|)
// and Σ|x|·(Σ|w x| + |b|).
struct NaiveSums {
  double count = 0;
  std::vector<double> count_pos, sum_y, sum_y_pos, sum_x, sum_x_pos, sum_xy, sum_xy_pos;
  std::vector<double> scale_y, scale_x, scale_xy;
  double worst_z =
      0;  // the largest |z(float, model) − z(double)| / (Σ|w x| + |b|): the patch extraction's check
};

NaiveSums naive_sums(const Layer& l, const Tensor& x, const Tensor& z_model) {
  const bool conv = l.kind == "Conv";
  const int64_t neurons = conv || l.trans_b ? l.weight_shape[0] : l.weight_shape[1];
  const int64_t fan_in = element_count(l.weight_shape) / neurons;
  const auto weight_index = [&](int64_t j, int64_t k) {
    return static_cast<size_t>(conv || l.trans_b ? j * fan_in + k : k * neurons + j);
  };
  NaiveSums s;
  const size_t wn = l.weight.size(), nn = static_cast<size_t>(neurons);
  for (auto* v : {&s.count_pos, &s.sum_y, &s.sum_y_pos, &s.scale_y}) v->assign(nn, 0.0);
  for (auto* v : {&s.sum_x, &s.sum_x_pos, &s.sum_xy, &s.sum_xy_pos, &s.scale_x, &s.scale_xy})
    v->assign(wn, 0.0);
  std::vector<double> patch(static_cast<size_t>(fan_in));
  // One sample of neuron j: its patch is in `patch`, the model's output there is z_model[z_index].
  const auto add = [&](int64_t j, int64_t z_index) {
    double y = 0.0, magnitude = 0.0;
    for (int64_t k = 0; k < fan_in; ++k) {
      const double wx = static_cast<double>(l.weight[weight_index(j, k)]) * patch[static_cast<size_t>(k)];
      y += wx;
      magnitude += std::abs(wx);
    }
    const double b = l.bias.empty() ? 0.0 : l.bias[static_cast<size_t>(j)];
    magnitude += std::abs(b);
    const double z = y + b;
    s.worst_z = std::max(s.worst_z, std::abs(z_model[z_index] - z) / magnitude);
    const bool pos = z > 0.0;
    const size_t ju = static_cast<size_t>(j);
    s.count_pos[ju] += pos ? 1.0 : 0.0;
    s.sum_y[ju] += y;
    s.sum_y_pos[ju] += pos ? y : 0.0;
    s.scale_y[ju] += magnitude;
    for (int64_t k = 0; k < fan_in; ++k) {
      const size_t i = weight_index(j, k);
      const double p = patch[static_cast<size_t>(k)];
      s.sum_x[i] += p;
      s.sum_x_pos[i] += pos ? p : 0.0;
      s.sum_xy[i] += p * y;
      s.sum_xy_pos[i] += pos ? p * y : 0.0;
      s.scale_x[i] += std::abs(p);
      s.scale_xy[i] += std::abs(p) * magnitude;
    }
  };
  if (!conv) {
    const int64_t n = x.dim(0), k_in = x.dim(1);
    for (int64_t r = 0; r < n; ++r) {
      for (int64_t k = 0; k < k_in; ++k) patch[static_cast<size_t>(k)] = x[r * k_in + k];
      for (int64_t j = 0; j < neurons; ++j) add(j, r * neurons + j);
      s.count += 1.0;
    }
    return s;
  }
  const int64_t n = x.dim(0), cin = x.dim(1), h = x.dim(2), w = x.dim(3);
  const int64_t ho = l.out_shape[2], wo = l.out_shape[3], kh = l.weight_shape[2], kw = l.weight_shape[3];
  const int64_t per_group_in = cin / l.group, per_group_out = neurons / l.group;
  for (int64_t img = 0; img < n; ++img) {
    for (int64_t oh = 0; oh < ho; ++oh) {
      for (int64_t ow = 0; ow < wo; ++ow) {
        for (int64_t j = 0; j < neurons; ++j) {
          const int64_t first_channel = (j / per_group_out) * per_group_in;
          size_t k = 0;
          for (int64_t c = 0; c < per_group_in; ++c) {
            for (int64_t p = 0; p < kh; ++p) {
              for (int64_t q = 0; q < kw; ++q, ++k) {
                const int64_t ih = oh * l.strides[0] - l.pads[0] + p * l.dilations[0];
                const int64_t iw = ow * l.strides[1] - l.pads[1] + q * l.dilations[1];
                const bool inside = ih >= 0 && ih < h && iw >= 0 && iw < w;
                patch[k] = inside ? x[((img * cin + first_channel + c) * h + ih) * w + iw] : 0.0;
              }
            }
          }
          add(j, ((img * neurons + j) * ho + oh) * wo + ow);
        }
        s.count += 1.0;
      }
    }
  }
  return s;
}

// Largest |got − want| / scale over the elements with a non-zero scale.
double worst_ratio(const std::vector<double>& got, const std::vector<double>& want,
                   const std::vector<double>& scale) {
  double worst = 0.0;
  for (size_t i = 0; i < want.size(); ++i) {
    const double d = std::abs(got.at(i) - want[i]);
    if (scale[i] > 0.0) {
      worst = std::max(worst, d / scale[i]);
    } else if (d > 0.0) {
      worst = std::numeric_limits<double>::infinity();
    }
  }
  return worst;
}

// Conv pattern statistics (from Conv backward-weights, float32 per image) and dense ones (float64
// products) equal the naive sums; the counts exactly. Each sum is compared relative to its bound
// Σ|terms|, within float32 rounding (support/rounding.hpp). The naive layer output z, a float64 dot
// product of the probe's float32 values, matches the probe's float32 z to γ ≈ (fan-in + 2)·u. The fit
// runs batches of 5 and 11 and the probe 16: their forward values each lie within τ of the exact ones,
// so x and y = z − b within 2τ of each other (y: one more rounding for the subtraction); a Conv's
// backward-weights adds a float32 sum over one image's output positions, (positions + 1)·u; products
// are exact in float64. Any misplaced, missing or duplicated patch element, wrong padding or a mask
// taken without the bias gives errors of order 1.
TEST(PatternStatistics, EqualNaivePatchSums) {
  for (uint32_t seed : {1u, 2u}) {
    NetBuilder net = conv_net(seed);
    const Model model = net.model(), probe = net.model(true);
    const Tensor x = net.input(16);
    // Two batches of different size accumulate into one fit.
    PatternStatistics stats(model);
    stats.accumulate(model, rows(x, 0, 5));
    stats.accumulate(model, rows(x, 5, 11));
    EXPECT_EQ(stats.images, 16);
    const std::vector<Tensor> probed = probe.run({x});
    std::map<std::string, Tensor> values{{"x", x}, {net.layers.back().activated, probed.at(0)}};
    size_t o = 1;
    for (const auto& [name, shape] : net.probe_values()) values[name] = probed.at(o++);
    size_t index = 0;
    for (const Layer& l : net.layers) {
      if (!l.linear()) continue;
      ASSERT_LT(index, stats.layers().size());
      const LayerStatistics& s = stats.layers()[index++];
      const std::string what = "seed " + std::to_string(seed) + " " + l.kind + " layer " + s.node;
      ASSERT_EQ(s.weight_shape, l.weight_shape) << what;
      const NaiveSums ref = naive_sums(l, values.at(l.input), values.at(l.output));
      const bool conv = l.kind == "Conv";
      const double u = kFloat32UnitRoundoff, tau = forward_rounding_bound(model);
      const double fan_in = static_cast<double>(element_count(s.weight_shape) / s.neurons);
      const double positions = s.count / static_cast<double>(stats.images);
      ASSERT_LE(ref.worst_z, (fan_in + 2.0) * u)
          << what << ": the naive patches do not reproduce the layer's output";
      EXPECT_EQ(s.count, ref.count) << what;
      EXPECT_EQ(s.count_pos, ref.count_pos) << what;
      const double y_tol = 2.0 * tau + u, x_tol = 2.0 * tau + (conv ? positions + 1.0 : 0.0) * u;
      const double xy_tol = y_tol + x_tol;
      const std::vector<std::tuple<const char*, const std::vector<double>&, const std::vector<double>&,
                                   const std::vector<double>&, double>>
          checks = {{"sum_y", s.sum_y, ref.sum_y, ref.scale_y, y_tol},
                    {"sum_y_pos", s.sum_y_pos, ref.sum_y_pos, ref.scale_y, y_tol},
                    {"sum_x", s.sum_x, ref.sum_x, ref.scale_x, x_tol},
                    {"sum_x_pos", s.sum_x_pos, ref.sum_x_pos, ref.scale_x, x_tol},
                    {"sum_xy", s.sum_xy, ref.sum_xy, ref.scale_xy, xy_tol},
                    {"sum_xy_pos", s.sum_xy_pos, ref.sum_xy_pos, ref.scale_xy, xy_tol}};
      for (const auto& [name, got, want, scale, tol] : checks) {
        ASSERT_EQ(got.size(), want.size()) << what << " " << name;
        const double worst = worst_ratio(got, want, scale);
        EXPECT_LE(worst, tol) << what << " " << name;
        if (std::getenv("SIEVE_TEST_VERBOSE")) std::printf("%s %s %.3g\n", what.c_str(), name, worst);
      }
      // Every neuron fires on some samples and not on others, so both regimes are exercised.
      const double fired = std::accumulate(s.count_pos.begin(), s.count_pos.end(), 0.0);
      EXPECT_GT(fired, 0.1 * s.count * static_cast<double>(s.neurons)) << what;
      EXPECT_LT(fired, 0.9 * s.count * static_cast<double>(s.neurons)) << what;
    }
    EXPECT_EQ(index, stats.layers().size());
  }
}

// ---------------------------------------------------------------------------------------------------
// Invariance. The statistics are float64 sums of per-sample terms made from float32 forward values.
// When every sample's forward values are the same, the order of the samples, splitting them into files
// or parts and merging change the sums only by the float64 rounding of the additions (fewer than 10⁶
// terms of one sign pattern: far below 1e-12 of the largest sum). Every sample run alone (batch 1) gives
// the same forward values whatever the order or split, so these hold to 1e-12.
// Different batch sizes run different oneDNN kernels: the forward values then differ by float32
// rounding, up to τ of their magnitude in each run (support/rounding.hpp), and a sample whose
// pre-activation lies within that rounding of 0 may count in the other regime.

// `got` and `want` fitted from the same samples at different batch sizes: each sum within 4τ of the
// largest in its array (a term is at most a product of two forward values, each off by up to τ in each
// of the two runs), plus what the possible regime flips move:
// their count in count_pos, their Σ|x| in sum_x_pos (their y, and so their share of sum_y_pos and
// sum_xy_pos, is itself within the rounding).
void expect_same_up_to_float32_rounding(const PatternStatistics& got, const PatternStatistics& want,
                                        const std::vector<RegimeFlips>& flips, double tau,
                                        const std::string& what) {
  EXPECT_EQ(got.images, want.images) << what;
  ASSERT_EQ(got.layers().size(), want.layers().size()) << what;
  for (size_t l = 0; l < want.layers().size(); ++l) {
    const LayerStatistics &g = got.layers()[l], &w = want.layers()[l];
    EXPECT_EQ(g.count, w.count) << what << " layer " << w.node;
    for (const auto& [name, field] : kSums) {
      const std::vector<double>&a = g.*field, &b = w.*field;
      ASSERT_EQ(a.size(), b.size()) << what << " " << w.node << " " << name;
      const std::vector<double>* flipped = field == &LayerStatistics::count_pos   ? &flips[l].count
                                           : field == &LayerStatistics::sum_x_pos ? &flips[l].sum_abs_x
                                                                                  : nullptr;
      double scale = 0.0;
      for (double v : b) scale = std::max(scale, std::abs(v));
      double worst = 0.0;
      for (size_t i = 0; i < b.size(); ++i) {
        const double allowed = 4.0 * tau * scale + (flipped != nullptr ? (*flipped)[i] : 0.0);
        worst = std::max(worst, std::abs(a[i] - b[i]) - allowed);
      }
      EXPECT_LE(worst, 0.0) << what << ": layer " << w.node << " " << name << " exceeds 4τ = " << 4.0 * tau
                            << " of its largest value plus the regime flips by " << worst;
    }
  }
}

void check_invariance(const std::string& model_file, int64_t n) {
  const Model model = Model::load(kModels + model_file);
  const Tensor data = rows(read_npy(kModels + "fmnist_train2000.npy"), 0, n);
  const std::string stem = model_file.substr(0, model_file.find('.'));
  const fs::path all = temp(stem + "_all.npy"), first = temp(stem + "_first.npy"),
                 second = temp(stem + "_second.npy");
  write_npy(all.string(), data);
  write_npy(first.string(), rows(data, 0, n / 3));
  write_npy(second.string(), rows(data, n / 3, n - n / 3));

  // Exact: every fit runs each sample alone.
  const PatternStatistics reference = fit_files(model, {all.string()}, 1);
  EXPECT_EQ(reference.images, n);
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), std::mt19937(5));
  expect_same_statistics(fit(model, gathered_rows(data, order), 1), reference, 1e-12, model_file + " shuffled");
  // Two files in one stream, and the two halves fitted separately and merged.
  expect_same_statistics(fit_files(model, {first.string(), second.string()}, 1), reference, 1e-12,
                         model_file + " two files");
  const PatternStatistics head = fit(model, rows(data, 0, n / 3), 1);
  const PatternStatistics rest = fit_files(model, {second.string()}, 1);
  PatternStatistics merged = head;
  merged.merge(rest);
  expect_same_statistics(merged, reference, 1e-12, model_file + " merged");

  // The same through pattern files and `sieve fit-patterns --merge`.
  for (const auto& [path, part] :
       {std::pair{temp(stem + "_p1.safetensors"), &head}, std::pair{temp(stem + "_p2.safetensors"), &rest}}) {
    PatternFile file;
    file.fingerprint = model_fingerprint(model);
    file.statistics = *part;
    file.patterns = estimate_patterns(model, *part, PatternType::relu);
    write_pattern_file(path.string(), file);
  }
  const fs::path out = temp(stem + "_merged.safetensors");
  const std::string command = std::string(SIEVE_CLI) + " fit-patterns " + kModels + model_file + " --merge " +
                              temp(stem + "_p1.safetensors").string() + " " +
                              temp(stem + "_p2.safetensors").string() + " --out " + out.string() +
                              " > /dev/null";
  ASSERT_EQ(std::system(command.c_str()), 0) << command;
  const PatternFile from_cli = read_pattern_file_for(out.string(), model);
  expect_same_statistics(from_cli.statistics, reference, 1e-12, model_file + " merged by the CLI");
  EXPECT_EQ(from_cli.type, PatternType::relu);
  // Patterns are float64 ratios of the same sums (to 1e-12) rounded to float32: equal up to u ≈ 6e-8 of
  // each element, and the sums' 1e-12, even amplified by the estimator's cancellation, stays below 1e-6.
  expect_same_patterns(from_cli.patterns, estimate_patterns(model, reference, PatternType::relu), 1e-6,
                       model_file + " patterns merged by the CLI");

  // Up to float32 rounding: other batch sizes, in one stream and split and merged.
  const double tau = forward_rounding_bound(model);
  const std::vector<RegimeFlips> flips = possible_regime_flips(model, data, tau);
  for (int64_t batch : {7, 64}) {
    expect_same_up_to_float32_rounding(fit_files(model, {all.string()}, batch), reference, flips, tau,
                                       model_file + " batch " + std::to_string(batch));
  }
  PatternStatistics batched = fit(model, rows(data, 0, n / 3), 13);
  batched.merge(fit_files(model, {second.string()}, 5));
  expect_same_up_to_float32_rounding(batched, reference, flips, tau,
                                     model_file + " merged, batches 13 and 5");
}

TEST(PatternStatistics, InvariantToBatchingOrderAndSplittingCnn) {
  check_invariance("cnn_dynbatch.onnx", 160);
}

TEST(PatternStatistics, InvariantToBatchingOrderAndSplittingMlp) {
  check_invariance("mlp_dynbatch.onnx", 300);
}

TEST(PatternStatistics, RefusesToMergeOtherModels) {
  const Model mlp = Model::load(kModels + "mlp_dynbatch.onnx"),
              cnn = Model::load(kModels + "cnn_dynbatch.onnx");
  const Tensor data = rows(read_npy(kModels + "fmnist_train2000.npy"), 0, 4);
  PatternStatistics a = fit(mlp, data, 4);
  EXPECT_THROW(a.merge(fit(cnn, data, 4)), Error);
  EXPECT_THROW(a.accumulate(cnn, data), Error);
}

// ---------------------------------------------------------------------------------------------------
// Estimators.

// wᵀa = 1 for every neuron of a regime with samples and a non-zero denominator; a regime without
// samples gives an exactly zero pattern. Returns how many patterns were checked to have wᵀa = 1.
int64_t check_normalization(const Model& model, const PatternStatistics& stats, PatternType type,
                            const std::string& what) {
  const std::vector<Tensor> weights = layer_weights(model);
  const std::vector<LayerPatterns> patterns = estimate_patterns(model, stats, type);
  EXPECT_EQ(patterns.size(), weights.size());
  int64_t normalized = 0, total = 0;
  for (size_t l = 0; l < patterns.size(); ++l) {
    const LayerStatistics& s = stats.layers()[l];
    const Tensor& w = weights[l];
    const int64_t fan_in = w.size() / s.neurons;
    const bool linear =
        type == PatternType::linear || (type == PatternType::linear_last && l + 1 == patterns.size());
    EXPECT_EQ(patterns[l].positive.shape(), w.shape());
    for (int64_t j = 0; j < s.neurons; ++j) {
      const size_t ju = static_cast<size_t>(j);
      for (const bool positive : {true, false}) {
        const Tensor& a = positive ? patterns[l].positive : patterns[l].negative;
        const double n = linear ? s.count : positive ? s.count_pos[ju] : s.count - s.count_pos[ju];
        double wa = 0.0, magnitude = 0.0, norm = 0.0, denominator = 0.0, denominator_scale = 0.0;
        const double mean_y = s.sum_y[ju] / s.count;
        for (int64_t k = 0; k < fan_in; ++k) {
          const size_t i = at(s, j, k);
          wa += static_cast<double>(w[static_cast<int64_t>(i)]) * a[static_cast<int64_t>(i)];
          magnitude += std::abs(static_cast<double>(w[static_cast<int64_t>(i)]) * a[static_cast<int64_t>(i)]);
          norm += std::abs(a[static_cast<int64_t>(i)]);
          if (n > 0) {
            const double sx = linear ? s.sum_x[i] : positive ? s.sum_x_pos[i] : s.sum_x[i] - s.sum_x_pos[i];
            const double sxy = linear     ? s.sum_xy[i]
                               : positive ? s.sum_xy_pos[i]
                                          : s.sum_xy[i] - s.sum_xy_pos[i];
            denominator += w[static_cast<int64_t>(i)] * (sxy / n - sx / n * mean_y);
            denominator_scale += std::abs(w[static_cast<int64_t>(i)] * (sxy / n)) +
                                 std::abs(w[static_cast<int64_t>(i)] * (sx / n * mean_y));
          }
        }
        ++total;
        const std::string where = what + " layer " + s.node + " neuron " + std::to_string(j) +
                                  (linear     ? ""
                                   : positive ? " a+"
                                              : " a-");
        if (n == 0) {
          EXPECT_EQ(norm, 0.0) << where << ": a regime without samples must give a zero pattern";
        } else if (norm == 0.0) {
          // The estimator's own float64 formula, here in another order: off by fan-in·2⁻⁵³ of its scale,
          // below 1e-12 for fan-ins under 10⁴.
          EXPECT_LE(std::abs(denominator), 1e-9 * denominator_scale)
              << where << ": zero pattern, non-zero denominator";
        } else {
          // a = num / denom rounded to float32, each element off by u relative: wᵀa is off by
          // u·Σ|w·a| ≈ 6e-8·magnitude (plus float64 rounding).
          EXPECT_NEAR(wa, 1.0, 1e-6 * std::max(1.0, magnitude)) << where;
          ++normalized;
        }
      }
    }
  }
  EXPECT_GT(normalized, total * 3 / 4) << what;
  return normalized;
}

// The shared mlp's fit on all 2000 training images (the golden test's) and the cnn's on a subset.
const PatternStatistics& mlp_fit() {
  static const PatternStatistics stats = [] {
    const Model model = Model::load(kModels + "mlp_dynbatch.onnx");
    return fit_files(model, {kModels + "fmnist_train2000.npy"}, 256);
  }();
  return stats;
}

TEST(PatternEstimators, EveryPatternHasUnitResponse) {
  const Model mlp = Model::load(kModels + "mlp_dynbatch.onnx"),
              cnn = Model::load(kModels + "cnn_dynbatch.onnx");
  const PatternStatistics cnn_stats = fit(cnn, rows(read_npy(kModels + "fmnist_train2000.npy"), 0, 96), 32);
  for (PatternType type : {PatternType::relu, PatternType::linear, PatternType::linear_last}) {
    check_normalization(mlp, mlp_fit(), type, "mlp " + to_string(type));
    check_normalization(cnn, cnn_stats, type, "cnn " + to_string(type));
  }
  // The reference's neurons that never fire on the training data (meta.json): 4, 14 and 0.
  const std::vector<int64_t> never_active{4, 14, 0};
  for (size_t l = 0; l < 3; ++l) {
    const LayerStatistics& s = mlp_fit().layers()[l];
    EXPECT_EQ(std::count(s.count_pos.begin(), s.count_pos.end(), 0.0), never_active[l]) << "mlp layer " << l;
  }
}

// A neuron whose bias keeps it below zero never fires: its a₊ is exactly zero while its a₋ and its
// linear pattern are proper patterns; the others are untouched.
TEST(PatternEstimators, NeuronsThatNeverFireHaveZeroPatterns) {
  NetBuilder net(Shape{1, 3, 6, 6}, 7);
  net.conv({4, 3, 3, {1, 1}, {1, 1, 1, 1}})
      .bias(2, -1e3f)
      .flatten()
      .gemm(5, true)
      .bias(1, -1e3f)
      .gemm(3, false);
  const Model model = net.model();
  const PatternStatistics stats = fit(model, net.input(64), 16);
  const std::vector<Tensor> weights = layer_weights(model);
  for (PatternType type : {PatternType::relu, PatternType::linear, PatternType::linear_last})
    check_normalization(model, stats, type, "net " + to_string(type));
  const std::vector<LayerPatterns> relu = estimate_patterns(model, stats, PatternType::relu);
  const std::vector<LayerPatterns> linear = estimate_patterns(model, stats, PatternType::linear);
  for (const auto& [layer, dead] : {std::pair<size_t, int64_t>{0, 2}, std::pair<size_t, int64_t>{1, 1}}) {
    const LayerStatistics& s = stats.layers()[layer];
    const int64_t fan_in = weights[layer].size() / s.neurons;
    EXPECT_EQ(s.count_pos[static_cast<size_t>(dead)], 0.0);
    for (int64_t j = 0; j < s.neurons; ++j) {
      double pos = 0.0, neg = 0.0, lin = 0.0;
      for (int64_t k = 0; k < fan_in; ++k) {
        const int64_t i = static_cast<int64_t>(at(s, j, k));
        pos += std::abs(relu[layer].positive[i]);
        neg += std::abs(relu[layer].negative[i]);
        lin += std::abs(linear[layer].positive[i]);
      }
      if (j == dead) {
        EXPECT_EQ(pos, 0.0) << "layer " << layer << " neuron " << j;
      } else {
        EXPECT_GT(s.count_pos[static_cast<size_t>(j)], 0.0) << "layer " << layer << " neuron " << j;
        EXPECT_GT(pos, 0.0) << "layer " << layer << " neuron " << j;
      }
      EXPECT_GT(neg, 0.0) << "layer " << layer << " neuron " << j;
      EXPECT_GT(lin, 0.0) << "layer " << layer << " neuron " << j;
    }
  }
}

// The paper's linear toy (PN §2): x = a_s·y + a_d·ε, w = (1, −1). The linear pattern is the signal
// direction a_s = (1, 0), not the filter; the two-component a₊ (regime y > 0, no bias) is a_s up to the
// sampling noise of ε within the regime: a₊ = a_s + δ·a_d with |δ| = 0.010 on these 10⁴ samples
// (a₋ likewise; a property of the data, which float32 rounding moves by about 1e-6), checked to 0.02.
TEST(PatternEstimators, LinearToyPatternIsTheSignalDirection) {
  const Model model = Model::load(kToy + "model.onnx");
  const PatternStatistics stats = fit_files(model, {kToy + "train.npy"}, 1000);
  EXPECT_EQ(stats.images, 10000);
  ASSERT_EQ(stats.layers().size(), 1u);
  const Tensor a = estimate_patterns(model, stats, PatternType::linear)[0].positive;
  ASSERT_EQ(a.shape(), (Shape{1, 2}));
  if (std::getenv("SIEVE_TEST_VERBOSE")) std::printf("toy linear pattern %.9f %.9f\n", a[0], a[1]);
  // The sample covariance of y and ε is exactly 0 before the data are stored in float32; that storage and
  // the float32 filter output (2 terms) move the float64 sums by a few u of Σ|x·y|: ≈ 1e-6 of a, ≤ 1e-3.
  EXPECT_NEAR(a[0], 1.0, 1e-3);
  EXPECT_NEAR(a[1], 0.0, 1e-3);
  const LayerPatterns relu = estimate_patterns(model, stats, PatternType::relu)[0];
  for (const Tensor& p : {relu.positive, relu.negative}) {
    if (std::getenv("SIEVE_TEST_VERBOSE")) std::printf("toy relu pattern %.6f %.6f\n", p[0], p[1]);
    EXPECT_NEAR(p[0] - p[1], 1.0, 1e-5);  // wᵀa = 1, up to the float32 rounding of p: 2u ≈ 1.2e-7 of |p|
    EXPECT_NEAR(p[0], 1.0, 0.02);
    EXPECT_NEAR(p[1], 0.0, 0.02);
  }
  // The filter's direction w/‖w‖² = (0.5, −0.5) would be far off.
  EXPECT_GT(std::abs(a[1] + 0.5), 0.4);
}

// Golden: the numpy references of refs/mlp (METHODS.md §3.2, iNNvestigate conventions), per neuron to
// 1e-4 of the neuron's largest pattern element. The reference fits in float64 (stored in float32: u);
// sieve's sums are float64 sums of float32 forward values, within τ = 7e-5 of their magnitudes for the
// mlp (support/rounding.hpp), which the patterns, ratios of those sums, inherit: 1e-4 ≥ τ + u.
TEST(PatternEstimators, MlpPatternsEqualReference) {
  const Model model = Model::load(kModels + "mlp_dynbatch.onnx");
  const std::map<PatternType, std::string> files{{PatternType::relu, "relu"},
                                                 {PatternType::linear, "linear"},
                                                 {PatternType::linear_last, "relu_linear_last"}};
  std::map<PatternType, std::vector<LayerPatterns>> fitted;
  for (const auto& [type, name] : files) {
    fitted[type] = estimate_patterns(model, mlp_fit(), type);
    ASSERT_EQ(fitted[type].size(), 3u);
    for (size_t l = 0; l < 3; ++l) {
      const Tensor ref = read_npy(kRefs + "patterns_" + name + "_layer" + std::to_string(l) + ".npy");
      const LayerStatistics& s = mlp_fit().layers()[l];
      const Tensor& got = fitted[type][l].positive;
      ASSERT_EQ(ref.rank(), 2);
      ASSERT_EQ(ref.dim(0), s.neurons);
      ASSERT_EQ(ref.dim(0) * ref.dim(1), got.size());
      double worst = 0.0;
      for (int64_t j = 0; j < s.neurons; ++j) {
        double scale = 0.0, diff = 0.0;
        for (int64_t k = 0; k < ref.dim(1); ++k) {
          const float r = ref[j * ref.dim(1) + k];
          scale = std::max(scale, static_cast<double>(std::abs(r)));
          diff = std::max(diff, static_cast<double>(std::abs(got[static_cast<int64_t>(at(s, j, k))] - r)));
        }
        if (scale == 0.0) {
          EXPECT_EQ(diff, 0.0) << name << " layer " << l << " neuron " << j << ": the reference is zero";
        } else {
          EXPECT_LE(diff, 1e-4 * scale) << name << " layer " << l << " neuron " << j;
          worst = std::max(worst, diff / scale);
        }
      }
      if (std::getenv("SIEVE_TEST_VERBOSE")) std::printf("%s layer %zu worst %.3g\n", name.c_str(), l, worst);
    }
  }
  // linear_last: relu below the last layer, linear on it.
  for (size_t l = 0; l < 2; ++l) {
    for (int64_t i = 0; i < fitted[PatternType::relu][l].positive.size(); ++i) {
      ASSERT_EQ(fitted[PatternType::linear_last][l].positive[i], fitted[PatternType::relu][l].positive[i]);
      ASSERT_EQ(fitted[PatternType::linear_last][l].negative[i], fitted[PatternType::relu][l].negative[i]);
    }
  }
  const Tensor& last = fitted[PatternType::linear_last][2].positive;
  for (int64_t i = 0; i < last.size(); ++i) ASSERT_EQ(last[i], fitted[PatternType::linear][2].positive[i]);
  const Tensor ref_last = read_npy(kRefs + "patterns_relu_linear_last_layer2.npy");
  const Tensor ref_linear = read_npy(kRefs + "patterns_linear_layer2.npy");
  for (int64_t i = 0; i < ref_last.size(); ++i) ASSERT_EQ(ref_last[i], ref_linear[i]);
}

// ---------------------------------------------------------------------------------------------------
// Pattern files.

PatternFile make_file(const Model& model, const PatternStatistics& stats, PatternType type,
                      const std::string& data) {
  PatternFile file;
  file.fingerprint = model_fingerprint(model);
  file.type = type;
  file.data_description = data;
  file.statistics = stats;
  file.patterns = estimate_patterns(model, stats, type);
  return file;
}

TEST(PatternFiles, RoundTrip) {
  const Model cnn = Model::load(kModels + "cnn_dynbatch.onnx");
  const Tensor data = rows(read_npy(kModels + "fmnist_train2000.npy"), 0, 24);
  for (PatternType type : {PatternType::relu, PatternType::linear, PatternType::linear_last}) {
    const PatternFile file = make_file(cnn, fit(cnn, data, 8), type, "fmnist_train2000.npy rows 0-23");
    const fs::path path = temp("round_trip_" + to_string(type) + ".safetensors");
    write_pattern_file(path.string(), file);
    const PatternFile back = read_pattern_file_for(path.string(), cnn);
    EXPECT_EQ(back.fingerprint, file.fingerprint);
    EXPECT_EQ(back.type, type);
    EXPECT_EQ(back.data_description, file.data_description);
    expect_same_statistics(back.statistics, file.statistics, 0.0, "round trip " + to_string(type));
    expect_same_patterns(back.patterns, file.patterns, 0.0, "round trip " + to_string(type));
  }
}

TEST(PatternFiles, RefuseAnotherModel) {
  const Model mlp = Model::load(kModels + "mlp_dynbatch.onnx"),
              cnn = Model::load(kModels + "cnn_dynbatch.onnx");
  const Tensor data = rows(read_npy(kModels + "fmnist_train2000.npy"), 0, 4);
  const fs::path path = temp("cnn.safetensors");
  write_pattern_file(path.string(), make_file(cnn, fit(cnn, data, 4), PatternType::relu, "four images"));
  const std::string cnn_print = model_fingerprint(cnn), mlp_print = model_fingerprint(mlp);
  ASSERT_NE(cnn_print, mlp_print);
  try {
    read_pattern_file_for(path.string(), mlp);
    ADD_FAILURE() << "a cnn pattern file was accepted for the mlp";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find(cnn_print), std::string::npos) << message;
    EXPECT_NE(message.find(mlp_print), std::string::npos) << message;
    EXPECT_NE(message.find(path.string()), std::string::npos) << message;
  }
  // The same architecture with other weights (one differs) has another fingerprint.
  NetBuilder a = conv_net(3), b = conv_net(3);
  b.layers[2].weight[5] += 0.5f;
  const Model ma = a.model(), mb = b.model();
  EXPECT_EQ(model_fingerprint(ma), model_fingerprint(a.model()));
  EXPECT_NE(model_fingerprint(ma), model_fingerprint(mb));
  const fs::path net_path = temp("net.safetensors");
  write_pattern_file(net_path.string(), make_file(ma, fit(ma, a.input(4), 4), PatternType::linear, "random"));
  EXPECT_NO_THROW(read_pattern_file_for(net_path.string(), ma));
  EXPECT_THROW(read_pattern_file_for(net_path.string(), mb), Error);
}

TEST(PatternFiles, CorruptFilesThrowErrors) {
  const Model mlp = Model::load(kModels + "mlp_dynbatch.onnx");
  const fs::path path = temp("good.safetensors");
  write_pattern_file(path.string(),
                     make_file(mlp, fit(mlp, rows(read_npy(kModels + "fmnist_train2000.npy"), 0, 8), 8),
                               PatternType::relu, "eight images"));
  const std::string good = read_bytes(path);
  ASSERT_NO_THROW(read_pattern_file(path.string()));
  const auto expect_error = [&](const std::string& bytes, const std::string& what) {
    const fs::path bad = temp("bad.safetensors");
    write_bytes(bad, bytes);
    try {
      read_pattern_file_for(bad.string(), mlp);
      ADD_FAILURE() << what << ": accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(bad.string()), std::string::npos) << what << ": " << e.what();
    } catch (const std::exception& e) {
      ADD_FAILURE() << what << ": not a sieve::Error: " << e.what();
    }
  };
  for (size_t cut :
       {size_t{0}, size_t{5}, size_t{8}, size_t{100}, good.size() / 3, good.size() - 8, good.size() - 1})
    expect_error(good.substr(0, cut), "truncated to " + std::to_string(cut) + " bytes");
  expect_error(good + "extra", "trailing bytes");
  // Garbage in the JSON header, and a header length beyond the file.
  std::string garbled = good;
  for (size_t i = 8; i < 40; ++i) garbled[i] = '\x01';
  expect_error(garbled, "garbled header");
  std::string long_header = good;
  long_header[3] = '\x7f';
  expect_error(long_header, "header length");
  // Valid safetensors, but not a complete pattern file.
  SafetensorsFile st = read_safetensors(path.string());
  SafetensorsFile missing = st;
  missing.tensors.erase(missing.tensors.begin()->first);
  const fs::path edited = temp("edited.safetensors");
  write_safetensors(edited.string(), missing);
  expect_error(read_bytes(edited), "a missing tensor");
  for (const auto& [key, value] :
       std::vector<std::pair<std::string, std::string>>{{"format", "something-else"},
                                                        {"pattern_type", "sigmoid"},
                                                        {"layers", "[{\"node\": 3}]"},
                                                        {"layers", "not json"},
                                                        {"images", "many"}}) {
    SafetensorsFile changed = st;
    changed.metadata[key] = value;
    write_safetensors(edited.string(), changed);
    expect_error(read_bytes(edited), "metadata " + key + " = " + value);
  }
  SafetensorsFile no_metadata = st;
  no_metadata.metadata.clear();
  write_safetensors(edited.string(), no_metadata);
  expect_error(read_bytes(edited), "no metadata");
  SafetensorsFile reshaped = st;
  for (auto& [name, t] : reshaped.tensors) {
    if (name.size() > 12 && name.substr(name.size() - 12) == "/pattern_pos") {
      t.shape = {static_cast<int64_t>(t.values.size())};
      break;
    }
  }
  write_safetensors(edited.string(), reshaped);
  expect_error(read_bytes(edited), "a pattern of the wrong shape");
}

}  // namespace
}  // namespace sieve
