// Region perturbation (PatternNet §5): tiles replaced in the order an explanation ranks them, and the
// tracked output value after each step.

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <random>

#include "evaluation/common.hpp"
#include "sieve/batch.hpp"
#include "sieve/blur.hpp"
#include "sieve/error.hpp"
#include "sieve/evaluation.hpp"
#include "sieve/params.hpp"

namespace sieve {

using evaluation::check_explanations;
using evaluation::check_samples;
using evaluation::check_single_input;
using evaluation::check_targets;

TileGrid tile_grid(const Shape& shape, int64_t size) {
  TileGrid g;
  if (shape.size() == 4) {
    g.channels = shape[1];
    g.height = shape[2];
    g.width = shape[3];
    g.tile_height = size;
  } else if (shape.size() == 3) {
    g.channels = shape[1];
    g.width = shape[2];
  } else if (shape.size() == 2) {
    g.width = shape[1];
  } else {
    throw Error("region perturbation tiles samples [1, C, H, W], [1, C, L] or [1, D], not " +
                to_string(shape));
  }
  if (size < 1) throw Error("region perturbation: tile size " + std::to_string(size) + " must be at least 1");
  const std::string spatial =
      shape.size() == 4 ? std::to_string(g.height) + "×" + std::to_string(g.width) : std::to_string(g.width);
  if (size > g.width || (shape.size() == 4 && size > g.height))
    throw Error("region perturbation: tile size " + std::to_string(size) + " is larger than the input (" +
                spatial + ")");
  g.tile_width = size;
  g.rows = (g.height + g.tile_height - 1) / g.tile_height;
  g.columns = (g.width + g.tile_width - 1) / g.tile_width;
  return g;
}

std::vector<double> tile_scores(const Tensor& explanation, const TileGrid& grid) {
  if (explanation.size() != grid.channels * grid.height * grid.width)
    throw Error("explanation of shape " + to_string(explanation.shape()) + " does not fit the tiled input");
  std::vector<double> scores(static_cast<size_t>(grid.count()), 0.0);
  const int64_t plane = grid.height * grid.width;
  for (int64_t t = 0; t < grid.count(); ++t) {
    double sum = 0.0;
    for (int64_t c = 0; c < grid.channels; ++c) {
      for (int64_t y = grid.row_begin(t); y < grid.row_end(t); ++y) {
        for (int64_t x = grid.column_begin(t); x < grid.column_end(t); ++x)
          sum += explanation[c * plane + y * grid.width + x];
      }
    }
    scores[static_cast<size_t>(t)] = sum;
  }
  return scores;
}

std::string to_string(PerturbationOrder order) {
  switch (order) {
    case PerturbationOrder::morf:
      return "morf";
    case PerturbationOrder::lerf:
      return "lerf";
    case PerturbationOrder::random:
      return "random";
  }
  return "";
}

std::vector<int64_t> tile_order(const std::vector<double>& scores, PerturbationOrder order) {
  if (order == PerturbationOrder::random) throw Error("a random tile order is drawn, not ranked");
  std::vector<int64_t> tiles(scores.size());
  std::iota(tiles.begin(), tiles.end(), 0);
  // A stable sort keeps tied tiles in index order.
  std::stable_sort(tiles.begin(), tiles.end(), [&](int64_t a, int64_t b) {
    const double sa = scores[static_cast<size_t>(a)], sb = scores[static_cast<size_t>(b)];
    return order == PerturbationOrder::morf ? sa > sb : sa < sb;
  });
  return tiles;
}

std::vector<int64_t> random_tile_order(int64_t tiles, uint64_t seed) {
  std::vector<int64_t> order(static_cast<size_t>(tiles));
  std::iota(order.begin(), order.end(), 0);
  std::mt19937_64 engine(seed);
  // Fisher–Yates with our own index draw, so the order is the same with every standard library.
  for (size_t i = order.size(); i > 1; --i) {
    const size_t j = static_cast<size_t>(engine() % i);
    std::swap(order[i - 1], order[j]);
  }
  return order;
}

namespace {

PerturbationOrder parse_order(const std::string& text) {
  if (text == "morf") return PerturbationOrder::morf;
  if (text == "lerf") return PerturbationOrder::lerf;
  throw Error("metric 'region_perturbation': parameter order=" + text +
              " must be morf, lerf or morf+lerf (the random order always runs)");
}

// The Gaussian-blurred sample, per channel, with the kernel cut at 3σ and renormalised at the borders.
Tensor blurred(const Tensor& sample, const TileGrid& grid, double sigma) {
  std::vector<double> values(sample.values().begin(), sample.values().end());
  gaussian_blur(values, {grid.channels, grid.height, grid.width}, {false, true, true}, sigma,
                BlurEdges::renormalize);
  Tensor out(sample.shape());
  for (int64_t i = 0; i < out.size(); ++i) out[i] = static_cast<float>(values[static_cast<size_t>(i)]);
  return out;
}

}  // namespace

RegionPerturbationOptions region_perturbation_options(const MethodSpec& spec) {
  if (spec.name != "region_perturbation") throw Error("not a region_perturbation metric: " + spec.name);
  Params p(spec, "metric");
  RegionPerturbationOptions o;
  o.size = p.integer("size", o.size, 1, 1 << 20);
  o.steps = p.integer("steps", o.steps, 1, 1 << 24);
  const std::string orders = p.text("order", "morf");
  o.orders.clear();
  for (size_t begin = 0; begin <= orders.size();) {
    const size_t end = std::min(orders.find('+', begin), orders.size());
    const PerturbationOrder order = parse_order(orders.substr(begin, end - begin));
    if (std::find(o.orders.begin(), o.orders.end(), order) == o.orders.end()) o.orders.push_back(order);
    begin = end + 1;
  }
  const std::string baseline = p.text("baseline", "");
  const std::string fill = p.choice("fill", baseline.empty() ? "patch_mean" : "baseline",
                                    {"patch_mean", "zero", "baseline", "uniform", "blur"});
  if (fill == "patch_mean") o.fill = PerturbationFill::patch_mean;
  if (fill == "zero") o.fill = PerturbationFill::zero;
  if (fill == "uniform") o.fill = PerturbationFill::uniform;
  if (fill == "blur") o.fill = PerturbationFill::blur;
  if (fill == "baseline") {
    o.fill = PerturbationFill::baseline;
    if (baseline.empty())
      throw Error("metric 'region_perturbation': fill=baseline needs baseline=VALUE or baseline=FILE.npy");
    o.baseline = parse_baseline(baseline, "metric 'region_perturbation': parameter baseline");
  } else if (!baseline.empty()) {
    throw Error("metric 'region_perturbation': parameter baseline=" + baseline +
                " goes with fill=baseline, not fill=" + fill);
  }
  o.sigma = p.number("sigma", o.sigma, 1e-3, 1e6);
  if (spec.params.count("sigma") && o.fill != PerturbationFill::blur)
    throw Error("metric 'region_perturbation': parameter sigma goes with fill=blur");
  const std::string measure = p.choice("measure", "softmax", {"softmax", "logit"});
  o.measure = measure == "softmax" ? PerturbationMeasure::softmax : PerturbationMeasure::logit;
  o.seed = static_cast<uint64_t>(p.integer("seed", 0, 0, std::numeric_limits<int64_t>::max()));
  o.recompute = p.integer("recompute", 0, 0, 1) == 1;
  p.finish();
  return o;
}

Tensor fill_image(const Tensor& sample, const TileGrid& grid, const RegionPerturbationOptions& options,
                  const std::vector<float>& low, const std::vector<float>& high, uint64_t seed) {
  const int64_t plane = grid.height * grid.width;
  switch (options.fill) {
    case PerturbationFill::zero:
      return Tensor(sample.shape());
    case PerturbationFill::baseline: {
      if (options.baseline.size() == 1) return Tensor(sample.shape(), options.baseline[0]);
      if (options.baseline.size() != sample.size())
        throw Error("region perturbation: baseline of shape " + to_string(options.baseline.shape()) +
                    " fits neither one value nor a sample of shape " + to_string(sample.shape()));
      return options.baseline.reshaped(sample.shape());
    }
    case PerturbationFill::uniform: {
      Tensor out(sample.shape());
      std::mt19937_64 engine(seed);
      for (int64_t c = 0; c < grid.channels; ++c) {
        const size_t k = low.size() == 1 ? 0 : static_cast<size_t>(c);
        for (int64_t i = 0; i < plane; ++i) {
          // The top 53 bits as a double in [0, 1): the same numbers with every standard library.
          const double u = static_cast<double>(engine() >> 11) * 0x1p-53;
          out[c * plane + i] = static_cast<float>(low[k] + u * (static_cast<double>(high[k]) - low[k]));
        }
      }
      return out;
    }
    case PerturbationFill::blur:
      return blurred(sample, grid, options.sigma);
    case PerturbationFill::patch_mean:
      break;
  }
  Tensor out(sample.shape());
  for (int64_t t = 0; t < grid.count(); ++t) {
    const int64_t pixels =
        (grid.row_end(t) - grid.row_begin(t)) * (grid.column_end(t) - grid.column_begin(t));
    for (int64_t c = 0; c < grid.channels; ++c) {
      double sum = 0.0;
      for (int64_t y = grid.row_begin(t); y < grid.row_end(t); ++y) {
        for (int64_t x = grid.column_begin(t); x < grid.column_end(t); ++x)
          sum += sample[c * plane + y * grid.width + x];
      }
      const float mean = static_cast<float>(sum / static_cast<double>(pixels));
      for (int64_t y = grid.row_begin(t); y < grid.row_end(t); ++y) {
        for (int64_t x = grid.column_begin(t); x < grid.column_end(t); ++x)
          out[c * plane + y * grid.width + x] = mean;
      }
    }
  }
  return out;
}

namespace {

// Writes the first `steps` tiles of `order` of `fill` over `destination` (a copy of the sample).
void replace_tiles(float* destination, const Tensor& fill, const TileGrid& grid,
                   const std::vector<int64_t>& order, int64_t steps) {
  const int64_t plane = grid.height * grid.width;
  for (int64_t k = 0; k < steps; ++k) {
    const int64_t t = order[static_cast<size_t>(k)];
    const int64_t x0 = grid.column_begin(t), n = grid.column_end(t) - x0;
    for (int64_t c = 0; c < grid.channels; ++c) {
      for (int64_t y = grid.row_begin(t); y < grid.row_end(t); ++y) {
        const int64_t at = c * plane + y * grid.width + x0;
        std::memcpy(destination + at, fill.data() + at, static_cast<size_t>(n) * sizeof(float));
      }
    }
  }
}

}  // namespace

Tensor perturbed(const Tensor& sample, const Tensor& fill, const TileGrid& grid,
                 const std::vector<int64_t>& order, int64_t steps) {
  Tensor out = sample.clone();
  replace_tiles(out.data(), fill, grid, order, steps);
  return out;
}

double aopc(const std::vector<double>& curve) {
  if (curve.empty()) return 0.0;
  double sum = 0.0;
  for (double v : curve) sum += curve[0] - v;
  return sum / static_cast<double>(curve.size());
}

namespace {

// The value region perturbation tracks: the target's softmax probability over the sample's output, or
// its logit.
double measured(const float* output, int64_t size, int64_t target, PerturbationMeasure measure) {
  if (measure == PerturbationMeasure::logit) return output[target];
  double largest = output[0];
  for (int64_t k = 1; k < size; ++k) largest = std::max(largest, static_cast<double>(output[k]));
  double sum = 0.0;
  for (int64_t k = 0; k < size; ++k) sum += std::exp(static_cast<double>(output[k]) - largest);
  return std::exp(static_cast<double>(output[target]) - largest) / sum;
}

DegradationCurves summarized(PerturbationOrder order, std::vector<std::vector<double>> curves) {
  DegradationCurves d;
  d.order = order;
  d.curves = std::move(curves);
  const size_t n = d.curves.size(), length = n == 0 ? 0 : d.curves[0].size();
  d.mean_curve.assign(length, 0.0);
  for (const std::vector<double>& c : d.curves) {
    for (size_t s = 0; s < length; ++s) d.mean_curve[s] += c[s] / static_cast<double>(n);
    d.aopc.push_back(aopc(c));
  }
  d.aopc_mean = n == 0 ? 0.0 : std::accumulate(d.aopc.begin(), d.aopc.end(), 0.0) / static_cast<double>(n);
  return d;
}

// The sample's fill range per channel for a uniform fill: the given input range, or the samples' own.
std::pair<std::vector<float>, std::vector<float>> uniform_range(const std::vector<Tensor>& samples,
                                                                const RegionPerturbationOptions& options) {
  if (options.input_range) return {options.input_range->low, options.input_range->high};
  float low = samples[0][0], high = samples[0][0];
  for (const Tensor& s : samples) {
    for (float v : s.values()) {
      low = std::min(low, v);
      high = std::max(high, v);
    }
  }
  return {{low}, {high}};
}

void check_steps(const RegionPerturbationOptions& options, const TileGrid& grid) {
  if (options.steps > grid.count())
    throw Error("region perturbation: steps=" + std::to_string(options.steps) + " is more than the " +
                std::to_string(grid.count()) + " tiles of size " + std::to_string(options.size) +
                " on the input");
}

// Per-sample seeds derived from the run's seed, so each sample gets its own random order and fill.
uint64_t sample_seed(uint64_t seed, size_t sample, uint64_t stream) {
  std::seed_seq sequence{static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32),
                         static_cast<uint32_t>(sample), static_cast<uint32_t>(stream)};
  uint64_t out[1];
  sequence.generate(reinterpret_cast<uint32_t*>(out), reinterpret_cast<uint32_t*>(out) + 2);
  return out[0];
}

// ABPC per sample and its mean, from the MoRF and LeRF curves when both ran.
void add_abpc(MethodPerturbation& method) {
  const DegradationCurves *morf = nullptr, *lerf = nullptr;
  for (const DegradationCurves& d : method.orders) {
    if (d.order == PerturbationOrder::morf) morf = &d;
    if (d.order == PerturbationOrder::lerf) lerf = &d;
  }
  if (morf == nullptr || lerf == nullptr) return;
  double sum = 0.0;
  for (size_t i = 0; i < morf->aopc.size(); ++i) {
    method.abpc.push_back(morf->aopc[i] - lerf->aopc[i]);
    sum += method.abpc.back();
  }
  method.abpc_mean = sum / static_cast<double>(std::max<size_t>(method.abpc.size(), 1));
}

}  // namespace

