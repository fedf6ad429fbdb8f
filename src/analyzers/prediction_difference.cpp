// Prediction difference analysis (Zintgraf, Cohen, Adel & Welling 2017, after Robnik-Šikonja &
// Kononenko 2008): every k × k window of an image (all channels) is replaced by n samples of what it
// could have been, and the change of the target class's probability is measured as weight of evidence.
// The samples come from the data: marginal sampling copies the window of other data images at the same
// place; conditional sampling draws it from a multivariate normal given the (k+2l) × (k+2l) patch around
// it, its mean and covariance estimated over every patch position of the data.

#include "analyzers/prediction_difference.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <numeric>
#include <random>
#include <tuple>

#include "analyzers/gaussian_condition.hpp"
#include "sieve/batch.hpp"
#include "sieve/error.hpp"

namespace sieve::analyzers {

GaussianCondition condition_gaussian(const Eigen::VectorXd& mean, const Eigen::MatrixXd& covariance,
                                     const std::vector<Eigen::Index>& window,
                                     const std::vector<Eigen::Index>& given, double ridge) {
  const auto w = static_cast<Eigen::Index>(window.size()), g = static_cast<Eigen::Index>(given.size());
  GaussianCondition c;
  c.mean_window = mean(window);
  c.mean_given = mean(given);
  const Eigen::MatrixXd ww = covariance(window, window);
  Eigen::MatrixXd conditional = ww;
  if (g > 0) {
    Eigen::MatrixXd gg = covariance(given, given);
    gg.diagonal().array() += ridge;
    const Eigen::MatrixXd gw = covariance(given, window);
    c.gain = gg.ldlt().solve(gw).transpose();  // Σ_wg Σ_gg⁻¹, Σ_gg symmetric
    conditional -= c.gain * gw;
  } else {
    c.gain = Eigen::MatrixXd::Zero(w, 0);
  }
  // A square root of the (symmetrised) conditional covariance, its rounding-negative eigenvalues as 0.
  const Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eigen(0.5 * (conditional + conditional.transpose()));
  c.factor = eigen.eigenvectors() * eigen.eigenvalues().cwiseMax(0.0).cwiseSqrt().asDiagonal();
  return c;
}

namespace {

// The target's softmax probability of every row of a [rows, classes] output.
std::vector<double> target_probabilities(const Tensor& output, const Target& target) {
  const int64_t rows = output.dim(0), classes = output.size() / std::max<int64_t>(rows, 1);
  std::vector<double> p(static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) {
    const float* o = output.data() + r * classes;
    const double top = *std::max_element(o, o + classes);
    double sum = 0.0;
    for (int64_t j = 0; j < classes; ++j) sum += std::exp(static_cast<double>(o[j]) - top);
    p[static_cast<size_t>(r)] =
        std::exp(static_cast<double>(o[target.indices()[static_cast<size_t>(r)]]) - top) / sum;
  }
  return p;
}

// The target's score Σ weights ⊙ output of every row.
std::vector<double> target_scores(const Tensor& output, const Target& target) {
  const Tensor w = target.gradient_seed(output);
  const int64_t rows = output.dim(0), per = output.size() / std::max<int64_t>(rows, 1);
  std::vector<double> s(static_cast<size_t>(rows), 0.0);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t j = 0; j < per; ++j)
      s[static_cast<size_t>(r)] += static_cast<double>(w[r * per + j]) * output[r * per + j];
  }
  return s;
}

// log2 of the odds of p after Laplace's correction (p·N + 1)/(N + K): N training samples, K classes.
double log2_odds(double p, double samples, double classes) {
  const double corrected = (p * samples + 1.0) / (samples + classes);
  return std::log2(corrected / (1.0 - corrected));
}

class PredictionDifference : public Analyzer {
 public:
  PredictionDifference(Params& p, int64_t max_batch, std::shared_ptr<const Tensor> data)
      : data_(std::move(data)) {
    conditional_ = p.choice("mode", "conditional", {"conditional", "marginal"}) == "conditional";
    evidence_ = p.choice("measure", "evidence", {"evidence", "difference"}) == "evidence";
    window_ = p.integer("window", 4, 1, 4096);
    padding_ = p.integer("padding", 2, 0, 4096);
    samples_ = p.integer("n", 10, 1, 1000000);
    seed_ = static_cast<uint64_t>(p.integer("seed", 0, 0, INT64_MAX));
    max_batch_ = p.text("batch", "").empty() ? max_batch : p.integer("batch", max_batch, 1, 1 << 20);
    if (data_ == nullptr || data_->empty()) {
      throw Error(
          "method 'prediction_difference' samples its windows from data: give --data (the library: "
          "AnalyzerContext::data)");
    }
    if (data_->rank() != 4) {
      throw Error("prediction_difference: the data must be images [M, C, H, W], not " +
                  to_string(data_->shape()));
    }
    if (conditional_) estimate_patch_statistics();
  }

