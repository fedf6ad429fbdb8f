// ρ(S) of the signal estimators (PatternNet §4.1, Eq. 1): the closed form against an explicit
// least-squares fit on materialized residuals, the paper's linear toy, the Fashion-MNIST mlp / cnn
// ordering of the estimators, and `sieve signal-quality` end to end.

#include "sieve/signal_quality.hpp"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <tuple>

#include "sieve/io/npy.hpp"
#include "sieve/patterns.hpp"
#include "support/regime_flips.hpp"
#include "support/rounding.hpp"
#include "support/test_files.hpp"

namespace fs = std::filesystem;

namespace sieve {
namespace {

const std::string kData = std::string(SIEVE_TEST_DATA);
const std::string kShared = kData + "/shared/models/";
const std::string kToy = kData + "/../../examples/linear_toy/";

// ---------------------------------------------------------------------------------------------------
// A minimal ONNX protobuf writer (this test binary does not link the ONNX library).

class Proto {
 public:
  Proto& varint(int field, uint64_t v) {
    key(field, 0);
    raw_varint(v);
    return *this;
  }
  Proto& bytes(int field, const std::string& b) {
    key(field, 2);
    raw_varint(b.size());
    out_ += b;
    return *this;
  }
  Proto& message(int field, const Proto& m) { return bytes(field, m.str()); }
  const std::string& str() const { return out_; }