std::vector<int64_t> predicted_classes(const Model& model, const std::vector<Tensor>& samples,
                                       int64_t max_batch) {
  std::vector<int64_t> classes(samples.size());
  run_in_batches(model, samples, max_batch, [&](const Tensor& batch, int64_t begin, int64_t count) {
    const Tensor out = model.run({batch}).at(0);
    const int64_t per = out.size() / out.dim(0);
    for (int64_t r = 0; r < count; ++r) {
      const float* row = out.data() + r * per;
      classes[static_cast<size_t>(begin + r)] = std::max_element(row, row + per) - row;
    }
  });
  return classes;
}

RegionPerturbationResult region_perturbation(const Model& model, const std::vector<Tensor>& samples,
                                             const std::vector<std::vector<Tensor>>& explanations,
                                             const RegionPerturbationOptions& options,
                                             std::vector<int64_t> targets) {
  if (options.recompute)
    throw Error(
        "region perturbation with recompute=1 explains every step again: give methods, not explanations");
  check_single_input(model, "region perturbation");
  check_samples(samples);
  for (const std::vector<Tensor>& method : explanations) check_explanations(method, samples);
  const TileGrid grid = tile_grid(samples[0].shape(), options.size);
  check_steps(options, grid);
  if (targets.empty()) targets = predicted_classes(model, samples, options.max_batch);
  check_targets(model, targets, samples.size());

  const size_t n = samples.size(), methods = explanations.size(), orders = options.orders.size();
  const auto [low, high] = uniform_range(samples, options);
  // Curve 0 of every sample is the random order; then method m, order o is curve 1 + m·orders + o.
  const size_t curves = 1 + methods * orders;
  std::vector<std::vector<std::vector<int64_t>>> order(n, std::vector<std::vector<int64_t>>(curves));
  std::vector<Tensor> fills(n);
  for (size_t i = 0; i < n; ++i) {
    fills[i] = fill_image(samples[i], grid, options, low, high, sample_seed(options.seed, i, 1));
    order[i][0] = random_tile_order(grid.count(), sample_seed(options.seed, i, 0));
    for (size_t m = 0; m < methods; ++m) {
      const std::vector<double> scores = tile_scores(explanations[m][i], grid);
      for (size_t o = 0; o < orders; ++o)
        order[i][1 + m * orders + o] = tile_order(scores, options.orders[o]);
    }
  }
  // Rows of sample i: the unperturbed sample, then steps 1..S of each curve.
  const int64_t steps = options.steps, per_sample = 1 + static_cast<int64_t>(curves) * steps;
  const int64_t values_per_row = samples[0].size();
  std::vector<double> values(n * static_cast<size_t>(per_sample));
  const RowSource source = [&](int64_t row, float* destination) {
    const size_t i = static_cast<size_t>(row / per_sample);
    const int64_t j = row % per_sample;
    std::memcpy(destination, samples[i].data(), static_cast<size_t>(values_per_row) * sizeof(float));
    if (j == 0) return;
    replace_tiles(destination, fills[i], grid, order[i][static_cast<size_t>((j - 1) / steps)],
                  1 + (j - 1) % steps);
  };
  run_in_batches(model, static_cast<int64_t>(n) * per_sample, samples[0].shape(), options.max_batch, source,
                 [&](const Tensor& batch, int64_t begin, int64_t count) {
                   const Tensor out = model.run({batch}).at(0);
                   const int64_t per = out.size() / out.dim(0);
                   for (int64_t r = 0; r < count; ++r) {
                     const int64_t row = begin + r;
                     values[static_cast<size_t>(row)] =
                         measured(out.data() + r * per, per, targets[static_cast<size_t>(row / per_sample)],
                                  options.measure);
                   }
                 });
  auto curves_of = [&](size_t curve) {
    std::vector<std::vector<double>> out(n);
    for (size_t i = 0; i < n; ++i) {
      const double* v = values.data() + i * static_cast<size_t>(per_sample);
      out[i].push_back(v[0]);
      for (int64_t s = 1; s <= steps; ++s)
        out[i].push_back(v[1 + static_cast<int64_t>(curve) * steps + s - 1]);
    }
    return out;
  };
  RegionPerturbationResult result;
  result.targets = targets;
  result.tiles = grid.count();
  result.random = summarized(PerturbationOrder::random, curves_of(0));
  for (size_t m = 0; m < methods; ++m) {
    MethodPerturbation method;
    for (size_t o = 0; o < orders; ++o)
      method.orders.push_back(summarized(options.orders[o], curves_of(1 + m * orders + o)));
    add_abpc(method);
    result.methods.push_back(std::move(method));
  }
  return result;
}

