// Meaningful perturbation (Fong & Vedaldi, "Interpretable explanations of black boxes by meaningful
// perturbation"; BK ch.8 §8.3 eq. 8.9). A mask m ∈ [0,1] over a grid of cells is upsampled bilinearly to
// the input and smoothed with a Gaussian of σ_m (M = S·U·m); the input, shifted by a random jitter τ, is
// blended with its perturbation b as Φ = M ⊙ x(· − τ) + (1 − M) ⊙ b. Adam minimises
//   deletion:     λ1 Σ(1 − m) + λ2 Σ‖∇m‖_β^β + f_c(Φ)
//   preservation: λ1 Σ m      + λ2 Σ‖∇m‖_β^β − f_c(Φ)
// with m clamped to [0,1] after every step. ∂f_c/∂Φ is the model's reverse pass; the rest of the chain
// (blend, smoothing, upsampling) runs through their adjoints here.

#include "analyzers/meaningful_perturbation.hpp"

#include <algorithm>
#include <cmath>
#include <random>

#include "sieve/batch.hpp"
#include "sieve/blur.hpp"
#include "sieve/error.hpp"

namespace sieve::analyzers {
namespace {

constexpr const char* kMethod = "meaningful_perturbation";

// Half-pixel source coordinate of output index `dst` when `from` cells cover `to` elements: the lower
// cell and the weight of the upper one.
void bilinear_source(int64_t dst, int64_t from, int64_t to, int64_t& lo, int64_t& hi, double& frac) {
  const double s = std::max(
      0.0, (static_cast<double>(dst) + 0.5) * static_cast<double>(from) / static_cast<double>(to) - 0.5);
  lo = std::min<int64_t>(static_cast<int64_t>(s), from - 1);
  hi = std::min<int64_t>(lo + 1, from - 1);
  frac = s - static_cast<double>(lo);
}

// Visits every (output element, grid cell, weight) of the bilinear upsampling.
template <class Visit>
void for_each_bilinear_weight(int64_t count, int64_t rows, int64_t cols, int64_t height, int64_t width,
                              Visit visit) {
  for (int64_t i = 0; i < count; ++i) {
    for (int64_t y = 0; y < height; ++y) {
      int64_t y0 = 0, y1 = 0;
      double fy = 0.0;
      bilinear_source(y, rows, height, y0, y1, fy);
      for (int64_t x = 0; x < width; ++x) {
        int64_t x0 = 0, x1 = 0;
        double fx = 0.0;
        bilinear_source(x, cols, width, x0, x1, fx);
        const int64_t out = (i * height + y) * width + x, cell = i * rows * cols;
        visit(out, cell + y0 * cols + x0, (1 - fy) * (1 - fx));
        visit(out, cell + y0 * cols + x1, (1 - fy) * fx);
        visit(out, cell + y1 * cols + x0, fy * (1 - fx));
        visit(out, cell + y1 * cols + x1, fy * fx);
      }
    }
  }
}

// The target's score per row of `output` and its gradient (the reverse pass's seed).
std::vector<double> score_and_seed(const Tensor& output, const Target& target, MaskOptions::Score score,
                                   Tensor& seed) {
  const int64_t rows = output.dim(0), per = output.size() / std::max<int64_t>(rows, 1);
  std::vector<double> scores(static_cast<size_t>(rows), 0.0);
  if (score == MaskOptions::Score::logit) {
    seed = target.gradient_seed(output);
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t j = 0; j < per; ++j)
        scores[static_cast<size_t>(r)] += static_cast<double>(seed[r * per + j]) * output[r * per + j];
    }
    return scores;
  }
  seed = Tensor(output.shape(), 0.0f);
  for (int64_t r = 0; r < rows; ++r) {
    const float* z = output.data() + r * per;
    const double top = *std::max_element(z, z + per);
    double total = 0.0;
    for (int64_t j = 0; j < per; ++j) total += std::exp(static_cast<double>(z[j]) - top);
    const int64_t c = target.indices().at(static_cast<size_t>(r));
    const double pc = std::exp(static_cast<double>(z[c]) - top) / total;
    // ∂p_c/∂z_j = p_c (δ_cj − p_j)
    for (int64_t j = 0; j < per; ++j) {
      const double pj = std::exp(static_cast<double>(z[j]) - top) / total;
      seed[r * per + j] = static_cast<float>(pc * ((j == c ? 1.0 : 0.0) - pj));
    }
    scores[static_cast<size_t>(r)] = pc;
  }
  return scores;
}