 private:
  void key(int field, int wire) {
    raw_varint(static_cast<uint64_t>(field) << 3 | static_cast<uint64_t>(wire));
  }
  void raw_varint(uint64_t v) {
    while (v >= 0x80) {
      out_ += static_cast<char>((v & 0x7f) | 0x80);
      v >>= 7;
    }
    out_ += static_cast<char>(v);
  }
  std::string out_;
};

Proto tensor_proto(const std::string& name, const Tensor& t) {
  Proto p;
  for (int64_t d : t.shape()) p.varint(1, static_cast<uint64_t>(d));
  p.varint(2, 1);  // FLOAT
  p.bytes(8, name);
  p.bytes(
      9, std::string(reinterpret_cast<const char*>(t.data()), static_cast<size_t>(t.size()) * sizeof(float)));
  return p;
}

// dims: -1 is a dynamic "batch" dimension.
Proto value_info(const std::string& name, const std::vector<int64_t>& dims) {
  Proto shape;
  for (int64_t d : dims) {
    Proto dim;
    if (d < 0) {
      dim.bytes(2, "batch");
    } else {
      dim.varint(1, static_cast<uint64_t>(d));
    }
    shape.message(1, dim);
  }
  Proto tensor_type;
  tensor_type.varint(1, 1).message(2, shape);
  Proto type;
  type.message(1, tensor_type);
  Proto v;
  v.bytes(1, name).message(2, type);
  return v;
}

Proto int_attribute(const std::string& name, int64_t v) {
  Proto a;
  a.bytes(1, name).varint(3, static_cast<uint64_t>(v)).varint(20, 2);
  return a;
}

Proto ints_attribute(const std::string& name, const std::vector<int64_t>& v) {
  Proto a;
  a.bytes(1, name);
  for (int64_t x : v) a.varint(8, static_cast<uint64_t>(x));
  a.varint(20, 7);
  return a;
}

// One linear node x → op(x, W, b) → y; `attributes` of the node.
Model one_layer_model(const std::string& op, const Tensor& w, const Tensor& b,
                      const std::vector<int64_t>& in_dims, const std::vector<int64_t>& out_dims,
                      const std::vector<Proto>& attributes) {
  Proto node;
  node.bytes(1, "x").bytes(1, "w").bytes(1, "b").bytes(2, "y").bytes(3, "layer").bytes(4, op);
  for (const Proto& a : attributes) node.message(5, a);
  Proto graph;
  graph.message(1, node).bytes(2, "g");
  graph.message(5, tensor_proto("w", w)).message(5, tensor_proto("b", b));
  graph.message(11, value_info("x", in_dims)).message(12, value_info("y", out_dims));
  Proto opset;
  opset.bytes(1, "").varint(2, 13);
  Proto model;
  model.varint(1, 8).message(8, opset).bytes(2, "signal_quality_test").message(7, graph);
  return Model::from_bytes(model.str(), op + ".onnx");
}

Tensor random_tensor(const Shape& shape, std::mt19937& rng, double scale, double offset = 0.0) {
  std::normal_distribution<double> normal(0.0, 1.0);
  Tensor t(shape);
  for (int64_t i = 0; i < t.size(); ++i) t[i] = static_cast<float>(offset + scale * normal(rng));
  return t;
}

Tensor rows_of(const Tensor& t, int64_t begin, int64_t end) {
  Shape shape = t.shape();
  shape[0] = end - begin;
  const int64_t per = t.size() / t.dim(0);
  return Tensor(shape,
                std::span<const float>(t.data() + begin * per, static_cast<size_t>((end - begin) * per)));
}

PatternFile patterns_on(const Model& model, const Tensor& data) {
  PatternFile file;
  file.fingerprint = model_fingerprint(model);
  file.statistics = PatternStatistics(model);
  file.statistics.accumulate(model, data);
  file.patterns = estimate_patterns(model, file.statistics, PatternType::relu);
  file.data_description = "test";
  return file;
}

QualityStatistics quality_on(const Model& model, const Tensor& data, int64_t batch = 64) {
  QualityStatistics s(model);
  for (int64_t i = 0; i < data.dim(0); i += batch)
    s.accumulate(model, rows_of(data, i, std::min(data.dim(0), i + batch)));
  return s;
}

// ---------------------------------------------------------------------------------------------------
// The reference: patches materialized explicitly, d per sample, v by the normal equations.

using Rows = std::vector<std::vector<double>>;  // samples × D

// Solves M v = r by Gaussian elimination with partial pivoting (M is small).
std::vector<double> solve(std::vector<std::vector<double>> m, std::vector<double> r) {
  const size_t n = r.size();
  for (size_t c = 0; c < n; ++c) {
    size_t p = c;
    for (size_t i = c + 1; i < n; ++i)
      if (std::abs(m[i][c]) > std::abs(m[p][c])) p = i;
    std::swap(m[c], m[p]);
    std::swap(r[c], r[p]);
    for (size_t i = c + 1; i < n; ++i) {
      const double f = m[i][c] / m[c][c];
      for (size_t k = c; k < n; ++k) m[i][k] -= f * m[c][k];
      r[i] -= f * r[c];
    }
  }
  std::vector<double> v(n);
  for (size_t c = n; c-- > 0;) {
    double s = r[c];
    for (size_t k = c + 1; k < n; ++k) s -= m[c][k] * v[k];
    v[c] = s / m[c][c];
  }
  return v;
}

double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

// The per-sample quantities of one neuron on one split.
struct NeuronSamples {
  Rows d;                 // residuals
  std::vector<double> t;  // outputs
};

// d = x − a·y_p − b·y_n, y = wᵀx, z = y + bias, t = y (pre) or relu(z) (post).
NeuronSamples residuals(const Rows& x, const std::vector<double>& w, double bias,
                        const std::vector<double>& a, const std::vector<double>& b, QualityOutput output) {
  NeuronSamples s;
  for (const std::vector<double>& xi : x) {
    const double y = dot(w, xi), z = y + bias;
    const double yp = z > 0 ? y : 0.0, yn = z > 0 ? 0.0 : y;
    std::vector<double> d(xi.size());
    for (size_t k = 0; k < xi.size(); ++k) d[k] = xi[k] - a[k] * yp - b[k] * yn;
    s.d.push_back(std::move(d));
    s.t.push_back(output == QualityOutput::pre ? y : std::max(z, 0.0));
  }
  return s;
}

double variance(const std::vector<double>& t) {
  double m = 0, v = 0;
  for (double x : t) m += x;
  m /= static_cast<double>(t.size());
  for (double x : t) v += (x - m) * (x - m);
  return v / static_cast<double>(t.size());
}

// ρ = 1 − corr₃(t, v*ᵀd) with v* = (Σ_d + λI)⁻¹ cov(d, t) on split 2, λ = 1e-6·trace(Σ_x)/D on split 2.
double reference_rho(const NeuronSamples& s2, const NeuronSamples& s3, double lambda) {
  const size_t n = s2.t.size(), dim = s2.d[0].size();
  std::vector<double> md(dim, 0.0);
  double mt = 0;
  for (size_t i = 0; i < n; ++i) {
    for (size_t k = 0; k < dim; ++k) md[k] += s2.d[i][k] / static_cast<double>(n);
    mt += s2.t[i] / static_cast<double>(n);
  }
  std::vector<std::vector<double>> m(dim, std::vector<double>(dim, 0.0));
  std::vector<double> r(dim, 0.0);
  for (size_t i = 0; i < n; ++i) {
    for (size_t k = 0; k < dim; ++k) {
      const double dk = s2.d[i][k] - md[k];
      r[k] += dk * (s2.t[i] - mt) / static_cast<double>(n);
      for (size_t l = 0; l < dim; ++l) m[k][l] += dk * (s2.d[i][l] - md[l]) / static_cast<double>(n);
    }
  }
  for (size_t k = 0; k < dim; ++k) m[k][k] += lambda;
  const std::vector<double> v = solve(m, r);
  std::vector<double> p;
  for (const std::vector<double>& d : s3.d) p.push_back(dot(v, d));
  double mp = 0, m3 = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    mp += p[i];
    m3 += s3.t[i];
  }
  mp /= static_cast<double>(p.size());
  m3 /= static_cast<double>(p.size());
  double c = 0, vp = 0, vt = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    c += (p[i] - mp) * (s3.t[i] - m3);
    vp += (p[i] - mp) * (p[i] - mp);
    vt += (s3.t[i] - m3) * (s3.t[i] - m3);
  }
  return 1.0 - c / std::sqrt(vp * vt);
}