RegionPerturbationResult region_perturbation(const Model& model, const std::vector<Tensor>& samples,
                                             const std::vector<const Analyzer*>& analyzers,
                                             const RegionPerturbationOptions& options,
                                             std::vector<int64_t> targets) {
  check_single_input(model, "region perturbation");
  check_samples(samples);
  const TileGrid grid = tile_grid(samples[0].shape(), options.size);
  check_steps(options, grid);
  if (targets.empty()) targets = predicted_classes(model, samples, options.max_batch);
  check_targets(model, targets, samples.size());
  if (!options.recompute) {
    std::vector<std::vector<Tensor>> explanations;
    for (const Analyzer* a : analyzers)
      explanations.push_back(
          evaluation::explain_rows(model, *a, samples, targets, options.max_batch).explanations);
    return region_perturbation(model, samples, explanations, options, targets);
  }
  // The random order follows no explanation, so it runs as without recompute.
  RegionPerturbationOptions fixed = options;
  fixed.recompute = false;
  RegionPerturbationResult result =
      region_perturbation(model, samples, std::vector<std::vector<Tensor>>{}, fixed, targets);
  const size_t n = samples.size(), orders = options.orders.size();
  const auto [low, high] = uniform_range(samples, options);
  std::vector<Tensor> fills(n);
  for (size_t i = 0; i < n; ++i)
    fills[i] = fill_image(samples[i], grid, options, low, high, sample_seed(options.seed, i, 1));
  for (const Analyzer* analyzer : analyzers) {
    // Row i·orders + o: sample i perturbed along order o so far.
    std::vector<Tensor> images;
    std::vector<int64_t> row_targets;
    std::vector<std::vector<bool>> removed(n * orders,
                                           std::vector<bool>(static_cast<size_t>(grid.count()), false));
    for (size_t i = 0; i < n; ++i) {
      for (size_t o = 0; o < orders; ++o) {
        images.push_back(samples[i].clone());
        row_targets.push_back(targets[i]);
      }
    }
    std::vector<std::vector<std::vector<double>>> curves(orders, std::vector<std::vector<double>>(n));
    for (int64_t s = 0; s <= options.steps; ++s) {
      const evaluation::ExplainedRows rows =
          evaluation::explain_rows(model, *analyzer, images, row_targets, options.max_batch);
      for (size_t row = 0; row < images.size(); ++row) {
        const size_t i = row / orders, o = row % orders;
        const Tensor& out = rows.outputs[row];
        curves[o][i].push_back(measured(out.data(), out.size(), targets[i], options.measure));
        if (s == options.steps) continue;
        // The most (least) relevant tile among those still in place, ties by tile index.
        const std::vector<double> scores = tile_scores(rows.explanations[row], grid);
        int64_t best = -1;
        for (int64_t t = 0; t < grid.count(); ++t) {
          if (removed[row][static_cast<size_t>(t)]) continue;
          const double st = scores[static_cast<size_t>(t)];
          if (best < 0 ||
              (options.orders[o] == PerturbationOrder::morf ? st > scores[static_cast<size_t>(best)]
                                                            : st < scores[static_cast<size_t>(best)]))
            best = t;
        }
        removed[row][static_cast<size_t>(best)] = true;
        replace_tiles(images[row].data(), fills[i], grid, {best}, 1);
      }
    }
    MethodPerturbation method;
    for (size_t o = 0; o < orders; ++o)
      method.orders.push_back(summarized(options.orders[o], std::move(curves[o])));
    add_abpc(method);
    result.methods.push_back(std::move(method));
  }
  return result;
}

