#pragma once

// Which samples of a pattern layer sit so close to the regime boundary z = 0 that float32 rounding may
// put them in either regime, and what they would move if they did (see support/rounding.hpp).

#include <cmath>
#include <vector>

#include "patterns/layer_pass.hpp"
#include "sieve/patterns.hpp"

namespace sieve {

inline Tensor absolute(const Tensor& t) {
  Tensor a = t.clone();
  for (float& v : a.values()) v = std::abs(v);
  return a;
}

// Per pattern layer, over the samples whose pre-activation z is within 2τ of its magnitude
// Σ|w·x| + |b| from 0 (two runs, each off by up to τ): their count per neuron, Σ|x| and Σ|x|·|y| over
// their patches (weight-shaped), Σ|y| and Σy² per neuron, with y = z − b.
struct RegimeFlips {
  std::vector<double> count, sum_abs_y, sum_y2, sum_abs_x, sum_abs_xy;
};

inline std::vector<RegimeFlips> possible_regime_flips(const Model& model, const Tensor& data, double tau) {
  std::vector<RegimeFlips> flips;
  for (const patterns::LayerPass& layer : patterns::run_pattern_layers(model, data, "regime flips")) {
    const Tensor& z = layer.z;
    const Tensor magnitude =
        layer.op->apply(absolute(layer.x), absolute(layer.w), layer.b.empty() ? layer.b : absolute(layer.b));
    const int64_t neurons = z.dim(layer.axis);
    int64_t inner = 1;
    for (int64_t d = layer.axis + 1; d < z.rank(); ++d) inner *= z.dim(d);
    Tensor near(z.shape(), 0.0f), near_abs_y(z.shape(), 0.0f);
    RegimeFlips f;
    f.count.assign(static_cast<size_t>(neurons), 0.0);
    f.sum_abs_y.assign(static_cast<size_t>(neurons), 0.0);
    f.sum_y2.assign(static_cast<size_t>(neurons), 0.0);
    for (int64_t i = 0; i < z.size(); ++i) {
      if (std::abs(z[i]) > 2.0 * tau * magnitude[i]) continue;
      const auto j = static_cast<size_t>((i / inner) % neurons);
      const double y = layer.y[i];
      near[i] = 1.0f;
      near_abs_y[i] = static_cast<float>(std::abs(y));
      f.count[j] += 1.0;
      f.sum_abs_y[j] += std::abs(y);
      f.sum_y2[j] += y * y;
    }
    const Tensor abs_x = absolute(layer.x);
    const Tensor sum_abs_x = layer.op->weight_gradient(abs_x, near, layer.w.shape());
    const Tensor sum_abs_xy = layer.op->weight_gradient(abs_x, near_abs_y, layer.w.shape());
    f.sum_abs_x.assign(sum_abs_x.values().begin(), sum_abs_x.values().end());
    f.sum_abs_xy.assign(sum_abs_xy.values().begin(), sum_abs_xy.values().end());
    flips.push_back(std::move(f));
  }
  return flips;
}

}  // namespace sieve
