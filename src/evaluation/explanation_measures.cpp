// Measures of single explanations and of pairs of them: completeness, sparseness, Spearman, SSIM.

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "evaluation/common.hpp"
#include "sieve/batch.hpp"
#include "sieve/error.hpp"
#include "sieve/evaluation.hpp"

namespace sieve {

namespace {

// The first output's value at each sample's target.
std::vector<double> target_values(const Model& model, const std::vector<Tensor>& samples,
                                  const std::vector<int64_t>& targets, int64_t max_batch) {
  std::vector<double> values(samples.size());
  run_in_batches(model, samples, max_batch, [&](const Tensor& batch, int64_t begin, int64_t count) {
    const Tensor out = model.run({batch}).at(0);
    const int64_t per = out.size() / out.dim(0);
    for (int64_t r = 0; r < count; ++r)
      values[static_cast<size_t>(begin + r)] = out[r * per + targets[static_cast<size_t>(begin + r)]];
  });
  return values;
}

double mean(const std::vector<double>& v) {
  return v.empty() ? 0.0 : std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
}

}  // namespace

Completeness completeness(const Model& model, const std::vector<Tensor>& samples,
                          const std::vector<Tensor>& explanations, const std::vector<int64_t>& targets,
                          const Tensor& baseline, int64_t max_batch) {
  evaluation::check_single_input(model, "completeness");
  evaluation::check_samples(samples);
  evaluation::check_explanations(explanations, samples);
  evaluation::check_targets(model, targets, samples.size());
  Completeness c;
  c.reference = target_values(model, samples, targets, max_batch);
  if (!baseline.empty()) {
    const int64_t per = samples[0].size();
    std::vector<Tensor> baselines;
    for (size_t i = 0; i < samples.size(); ++i) {
      if (baseline.size() == 1) {
        baselines.emplace_back(samples[0].shape(), baseline[0]);
      } else if (baseline.size() == per) {
        baselines.push_back(baseline.reshaped(samples[0].shape()));
      } else if (baseline.size() == per * static_cast<int64_t>(samples.size())) {
        baselines.emplace_back(samples[0].shape(),
                               std::span<const float>(baseline.data() + static_cast<int64_t>(i) * per,
                                                      static_cast<size_t>(per)));
      } else {
        throw Error("completeness: baseline of shape " + to_string(baseline.shape()) +
                    " fits neither one value, one input " + to_string(samples[0].shape()) + " nor all " +
                    std::to_string(samples.size()) + " inputs");
      }
    }
    const std::vector<double> at_baseline = target_values(model, baselines, targets, max_batch);
    for (size_t i = 0; i < samples.size(); ++i) c.reference[i] -= at_baseline[i];
  }
  std::vector<double> finite;
  for (size_t i = 0; i < samples.size(); ++i) {
    double sum = 0.0;
    for (float v : explanations[i].values()) sum += v;
    c.relevance_sum.push_back(sum);
    const double ref = c.reference[i];
    // A zero reference has no relative error; it stays NaN and out of the mean.
    c.relative_error.push_back(ref != 0.0 ? std::abs(sum - ref) / std::abs(ref)
                                          : std::numeric_limits<double>::quiet_NaN());
    if (ref != 0.0) finite.push_back(c.relative_error.back());
  }
  c.mean_relative_error = finite.empty() ? std::numeric_limits<double>::quiet_NaN() : mean(finite);
  return c;
}

Sparseness sparseness(const std::vector<Tensor>& explanations) {
  Sparseness s;
  for (const Tensor& e : explanations) {
    std::vector<double> a;
    for (float v : e.values()) a.push_back(std::abs(static_cast<double>(v)));
    std::sort(a.begin(), a.end());
    const double total = std::accumulate(a.begin(), a.end(), 0.0), n = static_cast<double>(a.size());
    double gini = 0.0, entropy = 0.0;
    if (total > 0.0) {
      for (size_t k = 0; k < a.size(); ++k) {
        gini += (2.0 * static_cast<double>(k + 1) - n - 1.0) * a[k];
        const double p = a[k] / total;
        if (p > 0.0) entropy -= p * std::log(p);
      }
      gini /= n * total;
    } else {
      entropy = std::log(n);
    }
    s.gini.push_back(gini);
    s.entropy.push_back(entropy);
  }
  s.mean_gini = mean(s.gini);
  s.mean_entropy = mean(s.entropy);
  return s;
}

namespace {

// Ranks 1..n, tied values sharing their mean rank.
std::vector<double> ranks(std::span<const float> v) {
  std::vector<size_t> index(v.size());
  std::iota(index.begin(), index.end(), 0);
  std::stable_sort(index.begin(), index.end(), [&](size_t a, size_t b) { return v[a] < v[b]; });
  std::vector<double> r(v.size());
  for (size_t begin = 0; begin < index.size();) {
    size_t end = begin + 1;
    while (end < index.size() && v[index[end]] == v[index[begin]]) ++end;
    const double shared = 0.5 * static_cast<double>(begin + 1 + end);
    for (size_t k = begin; k < end; ++k) r[index[k]] = shared;
    begin = end;
  }
  return r;
}

double pearson(const std::vector<double>& a, const std::vector<double>& b) {
  const double ma = mean(a), mb = mean(b);
  double ab = 0.0, aa = 0.0, bb = 0.0;
  for (size_t i = 0; i < a.size(); ++i) {
    ab += (a[i] - ma) * (b[i] - mb);
    aa += (a[i] - ma) * (a[i] - ma);
    bb += (b[i] - mb) * (b[i] - mb);
  }
  // A constant map has no rank order: no correlation.
  return aa > 0.0 && bb > 0.0 ? ab / std::sqrt(aa * bb) : 0.0;
}

// The map summed over channels, [H, W] (H = 1 for 1-D samples), scaled to [0, 1] by its own range.
std::vector<double> scaled_plane(const Tensor& t, int64_t& height, int64_t& width) {
  const int64_t channels = t.rank() >= 3 ? t.dim(1) : 1;
  height = t.rank() == 4 ? t.dim(2) : 1;
  width = t.size() / (channels * height);
  std::vector<double> plane(static_cast<size_t>(height * width), 0.0);
  for (int64_t c = 0; c < channels; ++c) {
    for (size_t i = 0; i < plane.size(); ++i) plane[i] += t[c * height * width + static_cast<int64_t>(i)];
  }
  const auto [lo, hi] = std::minmax_element(plane.begin(), plane.end());
  const double low = *lo, range = *hi - *lo;
  for (double& v : plane) v = range > 0.0 ? (v - low) / range : 0.0;
  return plane;
}

}  // namespace

double spearman(std::span<const float> a, std::span<const float> b) {
  if (a.size() != b.size() || a.empty())
    throw Error("spearman: maps of " + std::to_string(a.size()) + " and " + std::to_string(b.size()) +
                " values");
  return pearson(ranks(a), ranks(b));
}

double ssim(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape())
    throw Error("ssim: maps of shapes " + to_string(a.shape()) + " and " + to_string(b.shape()));
  int64_t h = 0, w = 0;
  const std::vector<double> x = scaled_plane(a, h, w), y = scaled_plane(b, h, w);
  const int64_t wh = std::min<int64_t>(7, h), ww = std::min<int64_t>(7, w);
  const double n = static_cast<double>(wh * ww), c1 = 0.01 * 0.01, c2 = 0.03 * 0.03;
  // Sample (co)variances, as scikit-image's default.
  const double unbiased = n > 1.0 ? n / (n - 1.0) : 1.0;
  double total = 0.0;
  int64_t windows = 0;
  for (int64_t top = 0; top + wh <= h; ++top) {
    for (int64_t left = 0; left + ww <= w; ++left) {
      double sx = 0, sy = 0, sxx = 0, syy = 0, sxy = 0;
      for (int64_t r = top; r < top + wh; ++r) {
        for (int64_t c = left; c < left + ww; ++c) {
          const double u = x[static_cast<size_t>(r * w + c)], v = y[static_cast<size_t>(r * w + c)];
          sx += u;
          sy += v;
          sxx += u * u;
          syy += v * v;
          sxy += u * v;
        }
      }
      const double mx = sx / n, my = sy / n;
      const double vx = (sxx / n - mx * mx) * unbiased, vy = (syy / n - my * my) * unbiased,
                   cxy = (sxy / n - mx * my) * unbiased;
      total += ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2));
      ++windows;
    }
  }
  return total / static_cast<double>(windows);
}

}  // namespace sieve
