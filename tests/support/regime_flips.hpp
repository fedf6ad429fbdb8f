#pragma once

// Which samples of a pattern layer sit so close to the regime boundary z = 0 that float32 rounding may
// put them in either regime, and what they would move if they did (see support/rounding.hpp).

#include <cmath>
#include <vector>

#include "sieve/executor.hpp"
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
  const Graph& graph = model.graph();
  const std::vector<size_t> layers = pattern_layers(model);
  std::vector<bool> keep(graph.values().size(), false);
  for (size_t n : layers) {
    keep[static_cast<size_t>(graph.nodes()[n].inputs[0])] = true;
    keep[static_cast<size_t>(graph.nodes()[n].outputs[0])] = true;
  }
  Trace trace;
  Executor(graph).run({data}, &trace, keep);
  std::vector<RegimeFlips> flips;
  for (size_t n : layers) {
    const Node& node = graph.nodes()[n];
    const LinearOp& op = *node.op->as_linear();
    const Tensor& weight = graph.value(node.inputs[1]).constant;
    const Tensor bias =
        node.inputs.size() > 2 && node.inputs[2] >= 0 ? graph.value(node.inputs[2]).constant : Tensor();
    const Tensor& x = trace.values[static_cast<size_t>(node.inputs[0])];
    const Tensor& z = trace.values[static_cast<size_t>(node.outputs[0])];
    const Tensor magnitude = op.apply(absolute(x), absolute(weight), bias.empty() ? bias : absolute(bias));
    const int64_t neurons = z.dim(1), inner = z.size() / (z.dim(0) * neurons);
    Tensor near(z.shape(), 0.0f), near_abs_y(z.shape(), 0.0f);
    RegimeFlips f;
    f.count.assign(static_cast<size_t>(neurons), 0.0);
    f.sum_abs_y.assign(static_cast<size_t>(neurons), 0.0);
    f.sum_y2.assign(static_cast<size_t>(neurons), 0.0);
    for (int64_t i = 0; i < z.size(); ++i) {
      if (std::abs(z[i]) > 2.0 * tau * magnitude[i]) continue;
      const int64_t j = (i / inner) % neurons;
      const double y = static_cast<double>(z[i]) - (bias.empty() ? 0.0 : bias[j]);
      near[i] = 1.0f;
      near_abs_y[i] = static_cast<float>(std::abs(y));
      f.count[static_cast<size_t>(j)] += 1.0;
      f.sum_abs_y[static_cast<size_t>(j)] += std::abs(y);
      f.sum_y2[static_cast<size_t>(j)] += y * y;
    }
    const Tensor abs_x = absolute(x);
    const Tensor sum_abs_x = op.weight_gradient(abs_x, near, weight.shape());
    const Tensor sum_abs_xy = op.weight_gradient(abs_x, near_abs_y, weight.shape());
    f.sum_abs_x.assign(sum_abs_x.values().begin(), sum_abs_x.values().end());
    f.sum_abs_xy.assign(sum_abs_xy.values().begin(), sum_abs_xy.values().end());
    flips.push_back(std::move(f));
  }
  return flips;
}

}  // namespace sieve