double ridge(const Rows& x) {
  const size_t n = x.size(), dim = x[0].size();
  double trace = 0;
  for (size_t k = 0; k < dim; ++k) {
    double m = 0, v = 0;
    for (const auto& xi : x) m += xi[k];
    m /= static_cast<double>(n);
    for (const auto& xi : x) v += (xi[k] - m) * (xi[k] - m);
    trace += v / static_cast<double>(n);
  }
  return kQualityRidge * trace / static_cast<double>(dim);
}

std::vector<double> neuron_row(const Tensor& t, int64_t axis, int64_t neurons, int64_t j) {
  const int64_t per = t.size() / neurons;
  std::vector<double> v(static_cast<size_t>(per));
  for (int64_t k = 0; k < per; ++k) v[static_cast<size_t>(k)] = t[axis == 0 ? j * per + k : k * neurons + j];
  return v;
}

// Compares every neuron, estimator and output of a one-layer model with the explicit computation.
// `patches(data, group)` materializes the patches of one group.
void expect_matches_reference(const Model& model, const Tensor& data, int64_t groups,
                              const std::function<Rows(const Tensor&, int64_t)>& patches, int64_t axis) {
  const int64_t n = data.dim(0), third = n / 3;
  const Tensor d1 = rows_of(data, 0, third), d2 = rows_of(data, third, 2 * third),
               d3 = rows_of(data, 2 * third, n);
  const PatternFile pf = patterns_on(model, d1);
  const QualityStatistics q2 = quality_on(model, d2, 7), q3 = quality_on(model, d3, 1000);
  const uint64_t seed = 42;
  const std::vector<QualityOutput> outputs{QualityOutput::pre, QualityOutput::post};
  const auto results = signal_quality(model, pf, q2, q3, outputs, seed);
  const Tensor w = model.graph().value(model.graph().nodes()[0].inputs[1]).constant;
  const Tensor b = model.graph().value(model.graph().nodes()[0].inputs[2]).constant;
  const int64_t neurons = w.dim(axis), per_group = neurons / groups;
  const auto linear = estimate_patterns(model, pf.statistics, PatternType::linear);
  const auto relu = estimate_patterns(model, pf.statistics, PatternType::relu);
  // sieve's sums come from its float32 layer output, within τ = u·fan-in of the magnitudes (one layer,
  // support/rounding.hpp), the reference's from float64 products: the covariance c and the variances
  // vp, vt of ρ = 1 − c/√(vp·vt) are sums of products of two such values, each within 2τ, so |corr| ≤ 1
  // moves by at most 2τ + τ + τ = 4τ.
  const double tol = 4.0 * forward_rounding_bound(model);
  int compared = 0;
  double worst = 0;
  for (int64_t g = 0; g < groups; ++g) {
    const Rows x2 = patches(d2, g), x3 = patches(d3, g);
    const double lambda = ridge(x2);
    for (int64_t j = g * per_group; j < (g + 1) * per_group; ++j) {
      const std::vector<double> wj = neuron_row(w, axis, neurons, j);
      const double ww = dot(wj, wj);
      std::vector<double> uw = wj;
      for (double& v : uw) v /= ww;
      const std::vector<double> ur = quality_random_direction(wj, seed, 0, j);
      EXPECT_NEAR(dot(wj, ur), 1.0, 1e-9);  // normalized in float64: fan-in·2⁻⁵³ ≈ 2e-15 of |w|·|u|
      const std::vector<double> al = neuron_row(linear[0].positive, axis, neurons, j);
      const std::vector<double> ap = neuron_row(relu[0].positive, axis, neurons, j);
      const std::vector<double> an = neuron_row(relu[0].negative, axis, neurons, j);
      const std::map<std::string, std::pair<std::vector<double>, std::vector<double>>> estimators{
          {"random", {ur, ur}}, {"S_w", {uw, uw}}, {"S_a", {al, al}}, {"S_a+-", {ap, an}}};
      for (size_t k = 0; k < outputs.size(); ++k) {
        const LayerQuality& lq = results[k][0];
        for (const auto& [name, dirs] : estimators) {
          const NeuronSamples s2 = residuals(x2, wj, b[j], dirs.first, dirs.second, outputs[k]);
          const NeuronSamples s3 = residuals(x3, wj, b[j], dirs.first, dirs.second, outputs[k]);
          const double got = lq.rho.at(name)[static_cast<size_t>(j)];
          if (variance(s2.t) == 0.0 || variance(s3.t) == 0.0) {
            EXPECT_TRUE(std::isnan(got)) << name << " neuron " << j;
            continue;
          }
          const double want = reference_rho(s2, s3, lambda);
          EXPECT_NEAR(got, want, tol) << name << " neuron " << j << " output " << to_string(outputs[k]);
          worst = std::max(worst, std::abs(got - want));
          ++compared;
        }
      }
    }
  }
  EXPECT_GT(compared, 0);
  std::cout << "compared " << compared << " values of rho, largest difference " << worst << "\n";
}

