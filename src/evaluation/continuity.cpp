// Explanation continuity (MSM §7.1): how far explanations move under small translations of the input,
// relative to how far the input moved.

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>

#include "evaluation/common.hpp"
#include "sieve/error.hpp"
#include "sieve/evaluation.hpp"
#include "sieve/params.hpp"

namespace sieve {

namespace {

// `x` moved right by `t` along its last axis; the first column fills the vacated ones.
Tensor translated(const Tensor& x, int64_t t) {
  const int64_t width = x.dim(x.rank() - 1), lines = x.size() / width;
  Tensor out(x.shape());
  for (int64_t l = 0; l < lines; ++l) {
    const float* in = x.data() + l * width;
    float* o = out.data() + l * width;
    for (int64_t c = 0; c < width; ++c) o[c] = in[std::max<int64_t>(0, c - t)];
  }
  return out;
}

}  // namespace

ContinuityOptions continuity_options(const MethodSpec& spec) {
  Params p(spec, "metric");
  ContinuityOptions o;
  o.max_shift = p.integer("max_shift", o.max_shift, 1, 1 << 20);
  o.noise = p.number("noise", o.noise, 0.0, 1e3);
  o.seed = static_cast<uint64_t>(p.integer("seed", 0, 0, std::numeric_limits<int64_t>::max()));
  p.finish();
  return o;
}

Continuity continuity(const Model& model, const Analyzer& analyzer, const std::vector<Tensor>& samples,
                      const std::vector<int64_t>& targets, const ContinuityOptions& options) {
  evaluation::check_samples(samples);
  evaluation::check_targets(model, targets, samples.size());
  const int64_t width = samples[0].dim(samples[0].rank() - 1);
  if (options.max_shift < 1 || options.max_shift >= width)
    throw Error("continuity: max_shift=" + std::to_string(options.max_shift) + " must be in [1, " +
                std::to_string(width - 1) + "] for inputs " + std::to_string(width) + " wide");
  const size_t n = samples.size(), shifts = static_cast<size_t>(options.max_shift);
  // Row i: sample i; then sample i's translations 1..max_shift.
  std::vector<Tensor> images;
  std::vector<int64_t> row_targets;
  std::mt19937_64 engine(options.seed);
  for (size_t i = 0; i < n; ++i) {
    images.push_back(samples[i]);
    row_targets.push_back(targets[i]);
    const auto [low, high] = std::minmax_element(samples[i].values().begin(), samples[i].values().end());
    std::normal_distribution<double> noise(0.0, options.noise * (static_cast<double>(*high) - *low));
    for (size_t t = 1; t <= shifts; ++t) {
      Tensor moved = translated(samples[i], static_cast<int64_t>(t));
      if (options.noise > 0.0) {
        for (float& v : moved.values()) v += static_cast<float>(noise(engine));
      }
      images.push_back(moved);
      row_targets.push_back(targets[i]);
    }
  }
  const std::vector<Tensor> maps = explain_targets(model, analyzer, images, row_targets, options.max_batch);
  Continuity c;
  c.mean_curve.assign(shifts, 0.0);
  for (size_t i = 0; i < n; ++i) {
    const size_t base = i * (1 + shifts);
    std::vector<double> ratios;
    for (size_t t = 1; t <= shifts; ++t) {
      double r_distance = 0.0, x_distance = 0.0;
      for (int64_t k = 0; k < images[base].size(); ++k) {
        r_distance += std::abs(static_cast<double>(maps[base][k]) - maps[base + t][k]);
        const double dx = static_cast<double>(images[base][k]) - images[base + t][k];
        x_distance += dx * dx;
      }
      // An input that a translation leaves unchanged (a constant image) has no ratio.
      ratios.push_back(x_distance > 0.0 ? r_distance / std::sqrt(x_distance) : 0.0);
      c.mean_curve[t - 1] += ratios.back() / static_cast<double>(n);
    }
    c.max_ratio.push_back(*std::max_element(ratios.begin(), ratios.end()));
    c.max = std::max(c.max, c.max_ratio.back());
    c.ratios.push_back(std::move(ratios));
  }
  return c;
}

}  // namespace sieve