  Tensor explain(const ForwardPass& pass, const Target& target) const override {
    const Tensor& x = pass.input();
    const Shape sample(x.shape().begin() + 1, x.shape().end());
    const Shape data_sample(data_->shape().begin() + 1, data_->shape().end());
    if (pass.explains_embedding() || x.rank() != 4) {
      throw Error("prediction_difference: the explained input must be images [N, C, H, W], not " +
                  to_string(x.shape()));
    }
    if (sample != data_sample) {
      throw Error("prediction_difference: the data's samples " + to_string(data_sample) +
                  " differ from the input's " + to_string(sample));
    }
    const int64_t channels = x.dim(1), h = x.dim(2), w = x.dim(3), per = channels * h * w;
    if (window_ > h || window_ > w) {
      throw Error("prediction_difference: window " + std::to_string(window_) +
                  " is larger than the input's " + std::to_string(h) + "x" + std::to_string(w) + " pixels");
    }
    if (evidence_ && (!target.is_index() || pass.output().rank() != 2)) {
      throw Error(
          "prediction_difference: measure=evidence needs a class target of a [batch, classes] output "
          "(its softmax probability); measure=difference takes any target");
    }
    const int64_t across = w - window_ + 1, positions = (h - window_ + 1) * across;
    const int64_t n = x.dim(0), rows_per_sample = positions * samples_;
    const int64_t data_count = data_->dim(0);
    // Marginal: for sample i, draw s of window p is data image order[i][(p·n + s) mod M], so no image
    // repeats within a window while n ≤ M, and n = M takes each exactly once.
    std::vector<std::vector<int64_t>> order(static_cast<size_t>(n));
    for (int64_t i = 0; i < n && !conditional_; ++i) {
      std::vector<int64_t>& o = order[static_cast<size_t>(i)];
      o.resize(static_cast<size_t>(data_count));
      std::iota(o.begin(), o.end(), 0);
      std::mt19937_64 rng(seed_ * 1000003u + static_cast<uint64_t>(pass.sample(i)));
      std::shuffle(o.begin(), o.end(), rng);
    }
    std::map<std::tuple<int64_t, int64_t, int64_t, int64_t>, Conditioning> conditionings;
    if (conditional_) {
      for (int64_t pos = 0; pos < positions; ++pos) {
        const Clip c = clip(pos / across, pos % across, h, w);
        const auto key = std::make_tuple(c.top, c.bottom, c.left, c.right);
        if (conditionings.count(key) == 0) conditionings.emplace(key, conditioning(c, channels));
      }
    }
    Eigen::VectorXd given, drawn;
    const RowSource make = [&](int64_t r, float* row) {
      const int64_t i = r / rows_per_sample, pos = (r % rows_per_sample) / samples_, s = r % samples_;
      const int64_t y0 = pos / across, x0 = pos % across;
      std::memcpy(row, x.data() + i * per, static_cast<size_t>(per) * sizeof(float));
      if (!conditional_) {
        const std::vector<int64_t>& o = order[static_cast<size_t>(i)];
        const float* image = data_->data() + o[static_cast<size_t>((pos * samples_ + s) % data_count)] * per;
        for (int64_t c = 0; c < channels; ++c) {
          for (int64_t y = y0; y < y0 + window_; ++y) {
            for (int64_t xx = x0; xx < x0 + window_; ++xx)
              row[(c * h + y) * w + xx] = image[(c * h + y) * w + xx];
          }
        }
        return;
      }
      const Clip cl = clip(y0, x0, h, w);
      const Conditioning& k = conditionings.at(std::make_tuple(cl.top, cl.bottom, cl.left, cl.right));
      given.resize(static_cast<Eigen::Index>(k.given_pixels.size()));
      const float* image = x.data() + i * per;
      for (size_t g = 0; g < k.given_pixels.size(); ++g)
        given[static_cast<Eigen::Index>(g)] = image[offset(k.given_pixels[g], y0, x0, h, w)];
      std::seed_seq seeds{seed_, static_cast<uint64_t>(pass.sample(i)), static_cast<uint64_t>(pos),
                          static_cast<uint64_t>(s)};
      std::mt19937_64 rng(seeds);
      std::normal_distribution<double> normal;
      Eigen::VectorXd z(k.law.factor.cols());
      for (Eigen::Index j = 0; j < z.size(); ++j) z[j] = normal(rng);
      drawn = k.law.mean_window + k.law.factor * z;
      if (given.size() > 0) drawn += k.law.gain * (given - k.law.mean_given);
      for (size_t j = 0; j < k.window_pixels.size(); ++j)
        row[offset(k.window_pixels[j], y0, x0, h, w)] =
            static_cast<float>(drawn[static_cast<Eigen::Index>(j)]);
    };
    const auto measure = [&](const Tensor& out, const Target& t) {
      return evidence_ ? target_probabilities(out, t) : target_scores(out, t);
    };
    Shape row_shape = x.shape();
    row_shape[0] = 1;
    const int64_t total = n * rows_per_sample;
    std::vector<double> values(static_cast<size_t>(total));
    run_in_batches(pass.model(), total, row_shape, std::min(max_batch_, total), make,
                   [&](const Tensor& batch, int64_t begin, int64_t count) {
                     std::vector<int64_t> rows;
                     for (int64_t r = 0; r < batch.dim(0); ++r)
                       rows.push_back((begin + std::min(r, count - 1)) / rows_per_sample);
                     const std::vector<double> v = measure(pass.output_at(batch, rows), target.rows(rows));
                     for (int64_t r = 0; r < count; ++r)
                       values[static_cast<size_t>(begin + r)] = v[static_cast<size_t>(r)];
                   });
    std::vector<int64_t> all_rows(static_cast<size_t>(n));
    std::iota(all_rows.begin(), all_rows.end(), 0);
    const std::vector<double> original = measure(pass.output(), target);
    const double classes = static_cast<double>(pass.output().size() / std::max<int64_t>(n, 1));
    const double training = static_cast<double>(data_count);
    Tensor result = Tensor::uninitialized(x.shape());
    for (int64_t i = 0; i < n; ++i) {
      std::vector<double> sum(static_cast<size_t>(h * w), 0.0);
      std::vector<int64_t> count(static_cast<size_t>(h * w), 0);
      for (int64_t pos = 0; pos < positions; ++pos) {
        const double* v = values.data() + i * rows_per_sample + pos * samples_;
        const double without = std::accumulate(v, v + samples_, 0.0) / static_cast<double>(samples_);
        const double with = original[static_cast<size_t>(i)];
        const double difference =
            evidence_ ? log2_odds(with, training, classes) - log2_odds(without, training, classes)
                      : with - without;
        const int64_t y0 = pos / across, x0 = pos % across;
        for (int64_t y = y0; y < y0 + window_; ++y) {
          for (int64_t xx = x0; xx < x0 + window_; ++xx) {
            sum[static_cast<size_t>(y * w + xx)] += difference;
            ++count[static_cast<size_t>(y * w + xx)];
          }
        }
      }
      for (int64_t c = 0; c < channels; ++c) {
        for (int64_t e = 0; e < h * w; ++e)
          result[i * per + c * h * w + e] = static_cast<float>(
              sum[static_cast<size_t>(e)] / static_cast<double>(count[static_cast<size_t>(e)]));
      }
    }
    return result;
  }