TEST(SignalQuality, ClosedFormMatchesExplicitFitOnGemm) {
  std::mt19937 rng(3);
  const int64_t k = 6, neurons = 5, n = 1500;
  const Tensor w = random_tensor({neurons, k}, rng, 0.6), b = random_tensor({neurons}, rng, 0.5, 0.2);
  const Model model = one_layer_model("Gemm", w, b, {-1, k}, {-1, neurons}, {int_attribute("transB", 1)});
  // Correlated inputs with a mean: x = M g + m.
  const Tensor mix = random_tensor({k, k}, rng, 0.7), mean = random_tensor({k}, rng, 1.0);
  const Tensor g = random_tensor({n, k}, rng, 1.0);
  Tensor x({n, k});
  for (int64_t i = 0; i < n; ++i)
    for (int64_t r = 0; r < k; ++r) {
      double s = mean[r];
      for (int64_t c = 0; c < k; ++c) s += mix[r * k + c] * g[i * k + c];
      x[i * k + r] = static_cast<float>(s);
    }
  auto patches = [&](const Tensor& data, int64_t) {
    Rows rows;
    for (int64_t i = 0; i < data.dim(0); ++i)
      rows.emplace_back(data.data() + i * k, data.data() + (i + 1) * k);
    return rows;
  };
  expect_matches_reference(model, x, 1, patches, 0);
}

TEST(SignalQuality, ClosedFormMatchesExplicitFitOnMatMul) {
  std::mt19937 rng(5);
  const int64_t k = 4, neurons = 3, n = 900;
  const Tensor w = random_tensor({k, neurons}, rng, 0.8), b = random_tensor({neurons}, rng, 0.3);
  // MatMul + bias as Gemm without transB: neurons on weight axis 1.
  const Model model = one_layer_model("Gemm", w, b, {-1, k}, {-1, neurons}, {});
  const Tensor x = random_tensor({n, k}, rng, 1.0, 0.5);
  auto patches = [&](const Tensor& data, int64_t) {
    Rows rows;
    for (int64_t i = 0; i < data.dim(0); ++i)
      rows.emplace_back(data.data() + i * k, data.data() + (i + 1) * k);
    return rows;
  };
  expect_matches_reference(model, x, 1, patches, 1);
}

