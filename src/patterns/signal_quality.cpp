// Signal-estimator quality ρ(S) in closed form (docs/signal_quality.md).
//
// Statistics: one forward pass per batch; per layer (and Conv group) the patch matrix X [D, samples]
// — a Conv's from the op itself run with an identity kernel, a dense layer's its input rows — and the
// per-neuron "outputs" G = (y_p, y_n, t) [3·neurons, samples] are staged in float64, then Σxxᵀ += XXᵀ,
// Σx·g += G Xᵀ and the scalar sums. Every product is formed in float64 from float32 values, so the
// sums are exact sample moments of (x, y_p, y_n, t) up to float64 rounding.
//
// ρ(S): for d = x − a·y_p − b·y_n (a = b = u for the single-direction estimators),
//   Σ_d = Σ_x + U C Uᵀ,  cov(d, t) = cov(x, t) − a·cov(y_p, t) − b·cov(y_n, t),
// with U = [u, c], C = [[var y, −1], [−1, 0]] (rank 2) or U = [a, b, c_p, c_n],
// C = [[V_pp, V_pn, −1, 0], [V_pn, V_nn, 0, −1], [−1, 0, 0, 0], [0, −1, 0, 0]] (rank 4). With
// A = Σ_x + λI factorized once per layer and group, v* = (A + UCUᵀ)⁻¹ cov(d, t) is
//   v* = z − Z (I + C UᵀZ)⁻¹ C Uᵀ z,   Z = A⁻¹U, z = A⁻¹ cov(d, t),
// and on the evaluation split var(v*ᵀd) and cov(v*ᵀd, t) are the same low-rank expressions.

#include "sieve/signal_quality.hpp"

#include <Eigen/Dense>
#ifdef _OPENMP
#include <omp.h>
#endif
#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>

#include "patterns/layer_pass.hpp"
#include "sieve/error.hpp"
#include "sieve/executor.hpp"