 private:
  // How many rows and columns of a window's (k+2l)-patch fall outside the image, per side.
  struct Clip {
    int64_t top, bottom, left, right;
  };
  // A pixel of the patch: channel, row and column in the full patch.
  struct PatchPixel {
    int64_t channel, row, column;
  };
  // The conditional law of a window given the patch pixels inside the image, for one kind of clipping.
  struct Conditioning {
    std::vector<PatchPixel> window_pixels, given_pixels;
    GaussianCondition law;
  };

  int64_t patch() const { return window_ + 2 * padding_; }

  Clip clip(int64_t y0, int64_t x0, int64_t h, int64_t w) const {
    return {std::max<int64_t>(padding_ - y0, 0), std::max<int64_t>(y0 + window_ + padding_ - h, 0),
            std::max<int64_t>(padding_ - x0, 0), std::max<int64_t>(x0 + window_ + padding_ - w, 0)};
  }

  // The flat image index of patch pixel `p` of the window at (y0, x0).
  int64_t offset(const PatchPixel& p, int64_t y0, int64_t x0, int64_t h, int64_t w) const {
    return (p.channel * h + y0 - padding_ + p.row) * w + x0 - padding_ + p.column;
  }

  int64_t patch_index(const PatchPixel& p) const {
    return (p.channel * patch() + p.row) * patch() + p.column;
  }