// Σ_u ‖∇m(u)‖_β^β with forward differences along both grid axes, and its gradient added to `grad`
// times `weight` (when `grad` is given).
double total_variation(const double* m, int64_t rows, int64_t cols, double beta, double weight,
                       double* grad) {
  double tv = 0.0;
  const auto term = [&](int64_t a, int64_t b) {
    const double d = m[b] - m[a];
    tv += std::pow(std::abs(d), beta);
    if (grad != nullptr) {
      const double g = weight * beta * std::pow(std::abs(d), beta - 1.0) * (d > 0 ? 1.0 : d < 0 ? -1.0 : 0.0);
      grad[b] += g;
      grad[a] -= g;
    }
  };
  for (int64_t y = 0; y < rows; ++y) {
    for (int64_t x = 0; x < cols; ++x) {
      if (y + 1 < rows) term(y * cols + x, (y + 1) * cols + x);
      if (x + 1 < cols) term(y * cols + x, y * cols + x + 1);
    }
  }
  return tv;
}

class MaskProblem {
 public:
  MaskProblem(const ForwardPass& pass, const Target& target, const MaskOptions& o)
      : pass_(pass), target_(target), o_(o), x_(pass.input()) {
    if (pass.explains_embedding() || x_.rank() != 4) {
      throw Error(std::string(kMethod) + ": masks are learnt over two spatial axes; the explained input " +
                  to_string(x_.shape()) + " is not an image batch [N, C, H, W]");
    }
    n_ = x_.dim(0);
    channels_ = x_.dim(1);
    height_ = x_.dim(2);
    width_ = x_.dim(3);
    if (o.jitter >= std::min(height_, width_)) {
      throw Error(std::string(kMethod) + ": jitter=" + std::to_string(o.jitter) +
                  " is not smaller than the input's spatial size " + std::to_string(height_) + "x" +
                  std::to_string(width_));
    }
    if (o.score == MaskOptions::Score::probability && (!target.is_index() || pass.output().rank() != 2)) {
      throw Error(std::string(kMethod) +
                  ": score=probability needs a class index per sample of a [batch, classes] output (the "
                  "output is " +
                  to_string(pass.output().shape()) + "); use score=logit for other outputs and targets");
    }
    rows_ = (height_ + o.upsample - 1) / o.upsample;
    cols_ = (width_ + o.upsample - 1) / o.upsample;
  }