namespace sieve {
namespace {

using Matrix = Eigen::MatrixXd;
using Vector = Eigen::VectorXd;
using RowMajor = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using FloatRowMajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// Largest Σxxᵀ (doubles) a layer may need, and the size of the float64 staging matrices.
constexpr int64_t kMaxCovarianceElements = int64_t{1} << 30;
constexpr int64_t kStagingElements = int64_t{1} << 22;

const std::vector<std::string> kEstimators{"random", "S_w", "S_a", "S_a+-"};

// Rows [begin, end) of a batch.
Tensor rows_of(const Tensor& t, int64_t begin, int64_t end) {
  if (begin == 0 && end == t.dim(0)) return t;
  Shape shape = t.shape();
  shape[0] = end - begin;
  const int64_t per = t.size() / t.dim(0);
  return Tensor(shape,
                std::span<const float>(t.data() + begin * per, static_cast<size_t>((end - begin) * per)));
}

size_t at(int64_t i) {
  return static_cast<size_t>(i);
}

int max_threads() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

// The large products are split here into coarse, independent pieces, one per thread (Eigen runs each
// piece single-threaded inside the parallel region): Eigen's own parallel GEMM synchronizes its threads
// many times per product and slows down badly when the cores are shared with other processes.

// out = f(in) column block by column block, the blocks on separate threads (f maps columns independently).
template <class F>
Matrix by_column_blocks(const Matrix& in, int64_t rows_out, const F& f) {
  const int64_t cols = in.cols(), threads = std::max<int64_t>(1, std::min<int64_t>(max_threads(), cols / 16));
  Matrix out(rows_out, cols);
#pragma omp parallel for schedule(static, 1) num_threads(static_cast <int>(threads)) if (threads > 1)
  for (int64_t k = 0; k < threads; ++k) {
    const int64_t c0 = cols * k / threads, c1 = cols * (k + 1) / threads;
    out.middleCols(c0, c1 - c0) = f(in.middleCols(c0, c1 - c0));
  }
  return out;
}

// Adds the moments of one staged block: X [D, cols] (patches of group g), G [3m, cols] (y_p, y_n, t of
// the group's m neurons). The columns are split among threads, each with its own partial sums.
void add_moments(QualityLayerStatistics& s, int64_t g, const Matrix& x, const RowMajor& gy) {
  const int64_t d = s.patch, m = gy.rows() / 3, j0 = g * m, cols = x.cols();
  int64_t threads = std::min<int64_t>(max_threads(), cols / 256);
  if (threads > 1 && d * d * threads > kMaxCovarianceElements / 8) threads = 1;
  threads = std::max<int64_t>(threads, 1);
  Eigen::Map<Matrix> sum_xx(s.sum_xx.data() + g * d * d, d, d);
  std::vector<Matrix> xx(static_cast<size_t>(threads)), cross(static_cast<size_t>(threads));
  if (threads == 1) {
    sum_xx.selfadjointView<Eigen::Lower>().rankUpdate(x);
    cross[0].noalias() = gy * x.transpose();
  } else {
#pragma omp parallel for schedule(static, 1) num_threads(static_cast <int>(threads))
    for (int64_t k = 0; k < threads; ++k) {
      const int64_t c0 = cols * k / threads, c1 = cols * (k + 1) / threads;
      Matrix& p = xx[static_cast<size_t>(k)];
      p = Matrix::Zero(d, d);
      p.selfadjointView<Eigen::Lower>().rankUpdate(x.middleCols(c0, c1 - c0));
      cross[static_cast<size_t>(k)].noalias() =
          gy.middleCols(c0, c1 - c0) * x.middleCols(c0, c1 - c0).transpose();
    }
    for (int64_t k = 1; k < threads; ++k) {
      xx[0] += xx[static_cast<size_t>(k)];
      cross[0] += cross[static_cast<size_t>(k)];
    }
    sum_xx.triangularView<Eigen::Lower>() += xx[0];
  }
  Eigen::Map<Vector>(s.sum_x.data() + g * d, d) += x.rowwise().sum();
  const Matrix& c = cross[0];  // [3m, D]
  Eigen::Map<RowMajor>(s.sum_x_yp.data() + j0 * d, m, d) += c.topRows(m);
  Eigen::Map<RowMajor>(s.sum_x_yn.data() + j0 * d, m, d) += c.middleRows(m, m);
  Eigen::Map<RowMajor>(s.sum_x_t.data() + j0 * d, m, d) += c.bottomRows(m);
  for (int64_t r = 0; r < m; ++r) {
    const size_t j = at(j0 + r);
    const auto yp = gy.row(r), yn = gy.row(m + r), t = gy.row(2 * m + r);
    s.sum_yp[j] += yp.sum();
    s.sum_yn[j] += yn.sum();
    s.sum_yp2[j] += yp.squaredNorm();
    s.sum_yn2[j] += yn.squaredNorm();
    s.sum_t[j] += t.sum();
    s.sum_t2[j] += t.squaredNorm();
    s.sum_yp_t[j] += yp.dot(t);
    s.sum_yn_t[j] += yn.dot(t);
  }
}

// (y_p, y_n, t) of output element i into rows r, m + r, 2m + r of column c.
inline void stage_outputs(RowMajor& gy, int64_t m, int64_t r, int64_t c, float z, float y) {
  const bool on = z > 0.0f;
  gy(r, c) = on ? static_cast<double>(y) : 0.0;
  gy(m + r, c) = on ? 0.0 : static_cast<double>(y);
  gy(2 * m + r, c) = on ? static_cast<double>(z) : 0.0;
}

void accumulate_convolution(const LinearOp& op, const Tensor& identity, const Tensor& x, const Tensor& z,
                            const Tensor& y, QualityLayerStatistics& s) {
  const int64_t images = x.dim(0), c_out = s.neurons, groups = s.groups, d = s.patch, m = c_out / groups;
  const int64_t positions = images == 0 ? 0 : z.size() / (images * c_out);
  if (positions == 0) return;
  // The identity kernel's output [images, groups·D, positions], a few images at a time.
  const int64_t per_chunk = std::max<int64_t>(1, kStagingElements / std::max<int64_t>(1, d * positions));
  for (int64_t i0 = 0; i0 < images; i0 += per_chunk) {
    const int64_t i1 = std::min(images, i0 + per_chunk), n = i1 - i0;
    const Tensor patches = op.apply(rows_of(x, i0, i1), identity, Tensor());
    if (patches.size() != n * groups * d * positions)
      throw Error("layer '" + s.node + "': identity-kernel patches have shape " + to_string(patches.shape()));
    Matrix xs(d, n * positions);
    RowMajor gy(3 * m, n * positions);
    for (int64_t g = 0; g < groups; ++g) {
      for (int64_t i = 0; i < n; ++i) {
        const float* p = patches.data() + ((i * groups + g) * d) * positions;
        xs.middleCols(i * positions, positions) =
            Eigen::Map<const FloatRowMajor>(p, d, positions).cast<double>();
        for (int64_t r = 0; r < m; ++r) {
          const int64_t base = ((i0 + i) * c_out + g * m + r) * positions;
          for (int64_t q = 0; q < positions; ++q)
            stage_outputs(gy, m, r, i * positions + q, z[base + q], y[base + q]);
        }
      }
      add_moments(s, g, xs, gy);
    }
  }
}

void accumulate_dense(const Node& node, const Tensor& x, const Tensor& z, const Tensor& y,
                      QualityLayerStatistics& s) {
  const int64_t n = s.neurons, k = s.patch, rows = n == 0 ? 0 : z.size() / n;
  if (x.size() != rows * k)
    throw Error(node.spec.where() + ": input " + to_string(x.shape()) + " does not hold " +
                std::to_string(rows) + " rows of " + std::to_string(k));
  const bool trans_a = node.spec.attributes.get_int("transA", 0) != 0;
  const int64_t per_chunk = std::max<int64_t>(1, kStagingElements / std::max<int64_t>(1, std::max(k, 3 * n)));
  for (int64_t r0 = 0; r0 < rows; r0 += per_chunk) {
    const int64_t len = std::min(rows, r0 + per_chunk) - r0;
    Matrix xs;
    if (trans_a) {
      xs = Eigen::Map<const FloatRowMajor>(x.data(), k, rows).middleCols(r0, len).cast<double>();
    } else {
      xs = Eigen::Map<const FloatRowMajor>(x.data(), rows, k).middleRows(r0, len).transpose().cast<double>();
    }
    RowMajor gy(3 * n, len);
    for (int64_t r = 0; r < len; ++r) {
      const int64_t base = (r0 + r) * n;
      for (int64_t j = 0; j < n; ++j) stage_outputs(gy, n, j, r, z[base + j], y[base + j]);
    }
    add_moments(s, 0, xs, gy);
  }
}

void add(std::vector<double>& a, const std::vector<double>& b) {
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) a[i] += b[i];
}

// ---------------------------------------------------------------------------------------------------
// ρ(S)

// Element k of neuron j of a weight-shaped tensor.
Vector neuron_row(const Tensor& t, const QualityLayerStatistics& s, int64_t j) {
  Vector v(s.patch);
  for (int64_t k = 0; k < s.patch; ++k) v[k] = t[s.output_axis == 0 ? j * s.patch + k : k * s.neurons + j];
  return v;
}

// Mean and covariance of the patches of group g.
struct GroupMoments {
  Vector mean;
  Matrix cov;
};

GroupMoments group_moments(const QualityLayerStatistics& s, int64_t g) {
  const int64_t d = s.patch;
  const double n = s.count;
  GroupMoments m;
  m.mean = Eigen::Map<const Vector>(s.sum_x.data() + g * d, d) / n;
  const Matrix lower = Eigen::Map<const Matrix>(s.sum_xx.data() + g * d * d, d, d) / n;
  m.cov = lower.selfadjointView<Eigen::Lower>();
  m.cov.noalias() -= m.mean * m.mean.transpose();
  return m;
}

// Covariances of one neuron in one split for one output: c_p = cov(x, y_p), c_n = cov(x, y_n),
// c_t = cov(x, t); V_pp, V_nn, V_pn of (y_p, y_n); cov(y_p, t), cov(y_n, t); var(t); E[t²].
struct NeuronMoments {
  Vector cp, cn, ct;
  double vpp = 0, vnn = 0, vpn = 0, cpt = 0, cnt = 0, vt = 0, t2 = 0;
  bool dead() const { return !(vt > 1e-12 * t2) || !(vt > 0.0); }
};

NeuronMoments neuron_moments(const QualityLayerStatistics& s, int64_t j, const Vector& mean,
                             QualityOutput output) {
  const int64_t d = s.patch;
  const size_t ju = at(j);
  const double n = s.count;
  NeuronMoments m;
  const double eyp = s.sum_yp[ju] / n, eyn = s.sum_yn[ju] / n;
  m.cp = Eigen::Map<const Vector>(s.sum_x_yp.data() + j * d, d) / n - mean * eyp;
  m.cn = Eigen::Map<const Vector>(s.sum_x_yn.data() + j * d, d) / n - mean * eyn;
  m.vpp = s.sum_yp2[ju] / n - eyp * eyp;
  m.vnn = s.sum_yn2[ju] / n - eyn * eyn;
  m.vpn = -eyp * eyn;  // y_p·y_n = 0
  if (output == QualityOutput::pre) {
    m.ct = m.cp + m.cn;
    m.cpt = m.vpp + m.vpn;
    m.cnt = m.vnn + m.vpn;
    m.vt = m.vpp + m.vnn + 2.0 * m.vpn;
    m.t2 = (s.sum_yp2[ju] + s.sum_yn2[ju]) / n;
  } else {
    const double et = s.sum_t[ju] / n;
    m.ct = Eigen::Map<const Vector>(s.sum_x_t.data() + j * d, d) / n - mean * et;
    m.cpt = s.sum_yp_t[ju] / n - eyp * et;
    m.cnt = s.sum_yn_t[ju] / n - eyn * et;
    m.t2 = s.sum_t2[ju] / n;
    m.vt = m.t2 - et * et;
  }
  return m;
}

uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// u = r / (wᵀr) for a standard Gaussian r drawn from (seed, layer, neuron); redrawn while wᵀr is tiny
// compared with |w||r|. Zero for a zero filter.
Vector random_direction(const Vector& w, uint64_t seed, size_t layer, int64_t neuron) {
  uint64_t state = seed;
  state = splitmix64(state) ^ (static_cast<uint64_t>(layer) << 40) ^ static_cast<uint64_t>(neuron);
  Vector r(w.size());
  const double wn = w.norm();
  if (wn == 0.0) return Vector::Zero(w.size());
  for (int attempt = 0; attempt < 64; ++attempt) {
    for (Eigen::Index k = 0; k < r.size(); k += 2) {  // Box–Muller
      const double u1 = (static_cast<double>(splitmix64(state) >> 11) + 1.0) * 0x1.0p-53;
      const double u2 = static_cast<double>(splitmix64(state) >> 11) * 0x1.0p-53;
      const double radius = std::sqrt(-2.0 * std::log(u1)), angle = 2.0 * std::numbers::pi * u2;
      r[k] = radius * std::cos(angle);
      if (k + 1 < r.size()) r[k + 1] = radius * std::sin(angle);
    }
    const double wr = w.dot(r);
    if (std::abs(wr) > 1e-3 * wn * r.norm()) return r / wr;
  }
  throw Error("no random direction with wᵀr ≠ 0 found");
}

// One estimator of one neuron: d = x − a·y_p − b·y_n; `single` when a = b (= u).
struct Estimator {
  Vector a, b;    // directions
  Vector aa, ab;  // A⁻¹a, A⁻¹b
  bool single = false;
};

// v* = (Σ_d + λI)⁻¹ cov(d, t) on the fit split, by the push-through identity.
Vector best_projection(const Estimator& e, const NeuronMoments& m, const Vector& acp, const Vector& acn,
                       const Vector& act) {
  Matrix u, z, c;
  Vector rhs;  // A⁻¹ cov(d, t)
  if (e.single) {
    const double var_y = m.vpp + m.vnn + 2.0 * m.vpn, cov_yt = m.cpt + m.cnt;
    u.resize(e.a.size(), 2);
    u << e.a, m.cp + m.cn;
    z.resize(e.a.size(), 2);
    z << e.aa, acp + acn;
    c.resize(2, 2);
    c << var_y, -1.0, -1.0, 0.0;
    rhs = act - e.aa * cov_yt;
  } else {
    u.resize(e.a.size(), 4);
    u << e.a, e.b, m.cp, m.cn;
    z.resize(e.a.size(), 4);
    z << e.aa, e.ab, acp, acn;
    c.resize(4, 4);
    c << m.vpp, m.vpn, -1.0, 0.0,  //
        m.vpn, m.vnn, 0.0, -1.0,   //
        -1.0, 0.0, 0.0, 0.0,       //
        0.0, -1.0, 0.0, 0.0;
    rhs = act - e.aa * m.cpt - e.ab * m.cnt;
  }
  const Matrix inner = Matrix::Identity(c.rows(), c.cols()) + c * (u.transpose() * z);
  const Vector q = inner.fullPivLu().solve(c * (u.transpose() * rhs));
  return rhs - z * q;
}

// corr(t, vᵀd) on the evaluation split; `sigma_v` = Σ_x v there. 0 when vᵀd has no variance.
double correlation(const Estimator& e, const NeuronMoments& m, const Vector& v, const Vector& sigma_v) {
  const double alpha = v.dot(e.a), beta = v.dot(e.b);
  const double num = v.dot(m.ct) - alpha * m.cpt - beta * m.cnt;
  const double var = v.dot(sigma_v) - 2.0 * alpha * v.dot(m.cp) - 2.0 * beta * v.dot(m.cn) +
                     alpha * alpha * m.vpp + beta * beta * m.vnn + 2.0 * alpha * beta * m.vpn;
  if (!(var > 0.0) || !(m.vt > 0.0)) return 0.0;
  return num / std::sqrt(var * m.vt);
}

void check_statistics(const QualityStatistics& stats, const std::vector<size_t>& layers, const Graph& graph,
                      const char* what) {
  if (stats.layers().size() != layers.size())
    throw Error(std::string("ρ(S) statistics (") + what + ") were made for another model");
  for (size_t l = 0; l < layers.size(); ++l) {
    if (stats.layers()[l].node != graph.nodes()[layers[l]].name)
      throw Error(std::string("ρ(S) statistics (") + what + ") of layer '" + stats.layers()[l].node +
                  "' do not fit node '" + graph.nodes()[layers[l]].name + "'");
    if (!(stats.layers()[l].count > 0))
      throw Error(std::string("ρ(S) statistics (") + what + ") hold no samples");
  }
}

// Cholesky factor of Σ_x + λI with λ = ridge · trace(Σ_x) / D, raised tenfold (up to 8 times) while
// rounding leaves the matrix indefinite.
Eigen::LLT<Matrix> regularized_factor(const Matrix& cov, double ridge, const std::string& node) {
  double lambda = ridge * cov.trace() / static_cast<double>(cov.rows());
  Matrix a = cov;
  a.diagonal().array() += lambda;
  Eigen::LLT<Matrix> llt(a);
  for (int attempt = 0; llt.info() != Eigen::Success && attempt < 8; ++attempt) {
    a.diagonal().array() += 9.0 * lambda;
    lambda *= 10.0;
    llt.compute(a);
  }
  if (llt.info() != Eigen::Success)
    throw Error("layer '" + node + "': the input covariance cannot be factorized");
  return llt;
}

// What the neurons of one group share: the statistics of both splits, the group's moments and factor,
// the layer's weights and fitted patterns, and which outputs are measured.
struct GroupContext {
  const QualityLayerStatistics &s2, &s3;
  const GroupMoments &m2, &m3;
  const Eigen::LLT<Matrix>& llt;
  const Tensor &w, &linear, &relu_positive, &relu_negative;
  const std::vector<QualityOutput>& outputs;
  bool need_post;
  uint64_t seed;
  size_t layer;
};

// Right-hand sides solved per neuron: [u_w, u_r, a, a₊, a₋, c_p, c_n, c_t(post)].
constexpr int64_t kRhs = 8;

// ρ of every estimator for neurons [j0, j1) of a group, written into q[mode].rho; counts the neurons used.
void group_chunk_quality(const GroupContext& c, int64_t j0, int64_t j1, std::vector<LayerQuality>& q) {
  const int64_t d = c.s2.patch, count = j1 - j0;
  const size_t modes = c.outputs.size(), estimators = kEstimators.size();
  std::vector<std::vector<NeuronMoments>> fit(modes), ev(modes);
  Matrix rhs(d, kRhs * count);
  for (int64_t i = 0; i < count; ++i) {
    const int64_t j = j0 + i;
    const Vector wj = neuron_row(c.w, c.s2, j);
    const double ww = wj.squaredNorm();
    rhs.col(kRhs * i) = ww > 0.0 ? Vector(wj / ww) : Vector::Zero(d);
    rhs.col(kRhs * i + 1) = random_direction(wj, c.seed, c.layer, j);
    rhs.col(kRhs * i + 2) = neuron_row(c.linear, c.s2, j);
    rhs.col(kRhs * i + 3) = neuron_row(c.relu_positive, c.s2, j);
    rhs.col(kRhs * i + 4) = neuron_row(c.relu_negative, c.s2, j);
    const NeuronMoments post =
        c.need_post ? neuron_moments(c.s2, j, c.m2.mean, QualityOutput::post) : NeuronMoments{};
    for (size_t k = 0; k < modes; ++k) {
      fit[k].push_back(
          c.outputs[k] == QualityOutput::post ? post : neuron_moments(c.s2, j, c.m2.mean, c.outputs[k]));
      ev[k].push_back(neuron_moments(c.s3, j, c.m3.mean, c.outputs[k]));
    }
    const NeuronMoments& any = fit[0].back();
    rhs.col(kRhs * i + 5) = any.cp;
    rhs.col(kRhs * i + 6) = any.cn;
    rhs.col(kRhs * i + 7) = c.need_post ? post.ct : Vector::Zero(d);
  }
  const Matrix solved =
      by_column_blocks(rhs, d, [&](const auto& block) { return Matrix(c.llt.solve(block)); });

  // Every v* of the chunk, then Σ_x(eval)·V at once.
  struct Job {
    size_t mode, estimator;
    int64_t i;
  };
  std::vector<Job> jobs;
  std::vector<Vector> vs;
  auto estimator = [&](int64_t i, size_t e) {
    Estimator est;
    const int64_t col0 = kRhs * i;
    const int64_t col = e == 0 ? col0 + 1 : e == 1 ? col0 : col0 + 2;  // random, S_w, S_a
    if (e < 3) {
      est.a = est.b = rhs.col(col);
      est.aa = est.ab = solved.col(col);
      est.single = true;
    } else {
      est.a = rhs.col(col0 + 3);
      est.b = rhs.col(col0 + 4);
      est.aa = solved.col(col0 + 3);
      est.ab = solved.col(col0 + 4);
    }
    return est;
  };
  for (int64_t i = 0; i < count; ++i) {
    const Vector acp = solved.col(kRhs * i + 5), acn = solved.col(kRhs * i + 6);
    for (size_t k = 0; k < modes; ++k) {
      const NeuronMoments& m = fit[k][at(i)];
      if (m.dead() || ev[k][at(i)].dead()) continue;
      ++q[k].neurons_used;
      const Vector act =
          c.outputs[k] == QualityOutput::post ? Vector(solved.col(kRhs * i + 7)) : Vector(acp + acn);
      for (size_t e = 0; e < estimators; ++e) {
        jobs.push_back({k, e, i});
        vs.push_back(best_projection(estimator(i, e), m, acp, acn, act));
      }
    }
  }
  if (jobs.empty()) return;
  Matrix v(d, static_cast<Eigen::Index>(vs.size()));
  for (size_t col = 0; col < vs.size(); ++col) v.col(static_cast<Eigen::Index>(col)) = vs[col];
  const Matrix sigma_v = by_column_blocks(v, d, [&](const auto& block) { return Matrix(c.m3.cov * block); });
  for (size_t col = 0; col < jobs.size(); ++col) {
    const Job& job = jobs[col];
    const double corr =
        correlation(estimator(job.i, job.estimator), ev[job.mode][at(job.i)],
                    v.col(static_cast<Eigen::Index>(col)), sigma_v.col(static_cast<Eigen::Index>(col)));
    q[job.mode].rho[kEstimators[job.estimator]][at(j0 + job.i)] = 1.0 - corr;
  }
}

// The mean ρ of each estimator over the neurons it was measured on (NaN where none).
void set_means(LayerQuality& lq) {
  for (const std::string& e : kEstimators) {
    double sum = 0.0;
    int64_t used = 0;
    for (double r : lq.rho[e]) {
      if (std::isnan(r)) continue;
      sum += r;
      ++used;
    }
    lq.mean_rho[e] = used > 0 ? sum / static_cast<double>(used) : std::numeric_limits<double>::quiet_NaN();
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------------

void QualityLayerStatistics::merge(const QualityLayerStatistics& other) {
  if (other.node != node || other.weight_shape != weight_shape || other.neurons != neurons ||
      other.groups != groups)
    throw Error("ρ(S) statistics of layer '" + other.node + "' " + to_string(other.weight_shape) +
                " cannot be merged with layer '" + node + "' " + to_string(weight_shape));
  count += other.count;
  for (auto member :
       {&QualityLayerStatistics::sum_x, &QualityLayerStatistics::sum_xx, &QualityLayerStatistics::sum_x_yp,
        &QualityLayerStatistics::sum_x_yn, &QualityLayerStatistics::sum_x_t, &QualityLayerStatistics::sum_yp,
        &QualityLayerStatistics::sum_yn, &QualityLayerStatistics::sum_yp2, &QualityLayerStatistics::sum_yn2,
        &QualityLayerStatistics::sum_t, &QualityLayerStatistics::sum_t2, &QualityLayerStatistics::sum_yp_t,
        &QualityLayerStatistics::sum_yn_t})
    add(this->*member, other.*member);
}

QualityStatistics::QualityStatistics(const Model& model) {
  const Graph& graph = model.graph();
  for (size_t n : pattern_layers(model)) {
    const Node& node = graph.nodes()[n];
    const LinearOp& op = *node.op->as_linear();
    const Tensor w = op.weight(patterns::constant_inputs(graph, node, Tensor()));
    QualityLayerStatistics s;
    s.node = node.name;
    s.op_type = node.spec.op_type;
    s.weight_shape = w.shape();
    s.output_axis = op.weight_output_axis();
    const bool conv = op.form() == LinearOp::Form::convolution;
    if ((conv && s.output_axis != 0) ||
        (!conv && (w.rank() != 2 || (s.output_axis != 0 && s.output_axis != 1))))
      throw Error(node.spec.where() +
                  ": ρ(S) needs output neurons on weight axis 0 of a Conv kernel or of a matrix");
    s.neurons = w.dim(s.output_axis);
    s.patch = s.neurons == 0 ? 0 : w.size() / s.neurons;
    s.groups = conv ? node.spec.attributes.get_int("group", 1) : 1;
    if (s.groups < 1 || s.neurons % s.groups != 0)
      throw Error(node.spec.where() + ": " + std::to_string(s.neurons) + " output channels in " +
                  std::to_string(s.groups) + " groups");
    if (s.groups * s.patch * s.patch > kMaxCovarianceElements)
      throw Error(node.spec.where() + ": the input covariance of " + std::to_string(s.groups) + " × " +
                  std::to_string(s.patch) + "² values is too large for ρ(S)");
    const size_t nn = at(s.neurons), d = at(s.patch), g = at(s.groups);
    s.sum_x.assign(g * d, 0.0);
    s.sum_xx.assign(g * d * d, 0.0);
    for (auto* v : {&s.sum_x_yp, &s.sum_x_yn, &s.sum_x_t}) v->assign(nn * d, 0.0);
    for (auto* v :
         {&s.sum_yp, &s.sum_yn, &s.sum_yp2, &s.sum_yn2, &s.sum_t, &s.sum_t2, &s.sum_yp_t, &s.sum_yn_t})
      v->assign(nn, 0.0);
    Tensor identity;
    if (conv) {
      // [groups·D, C_in/groups, k…]: output channel o picks element o mod D of its group's patch.
      Shape shape = w.shape();
      shape[0] = s.groups * s.patch;
      identity = Tensor(shape, 0.0f);
      for (int64_t o = 0; o < shape[0]; ++o) identity[o * s.patch + o % s.patch] = 1.0f;
    }
    layers_.push_back(std::move(s));
    identity_.push_back(std::move(identity));
  }
  if (layers_.empty()) throw Error("the model has no Conv, Gemm or MatMul layer with constant weights");
}

void QualityStatistics::accumulate(const Model& model, const Tensor& batch) {
  if (pattern_layers(model).size() != layers_.size())
    throw Error("ρ(S) statistics were made for another model");
  const std::vector<patterns::LayerPass> passes = patterns::run_pattern_layers(model, batch, "ρ(S)");
  for (size_t l = 0; l < passes.size(); ++l) {
    const patterns::LayerPass& p = passes[l];
    const Node& node = *p.node;
    QualityLayerStatistics& s = layers_[l];
    if (node.name != s.node) throw Error("ρ(S) statistics were made for another model");
    const LinearOp& op = *p.op;
    const Tensor &x = p.x, &z = p.z, &y = p.y;
    const int64_t axis = p.axis;
    if (z.dim(axis) != s.neurons)
      throw Error(node.spec.where() + ": output " + to_string(z.shape()) + " does not have " +
                  std::to_string(s.neurons) + " neurons on axis " + std::to_string(axis));
    s.count += static_cast<double>(z.size() / s.neurons);
    if (op.form() == LinearOp::Form::convolution) {
      accumulate_convolution(op, identity_[l], x, z, y, s);
    } else {
      accumulate_dense(node, x, z, y, s);
    }
  }
  images += batch.dim(0);
}

void QualityStatistics::merge(const QualityStatistics& other) {
  if (other.layers_.size() != layers_.size())
    throw Error("ρ(S) statistics with " + std::to_string(other.layers_.size()) +
                " layers cannot be merged with " + std::to_string(layers_.size()));
  for (size_t l = 0; l < layers_.size(); ++l) layers_[l].merge(other.layers_[l]);
  images += other.images;
}

QualityStatistics fit_quality_statistics(const Model& model, InputStream& data, int64_t batch,
                                         const std::function<void(int64_t, int64_t)>& progress) {
  QualityStatistics stats(model);
  patterns::for_each_batch(
      model, data, batch, [&](const Tensor& x) { stats.accumulate(model, x); }, progress, "ρ(S)");
  return stats;
}

QualityOutput parse_quality_output(const std::string& text) {
  if (text == "pre") return QualityOutput::pre;
  if (text == "post") return QualityOutput::post;
  throw Error("unknown output '" + text + "' (pre, post)");
}

std::string to_string(QualityOutput output) {
  return output == QualityOutput::pre ? "pre" : "post";
}

std::vector<double> quality_random_direction(const std::vector<double>& w, uint64_t seed, size_t layer,
                                             int64_t neuron) {
  const Vector u = random_direction(Eigen::Map<const Vector>(w.data(), static_cast<Eigen::Index>(w.size())),
                                    seed, layer, neuron);
  return std::vector<double>(u.data(), u.data() + u.size());
}

const std::vector<std::string>& quality_estimators() {
  return kEstimators;
}

std::vector<LayerQuality> signal_quality(const Model& model, const PatternFile& patterns,
                                         const QualityStatistics& fit_v, const QualityStatistics& eval,
                                         QualityOutput output, uint64_t seed, double ridge) {
  return signal_quality(model, patterns, fit_v, eval, std::vector<QualityOutput>{output}, seed, ridge).at(0);
}

std::vector<std::vector<LayerQuality>> signal_quality(const Model& model, const PatternFile& patterns,
                                                      const QualityStatistics& fit_v,
                                                      const QualityStatistics& eval,
                                                      const std::vector<QualityOutput>& outputs,
                                                      uint64_t seed, double ridge) {
  if (!(ridge > 0.0) || !std::isfinite(ridge)) throw Error("the ridge factor of ρ(S) must be > 0");
  const Graph& graph = model.graph();
  const std::vector<size_t> layers = pattern_layers(model);
  check_statistics(fit_v, layers, graph, "fit");
  check_statistics(eval, layers, graph, "evaluation");
  const std::vector<LayerPatterns> linear =
      estimate_patterns(model, patterns.statistics, PatternType::linear);
  const std::vector<LayerPatterns> relu = estimate_patterns(model, patterns.statistics, PatternType::relu);
  const bool need_post = std::find(outputs.begin(), outputs.end(), QualityOutput::post) != outputs.end();
  const size_t modes = outputs.size();
  const double nan = std::numeric_limits<double>::quiet_NaN();

  std::vector<std::vector<LayerQuality>> result(modes);
  for (size_t l = 0; l < layers.size(); ++l) {
    const Node& node = graph.nodes()[layers[l]];
    const QualityLayerStatistics &s2 = fit_v.layers()[l], &s3 = eval.layers()[l];
    if (s2.weight_shape != s3.weight_shape || s2.groups != s3.groups)
      throw Error("ρ(S) statistics of layer '" + s2.node +
                  "' differ between the fit and the evaluation data");
    const LinearOp& op = *node.op->as_linear();
    const Tensor w = op.weight(patterns::constant_inputs(graph, node, Tensor()));
    if (w.shape() != s2.weight_shape)
      throw Error("ρ(S) statistics of layer '" + s2.node + "' do not fit node '" + node.name + "'");
    const int64_t d = s2.patch, per_group = s2.groups == 0 ? 0 : s2.neurons / s2.groups;

    std::vector<LayerQuality> q(modes);
    for (LayerQuality& lq : q) {
      lq.node = node.name;
      lq.op_type = node.spec.op_type;
      lq.neurons = s2.neurons;
      for (const std::string& e : kEstimators) lq.rho[e].assign(at(s2.neurons), nan);
    }

    for (int64_t g = 0; g < s2.groups && d > 0; ++g) {
      const GroupMoments m2 = group_moments(s2, g), m3 = group_moments(s3, g);
      if (!(m2.cov.trace() > 0.0)) continue;  // constant input: every neuron of the group is dead
      const Eigen::LLT<Matrix> llt = regularized_factor(m2.cov, ridge, node.name);
      const GroupContext context{
          s2,      s3,        m2,   m3, llt, w, linear[l].positive, relu[l].positive, relu[l].negative,
          outputs, need_post, seed, l};
      // Neurons in chunks, so the right-hand sides stay within the staging budget.
      const int64_t chunk = std::max<int64_t>(1, kStagingElements / (d * kRhs));
      for (int64_t j0 = g * per_group; j0 < (g + 1) * per_group; j0 += chunk)
        group_chunk_quality(context, j0, std::min((g + 1) * per_group, j0 + chunk), q);
    }
    for (size_t k = 0; k < modes; ++k) {
      set_means(q[k]);
      result[k].push_back(std::move(q[k]));
    }
  }
  return result;
}

}  // namespace sieve