struct ConvCase {
  int64_t c_in, c_out, groups, kernel, stride, pad, dilation, size;
};

void conv_case(const ConvCase& c, unsigned seed) {
  std::mt19937 rng(seed);
  const int64_t cpg = c.c_in / c.groups, n = 3 * 40;
  const Tensor w = random_tensor({c.c_out, cpg, c.kernel, c.kernel}, rng, 0.4);
  const Tensor b = random_tensor({c.c_out}, rng, 0.3, 0.1);
  const int64_t out = (c.size + 2 * c.pad - c.dilation * (c.kernel - 1) - 1) / c.stride + 1;
  const Model model =
      one_layer_model("Conv", w, b, {-1, c.c_in, c.size, c.size}, {-1, c.c_out, out, out},
                      {int_attribute("group", c.groups), ints_attribute("strides", {c.stride, c.stride}),
                       ints_attribute("pads", {c.pad, c.pad, c.pad, c.pad}),
                       ints_attribute("dilations", {c.dilation, c.dilation}),
                       ints_attribute("kernel_shape", {c.kernel, c.kernel})});
  // Spatially and across channels correlated images with a per-channel mean.
  const Tensor noise = random_tensor({n, c.c_in, c.size, c.size}, rng, 1.0);
  Tensor x({n, c.c_in, c.size, c.size});
  auto at = [&](const Tensor& t, int64_t i, int64_t ch, int64_t h, int64_t v) {
    return t[((i * c.c_in + ch) * c.size + h) * c.size + v];
  };
  for (int64_t i = 0; i < n; ++i)
    for (int64_t ch = 0; ch < c.c_in; ++ch)
      for (int64_t h = 0; h < c.size; ++h)
        for (int64_t v = 0; v < c.size; ++v)
          x[((i * c.c_in + ch) * c.size + h) * c.size + v] = static_cast<float>(
              0.3 * static_cast<double>(ch) + at(noise, i, ch, h, v) +
              0.6 * at(noise, i, ch, h, (v + 1) % c.size) + 0.4 * at(noise, i, (ch + 1) % c.c_in, h, v));
  auto patches = [&](const Tensor& data, int64_t g) {
    Rows rows;
    for (int64_t i = 0; i < data.dim(0); ++i)
      for (int64_t oh = 0; oh < out; ++oh)
        for (int64_t ow = 0; ow < out; ++ow) {
          std::vector<double> p;
          for (int64_t ch = 0; ch < cpg; ++ch)
            for (int64_t kh = 0; kh < c.kernel; ++kh)
              for (int64_t kw = 0; kw < c.kernel; ++kw) {
                const int64_t h = oh * c.stride - c.pad + kh * c.dilation,
                              v = ow * c.stride - c.pad + kw * c.dilation;
                const bool inside = h >= 0 && h < c.size && v >= 0 && v < c.size;
                p.push_back(inside ? at(data, i, g * cpg + ch, h, v) : 0.0);
              }
          rows.push_back(std::move(p));
        }
    return rows;
  };
  expect_matches_reference(model, x, c.groups, patches, 0);
}

TEST(SignalQuality, ClosedFormMatchesExplicitFitOnGroupedStridedPaddedConv) {
  conv_case({4, 6, 2, 3, 2, 1, 1, 7}, 11);
}

TEST(SignalQuality, ClosedFormMatchesExplicitFitOnDilatedConv) {
  conv_case({2, 3, 1, 2, 1, 0, 2, 6}, 13);
}