  LearnedMasks solve() const {
    const int64_t cells = rows_ * cols_;
    const bool deletion = o_.mode == MaskOptions::Mode::deletion;
    std::vector<double> m(static_cast<size_t>(n_ * cells), deletion ? 1.0 : 0.0);
    std::vector<double> first(m.size(), 0.0), second(m.size(), 0.0);  // Adam's moment estimates
    const double beta1 = 0.9, beta2 = 0.999, epsilon = 1e-8;
    for (int64_t step = 0; step < o_.iterations; ++step) {
      std::vector<double> grad = mask_gradient(m, step);
      for (int64_t i = 0; i < n_; ++i) {
        double* g = grad.data() + i * cells;
        for (int64_t k = 0; k < cells; ++k) g[k] += deletion ? -o_.lambda1 : o_.lambda1;
        total_variation(m.data() + i * cells, rows_, cols_, o_.beta, o_.lambda2, g);
      }
      const double t = static_cast<double>(step + 1);
      for (size_t k = 0; k < m.size(); ++k) {
        first[k] = beta1 * first[k] + (1 - beta1) * grad[k];
        second[k] = beta2 * second[k] + (1 - beta2) * grad[k] * grad[k];
        const double mean = first[k] / (1 - std::pow(beta1, t)), var = second[k] / (1 - std::pow(beta2, t));
        m[k] = std::clamp(m[k] - o_.learning_rate * mean / (std::sqrt(var) + epsilon), 0.0, 1.0);
      }
    }
    LearnedMasks result;
    result.rows = rows_;
    result.cols = cols_;
    const std::vector<double> smooth = smoothed(m);
    result.score = final_scores(smooth);
    for (int64_t i = 0; i < n_; ++i) {
      const double* mi = m.data() + i * cells;
      double area = 0.0;
      for (int64_t k = 0; k < cells; ++k) area += deletion ? 1.0 - mi[k] : mi[k];
      result.area.push_back(area);
      result.tv.push_back(total_variation(mi, rows_, cols_, o_.beta, 0.0, nullptr));
    }
    result.saliency = Tensor::uninitialized(x_.shape());
    const int64_t plane = height_ * width_;
    for (int64_t i = 0; i < n_; ++i) {
      for (int64_t c = 0; c < channels_; ++c) {
        for (int64_t j = 0; j < plane; ++j) {
          const double v = smooth[static_cast<size_t>(i * plane + j)];
          result.saliency[(i * channels_ + c) * plane + j] = static_cast<float>(deletion ? 1.0 - v : v);
        }
      }
    }
    result.masks = std::move(m);
    return result;
  }

 private:
  // M = S·U·m, [N, H, W].
  std::vector<double> smoothed(const std::vector<double>& m) const {
    std::vector<double> up = upsample_bilinear(m, n_, rows_, cols_, height_, width_);
    if (o_.mask_sigma > 0)
      gaussian_blur(up, {n_, height_, width_}, {false, true, true}, o_.mask_sigma, BlurEdges::renormalize);
    return up;
  }

  // The shifted inputs x(· − τ) and their perturbations b of one step, τ and the noise drawn from the
  // seed, the sample and the step (so batching does not change them); step < 0: no jitter.
  void perturbed(int64_t step, std::vector<float>& shifted, std::vector<float>& base) const {
    const int64_t plane = height_ * width_, per = channels_ * plane;
    shifted.assign(static_cast<size_t>(x_.size()), 0.0f);
    base.assign(shifted.size(), 0.0f);
    for (int64_t i = 0; i < n_; ++i) {
      std::mt19937_64 rng(o_.seed * 1000003u + static_cast<uint64_t>(pass_.sample(i)) * 7919u +
                          static_cast<uint64_t>(step + 1));
      std::uniform_int_distribution<int64_t> shift(0, o_.jitter);
      const int64_t ty = step < 0 ? 0 : shift(rng), tx = step < 0 ? 0 : shift(rng);
      float* s = shifted.data() + i * per;
      for (int64_t c = 0; c < channels_; ++c) {
        const float* from = x_.data() + i * per + c * plane;
        for (int64_t y = 0; y < height_; ++y) {
          for (int64_t x = 0; x < width_; ++x)
            s[c * plane + y * width_ + x] =
                from[std::max<int64_t>(y - ty, 0) * width_ + std::max<int64_t>(x - tx, 0)];
        }
      }
      float* b = base.data() + i * per;
      switch (o_.perturbation) {
        case MaskOptions::Perturbation::blur: {
          std::vector<double> v(s, s + per);
          gaussian_blur(v, {channels_, height_, width_}, {false, true, true}, o_.blur_sigma,
                        BlurEdges::repeat);
          for (int64_t j = 0; j < per; ++j) b[j] = static_cast<float>(v[static_cast<size_t>(j)]);
          break;
        }
        case MaskOptions::Perturbation::constant:
          for (int64_t c = 0; c < channels_; ++c) {  // the sample's average colour
            double mean = 0.0;
            for (int64_t j = 0; j < plane; ++j) mean += x_[i * per + c * plane + j];
            mean /= static_cast<double>(plane);
            for (int64_t j = 0; j < plane; ++j) b[c * plane + j] = static_cast<float>(mean);
          }
          break;
        case MaskOptions::Perturbation::noise: {
          const auto [lo, hi] = std::minmax_element(x_.data() + i * per, x_.data() + (i + 1) * per);
          std::normal_distribution<float> normal(0.0f, static_cast<float>(o_.noise_level) * (*hi - *lo));
          for (int64_t j = 0; j < per; ++j) b[j] = normal(rng);
          break;
        }
      }
    }
  }