  Conditioning conditioning(const Clip& c, int64_t channels) const {
    Conditioning k;
    std::vector<Eigen::Index> window, given;
    for (int64_t ch = 0; ch < channels; ++ch) {
      for (int64_t r = c.top; r < patch() - c.bottom; ++r) {
        for (int64_t col = c.left; col < patch() - c.right; ++col) {
          const PatchPixel p{ch, r, col};
          const bool inside =
              r >= padding_ && r < padding_ + window_ && col >= padding_ && col < padding_ + window_;
          (inside ? k.window_pixels : k.given_pixels).push_back(p);
          (inside ? window : given).push_back(static_cast<Eigen::Index>(patch_index(p)));
        }
      }
    }
    k.law = condition_gaussian(patch_mean_, patch_covariance_, window, given, ridge_);
    return k;
  }

  // Mean and covariance of the (k+2l)² · C values of a patch, over every patch position of every data
  // image (the statistics are taken as the same everywhere in the image, as Zintgraf et al. do).
  void estimate_patch_statistics() {
    const int64_t m = data_->dim(0), channels = data_->dim(1), h = data_->dim(2), w = data_->dim(3);
    const int64_t size = patch();
    if (size > h || size > w) {
      throw Error("prediction_difference: the patch of window + 2·padding = " + std::to_string(size) +
                  " pixels is larger than the data's " + std::to_string(h) + "x" + std::to_string(w) +
                  " images");
    }
    const Eigen::Index dims = static_cast<Eigen::Index>(channels * size * size);
    const int64_t across = w - size + 1;
    Eigen::MatrixXd sum_outer = Eigen::MatrixXd::Zero(dims, dims);
    Eigen::VectorXd sum = Eigen::VectorXd::Zero(dims);
    Eigen::MatrixXd patches(across, dims);  // the patches of one row of positions
    for (int64_t i = 0; i < m; ++i) {
      const float* image = data_->data() + i * channels * h * w;
      for (int64_t y0 = 0; y0 + size <= h; ++y0) {
        for (int64_t x0 = 0; x0 < across; ++x0) {
          for (int64_t c = 0; c < channels; ++c) {
            for (int64_t r = 0; r < size; ++r) {
              for (int64_t col = 0; col < size; ++col)
                patches(x0, (c * size + r) * size + col) = image[(c * h + y0 + r) * w + x0 + col];
            }
          }
        }
        sum_outer.selfadjointView<Eigen::Lower>().rankUpdate(patches.transpose());
        sum += patches.colwise().sum().transpose();
      }
    }
    const double count = static_cast<double>(m * (h - size + 1) * across);
    patch_mean_ = sum / count;
    const Eigen::MatrixXd second = sum_outer.selfadjointView<Eigen::Lower>();
    patch_covariance_ = second / count - patch_mean_ * patch_mean_.transpose();
    // 1e-6 of the mean variance: far below any variance that carries information, enough to invert
    // a block with constant pixels.
    ridge_ = std::max(1e-6 * patch_covariance_.diagonal().mean(), 1e-12);
  }

  std::shared_ptr<const Tensor> data_;
  bool conditional_ = true, evidence_ = true;
  int64_t window_, padding_, samples_, max_batch_;
  uint64_t seed_;
  Eigen::VectorXd patch_mean_;
  Eigen::MatrixXd patch_covariance_;
  double ridge_ = 0.0;
};

}  // namespace

std::unique_ptr<Analyzer> make_prediction_difference(Params& p, int64_t max_batch,
                                                     std::shared_ptr<const Tensor> data) {
  return std::make_unique<PredictionDifference>(p, max_batch, std::move(data));
}

}  // namespace sieve::analyzers