// Every sum of the ρ(S) statistics, with what a sample flipping between the regimes z > 0 and z ≤ 0
// moves in it (nothing where the term is continuous at z = 0: t = relu(z) vanishes there).
using QualitySum = std::vector<double> QualityLayerStatistics::*;
using FlipSum = const std::vector<double> RegimeFlips::*;
const std::vector<std::tuple<const char*, QualitySum, FlipSum>> kQualitySums = {
    {"sum_x", &QualityLayerStatistics::sum_x, nullptr},
    {"sum_xx", &QualityLayerStatistics::sum_xx, nullptr},
    {"sum_x_yp", &QualityLayerStatistics::sum_x_yp, &RegimeFlips::sum_abs_xy},
    {"sum_x_yn", &QualityLayerStatistics::sum_x_yn, &RegimeFlips::sum_abs_xy},
    {"sum_x_t", &QualityLayerStatistics::sum_x_t, nullptr},
    {"sum_yp", &QualityLayerStatistics::sum_yp, &RegimeFlips::sum_abs_y},
    {"sum_yn", &QualityLayerStatistics::sum_yn, &RegimeFlips::sum_abs_y},
    {"sum_yp2", &QualityLayerStatistics::sum_yp2, &RegimeFlips::sum_y2},
    {"sum_yn2", &QualityLayerStatistics::sum_yn2, &RegimeFlips::sum_y2},
    {"sum_t", &QualityLayerStatistics::sum_t, nullptr},
    {"sum_t2", &QualityLayerStatistics::sum_t2, nullptr},
    {"sum_yp_t", &QualityLayerStatistics::sum_yp_t, nullptr},
    {"sum_yn_t", &QualityLayerStatistics::sum_yn_t, nullptr}};

// Each sum of `got` within `rel` of the largest in its array of `want`, plus the flips' share (if given).
void expect_same_quality_statistics(const QualityStatistics& got, const QualityStatistics& want, double rel,
                                    const std::vector<RegimeFlips>* flips, const std::string& what) {
  EXPECT_EQ(got.images, want.images) << what;
  ASSERT_EQ(got.layers().size(), want.layers().size()) << what;
  for (size_t l = 0; l < want.layers().size(); ++l) {
    const QualityLayerStatistics &g = got.layers()[l], &w = want.layers()[l];
    EXPECT_EQ(g.count, w.count) << what << " " << w.node;
    ASSERT_EQ(w.output_axis, 0) << "flip shares are neuron-major";
    for (const auto& [name, member, flip] : kQualitySums) {
      const std::vector<double>&a = g.*member, &b = w.*member;
      ASSERT_EQ(a.size(), b.size()) << what << " " << w.node << " " << name;
      double scale = 0.0, worst = 0.0;
      for (double v : b) scale = std::max(scale, std::abs(v));
      const std::vector<double>* moved = flips != nullptr && flip != nullptr ? &((*flips)[l].*flip) : nullptr;
      if (moved != nullptr) {
        ASSERT_EQ(moved->size(), b.size()) << what << " " << w.node << " " << name;
      }
      for (size_t i = 0; i < b.size(); ++i)
        worst = std::max(worst, std::abs(a[i] - b[i]) - rel * scale - (moved != nullptr ? (*moved)[i] : 0.0));
      EXPECT_LE(worst, 0.0) << what << ": layer " << w.node << " " << name << " differs by " << worst
                            << " beyond " << rel << " of its largest value " << scale;
    }
  }
}

// As for the pattern statistics (pattern_fit_test.cpp): with the same per-sample forward values (each
// sample alone), splitting and merging change the float64 sums only by the rounding of the additions;
// other batch sizes change the float32 forward values by rounding and may flip samples at z ≈ 0.
TEST(SignalQuality, StatisticsDoNotDependOnBatchingAndMerge) {
  const Model model = Model::load(kShared + "cnn_dynbatch.onnx");
  const Tensor data = rows_of(read_npy(kShared + "fmnist_train2000.npy"), 0, 80);
  const QualityStatistics alone = quality_on(model, data, 1);
  QualityStatistics merged_alone = quality_on(model, rows_of(data, 0, 30), 1);
  merged_alone.merge(quality_on(model, rows_of(data, 30, 80), 1));
  EXPECT_EQ(merged_alone.images, 80);
  expect_same_quality_statistics(merged_alone, alone, 1e-12, nullptr, "merged, samples alone");

  // 80 images at once: the second convolution's patches are staged in chunks of 37 images.
  const double tau = forward_rounding_bound(model);
  const std::vector<RegimeFlips> flips = possible_regime_flips(model, data, tau);
  expect_same_quality_statistics(quality_on(model, data, 80), alone, 4.0 * tau, &flips, "batch 80");
  QualityStatistics merged = quality_on(model, rows_of(data, 0, 30), 4);
  merged.merge(quality_on(model, rows_of(data, 30, 80), 7));
  expect_same_quality_statistics(merged, alone, 4.0 * tau, &flips, "merged, batches 4 and 7");
}

// ---------------------------------------------------------------------------------------------------
// The paper's linear toy (§2): x = a_s·y + a_d·ε, w = (1, −1).