  // Runs Φ through the model, `max_batch` rows at a time; returns the scores and, when `gradient` is
  // given, ∂score/∂Φ.
  std::vector<double> run(const std::vector<float>& phi, std::vector<float>* gradient) const {
    const int64_t per = x_.size() / n_;
    Shape row_shape = x_.shape();
    row_shape[0] = 1;
    std::vector<double> scores(static_cast<size_t>(n_));
    if (gradient != nullptr) gradient->assign(phi.size(), 0.0f);
    const RowSource source = [&](int64_t r, float* row) {
      std::copy(phi.begin() + r * per, phi.begin() + (r + 1) * per, row);
    };
    run_in_batches(pass_.model(), n_, row_shape, std::min(o_.max_batch, n_), source,
                   [&](const Tensor& batch, int64_t begin, int64_t count) {
                     std::vector<int64_t> rows;
                     for (int64_t r = 0; r < batch.dim(0); ++r)
                       rows.push_back(begin + std::min(r, count - 1));
                     const Target target = target_.rows(rows);
                     Tensor seed;
                     if (gradient == nullptr) {
                       const std::vector<double> s =
                           score_and_seed(pass_.output_at(batch, rows), target, o_.score, seed);
                       std::copy(s.begin(), s.begin() + count, scores.begin() + begin);
                       return;
                     }
                     const ForwardPass at = pass_.at(batch, rows);
                     const std::vector<double> s = score_and_seed(at.output(), target, o_.score, seed);
                     std::copy(s.begin(), s.begin() + count, scores.begin() + begin);
                     const Tensor g = at.reverse(seed);
                     std::copy(g.data(), g.data() + count * per, gradient->begin() + begin * per);
                   });
    return scores;
  }

  // ∂f_c(Φ)/∂m (deletion) or −∂f_c(Φ)/∂m (preservation) at one step.
  std::vector<double> mask_gradient(const std::vector<double>& m, int64_t step) const {
    std::vector<float> shifted, base, g_phi;
    perturbed(step, shifted, base);
    const std::vector<float> phi = blend(smoothed(m), shifted, base, channels_, height_ * width_);
    run(phi, &g_phi);
    std::vector<double> g = blend_mask_adjoint(g_phi, shifted, base, channels_, height_ * width_);
    if (o_.mode == MaskOptions::Mode::preservation) {
      for (double& v : g) v = -v;
    }
    if (o_.mask_sigma > 0)
      gaussian_blur_adjoint(g, {n_, height_, width_}, {false, true, true}, o_.mask_sigma,
                            BlurEdges::renormalize);
    return upsample_bilinear_adjoint(g, n_, rows_, cols_, height_, width_);
  }

  // The scores of the learnt masks on the unshifted input.
  std::vector<double> final_scores(const std::vector<double>& smooth) const {
    std::vector<float> shifted, base;
    perturbed(-1, shifted, base);
    return run(blend(smooth, shifted, base, channels_, height_ * width_), nullptr);
  }

  const ForwardPass& pass_;
  const Target& target_;
  const MaskOptions& o_;
  const Tensor& x_;
  int64_t n_ = 0, channels_ = 1, height_ = 0, width_ = 0, rows_ = 0, cols_ = 0;
};

class MeaningfulPerturbation : public Analyzer {
 public:
  explicit MeaningfulPerturbation(MaskOptions options) : options_(options) {}
  Tensor explain(const ForwardPass& pass, const Target& target) const override {
    return learn_masks(pass, target, options_).saliency;
  }

 private:
  MaskOptions options_;
};

}  // namespace

std::vector<double> upsample_bilinear(const std::vector<double>& grids, int64_t count, int64_t rows,
                                      int64_t cols, int64_t height, int64_t width) {
  std::vector<double> out(static_cast<size_t>(count * height * width), 0.0);
  for_each_bilinear_weight(count, rows, cols, height, width, [&](int64_t o, int64_t cell, double w) {
    out[static_cast<size_t>(o)] += w * grids[static_cast<size_t>(cell)];
  });
  return out;
}