LineChart degradation_chart(const RegionPerturbationResult& result, const RegionPerturbationOptions& options,
                            const std::vector<std::string>& names) {
  const std::string measure = options.measure == PerturbationMeasure::softmax ? "softmax" : "logit";
  LineChart chart{
      "tiles of " + std::to_string(options.size) + "×" + std::to_string(options.size) + " replaced",
      "mean " + measure + " of the tracked class",
      0,
      1,
      {ChartPanel{}}};
  ChartPanel& panel = chart.panels.front();
  for (size_t m = 0; m < result.methods.size(); ++m) {
    for (const DegradationCurves& d : result.methods[m].orders) {
      const std::string order = options.orders.size() > 1 ? " (" + to_string(d.order) + ")" : "";
      panel.series.push_back({names.at(m) + order, d.mean_curve, false});
    }
  }
  panel.series.push_back({"random", result.random.mean_curve, true});
  bool first = true;
  for (const ChartSeries& s : panel.series) {
    for (double v : s.y) {
      chart.y_min = first ? v : std::min(chart.y_min, v);
      chart.y_max = first ? v : std::max(chart.y_max, v);
      first = false;
    }
  }
  if (options.measure == PerturbationMeasure::softmax)
    chart.y_min = std::min(chart.y_min, 0.0), chart.y_max = std::max(chart.y_max, 1.0);
  if (chart.y_max <= chart.y_min) chart.y_max = chart.y_min + 1.0;
  return chart;
}

}  // namespace sieve