TEST(SignalQuality, LinearToy) {
  const Model model = Model::load(kToy + "model.onnx");
  const Tensor data = read_npy(kToy + "train.npy");
  const int64_t n = data.dim(0), third = n / 3;
  const PatternFile pf = patterns_on(model, rows_of(data, 0, third));
  const QualityStatistics q2 = quality_on(model, rows_of(data, third, 2 * third), 1024);
  const QualityStatistics q3 = quality_on(model, rows_of(data, 2 * third, n), 1024);
  const LayerQuality q = signal_quality(model, pf, q2, q3, QualityOutput::pre).at(0);
  std::cout << "linear toy, pre: random " << q.mean_rho.at("random") << ", S_w " << q.mean_rho.at("S_w")
            << ", S_a " << q.mean_rho.at("S_a") << ", S_a+- " << q.mean_rho.at("S_a+-") << "\n";
  EXPECT_EQ(q.neurons_used, 1);
  EXPECT_GT(q.mean_rho.at("S_a"), 0.99);
  EXPECT_LT(q.mean_rho.at("S_w"), q.mean_rho.at("S_a"));
  // d = (y/2 + ε)(1, 1) for S_w: corr(y, y/2 + ε) = 0.5·σ_y / sqrt(σ_y²/4 + 1) with σ_y² = 1/3. The
  // population value against 3333 samples: sampling error about 1/√3333 ≈ 0.017; float32 rounding
  // (τ = 2u for this 2-input filter) is negligible.
  EXPECT_NEAR(q.mean_rho.at("S_w"), 1.0 - 0.5 / std::sqrt(3.0) / std::sqrt(1.0 / 12.0 + 1.0), 0.03);
}

// ---------------------------------------------------------------------------------------------------
// Fashion-MNIST: patterns on images 0–999, v on 1000–1499, ρ on 1500–1999.

void print_tables(const std::string& name, const std::vector<std::vector<LayerQuality>>& results) {
  for (size_t k = 0; k < results.size(); ++k) {
    std::cout << name << ", output " << (k == 0 ? "pre" : "post") << "\n"
              << std::left << std::setw(12) << "layer" << std::setw(6) << "op" << std::right << std::setw(10)
              << "neurons";
    for (const std::string& e : quality_estimators()) std::cout << std::setw(9) << e;
    std::cout << "\n";
    for (const LayerQuality& l : results[k]) {
      std::cout << std::left << std::setw(12) << l.node << std::setw(6) << l.op_type << std::right
                << std::setw(10) << (std::to_string(l.neurons_used) + "/" + std::to_string(l.neurons));
      for (const std::string& e : quality_estimators())
        std::cout << std::setw(9) << std::fixed << std::setprecision(4) << l.mean_rho.at(e);
      std::cout << "\n";
    }
  }
  std::cout.unsetf(std::ios::fixed);
}

void fashion_case(const std::string& file) {
  const auto start = std::chrono::steady_clock::now();
  const Model model = Model::load(kShared + file);
  const Tensor data = read_npy(kShared + "fmnist_train2000.npy");
  auto seconds = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  const PatternFile pf = patterns_on(model, rows_of(data, 0, 1000));
  const double t1 = seconds();
  const QualityStatistics q2 = quality_on(model, rows_of(data, 1000, 1500), 100);
  const QualityStatistics q3 = quality_on(model, rows_of(data, 1500, 2000), 100);
  const double t2 = seconds();
  const auto results = signal_quality(model, pf, q2, q3, {QualityOutput::pre, QualityOutput::post}, 0);
  std::cout << file << ": patterns " << t1 << " s, statistics " << t2 - t1 << " s, rho " << seconds() - t2
            << " s\n";
  print_tables(file, results);
  std::cout << file << ": " << std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count()
            << " s\n";
  for (const LayerQuality& l : results[0]) {
    EXPECT_GT(l.neurons_used, 0) << l.node;
    for (const char* fitted : {"S_a", "S_a+-"}) {
      for (const char* baseline : {"S_w", "random"})
        EXPECT_GT(l.mean_rho.at(fitted), l.mean_rho.at(baseline))
            << l.node << ": " << fitted << " vs " << baseline;
    }
  }
}