std::vector<double> upsample_bilinear_adjoint(const std::vector<double>& images, int64_t count, int64_t rows,
                                              int64_t cols, int64_t height, int64_t width) {
  std::vector<double> out(static_cast<size_t>(count * rows * cols), 0.0);
  for_each_bilinear_weight(count, rows, cols, height, width, [&](int64_t o, int64_t cell, double w) {
    out[static_cast<size_t>(cell)] += w * images[static_cast<size_t>(o)];
  });
  return out;
}

std::vector<float> blend(const std::vector<double>& masks, const std::vector<float>& x,
                         const std::vector<float>& b, int64_t channels, int64_t positions) {
  std::vector<float> out(x.size());
  for (size_t e = 0; e < x.size(); ++e) {
    const int64_t k = static_cast<int64_t>(e);
    const float m = static_cast<float>(
        masks[static_cast<size_t>(k / (channels * positions) * positions + k % positions)]);
    out[e] = m * x[e] + (1.0f - m) * b[e];
  }
  return out;
}

std::vector<double> blend_mask_adjoint(const std::vector<float>& g, const std::vector<float>& x,
                                       const std::vector<float>& b, int64_t channels, int64_t positions) {
  std::vector<double> out(g.size() / static_cast<size_t>(channels), 0.0);
  for (size_t e = 0; e < g.size(); ++e) {
    const int64_t k = static_cast<int64_t>(e);
    out[static_cast<size_t>(k / (channels * positions) * positions + k % positions)] +=
        static_cast<double>(g[e]) * (static_cast<double>(x[e]) - static_cast<double>(b[e]));
  }
  return out;
}

LearnedMasks learn_masks(const ForwardPass& pass, const Target& target, const MaskOptions& options) {
  return MaskProblem(pass, target, options).solve();
}

MaskOptions read_mask_options(Params& p, int64_t max_batch) {
  MaskOptions o;
  o.mode = p.choice("mode", "deletion", {"deletion", "preservation"}) == "deletion"
               ? MaskOptions::Mode::deletion
               : MaskOptions::Mode::preservation;
  const std::string perturbation = p.choice("perturbation", "blur", {"blur", "constant", "noise"});
  o.perturbation = perturbation == "blur"       ? MaskOptions::Perturbation::blur
                   : perturbation == "constant" ? MaskOptions::Perturbation::constant
                                                : MaskOptions::Perturbation::noise;
  o.score = p.choice("score", "probability", {"probability", "logit"}) == "probability"
                ? MaskOptions::Score::probability
                : MaskOptions::Score::logit;
  o.iterations = p.integer("iterations", 300, 1, 1000000);
  o.learning_rate = p.number("lr", 0.1, 1e-9, 1e3);
  o.lambda1 = p.number("lambda1", 1e-4, 0.0, 1e6);
  o.lambda2 = p.number("lambda2", 1e-2, 0.0, 1e6);
  o.beta = p.number("beta", 3.0, 1.0, 16.0);
  o.upsample = p.integer("upsample", 4, 1, 4096);
  o.mask_sigma = p.number("mask_sigma", 2.5, 0.0, 1e4);
  o.blur_sigma = p.number("blur_sigma", 10.0, 1e-3, 1e4);
  o.noise_level = p.number("noise_level", 0.2, 0.0, 100.0);
  o.jitter = p.integer("jitter", 2, 0, 4096);
  o.seed = static_cast<uint64_t>(p.integer("seed", 0, 0, INT64_MAX));
  o.max_batch = p.text("batch", "").empty() ? max_batch : p.integer("batch", max_batch, 1, 1 << 20);
  return o;
}

std::unique_ptr<Analyzer> make_meaningful_perturbation(Params& p, int64_t max_batch) {
  return std::make_unique<MeaningfulPerturbation>(read_mask_options(p, max_batch));
}

}  // namespace sieve::analyzers