TEST(SignalQuality, FashionMlpFittedEstimatorsBeatFilterAndRandom) {
  fashion_case("mlp_dynbatch.onnx");
}

TEST(SignalQuality, FashionCnnFittedEstimatorsBeatFilterAndRandom) {
  fashion_case("cnn_dynbatch.onnx");
}

// ---------------------------------------------------------------------------------------------------
// sieve signal-quality

std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

size_t count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t p = text.find(what); p != std::string::npos; p = text.find(what, p + 1)) ++n;
  return n;
}

TEST(SignalQuality, CommandLine) {
  ASSERT_TRUE(fs::exists(SIEVE_CLI)) << "build the sieve_cli target first";
  const Tensor data = read_npy(kShared + "fmnist_train2000.npy");
  const std::string mlp = kShared + "mlp_dynbatch.onnx", cnn = kShared + "cnn_dynbatch.onnx";
  const std::string split2 = temp("split2.npy").string(), split3 = temp("split3.npy").string();
  write_npy(split2, rows_of(data, 200, 300));
  write_npy(split3, rows_of(data, 300, 400));
  const std::string patterns = temp("mlp.safetensors").string(), other = temp("cnn.safetensors").string();
  write_pattern_file(patterns, patterns_on(Model::load(mlp), rows_of(data, 0, 200)));
  write_pattern_file(other, patterns_on(Model::load(cnn), rows_of(data, 0, 20)));

  const std::string json = temp("quality.json").string(), svg = temp("quality.svg").string();
  const CliRun r =
      sieve_cli("signal-quality " + mlp + " --patterns " + patterns + " --data " + split2 + " --eval " +
                split3 + " --json " + json + " --svg " + svg + " --seed 7 --batch 32");
  ASSERT_EQ(r.code, 0) << r.err;
  std::cout << r.out;
  EXPECT_NE(r.out.find("S_a+-"), std::string::npos);
  EXPECT_NE(r.out.find("post"), std::string::npos);

  const nlohmann::json j = nlohmann::json::parse(read_text(json));
  EXPECT_EQ(j.at("fit_images"), 100);
  EXPECT_EQ(j.at("eval_images"), 100);
  EXPECT_EQ(j.at("seed"), 7);
  for (const char* output : {"pre", "post"}) {
    const nlohmann::json& layers = j.at("outputs").at(output).at("layers");
    ASSERT_EQ(layers.size(), 3u) << output;
    for (const nlohmann::json& l : layers) {
      EXPECT_GT(l.at("neurons_used").get<int64_t>(), 0);
      EXPECT_EQ(l.at("neurons_used").get<int64_t>() + l.at("neurons_dead").get<int64_t>(),
                l.at("neurons").get<int64_t>());
      for (const std::string& e : quality_estimators()) {
        EXPECT_TRUE(l.at("mean_rho").at(e).is_number()) << output << " " << e;
        EXPECT_EQ(l.at("rho").at(e).size(), l.at("neurons").get<size_t>());
      }
    }
  }
  const std::string text = read_text(svg);
  EXPECT_NE(text.find("<svg"), std::string::npos);
  EXPECT_NE(text.find("</svg>"), std::string::npos);
  EXPECT_EQ(count(text, "<polyline"), 8u);  // 4 estimators × 2 outputs
  for (const std::string& e : quality_estimators())
    EXPECT_EQ(count(text, "data-series=\"" + e + "\""), 2u) << e;
  EXPECT_EQ(count(text, "<g "), count(text, "</g>"));

  // One output only.
  const CliRun pre = sieve_cli("signal-quality " + mlp + " --patterns " + patterns + " --data " + split2 +
                               " --eval " + split3 + " --output pre");
  ASSERT_EQ(pre.code, 0) << pre.err;
  EXPECT_EQ(pre.out.find("post:"), std::string::npos);

  // A pattern file of another model: one clear line, non-zero exit.
  const CliRun bad =
      sieve_cli("signal-quality " + mlp + " --patterns " + other + " --data " + split2 + " --eval " + split3);
  EXPECT_NE(bad.code, 0);
  EXPECT_NE(bad.err.find("sieve: error:"), std::string::npos) << bad.err;
  EXPECT_NE(bad.err.find("another model"), std::string::npos) << bad.err;
  EXPECT_EQ(count(bad.err, "\n"), 1u) << bad.err;
}

}  // namespace
}  // namespace sieve
