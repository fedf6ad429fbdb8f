#include <algorithm>
#include <sstream>

#include "sieve/analyzer.hpp"
#include "sieve/batch.hpp"
#include "sieve/error.hpp"
#include "sieve/io/npy.hpp"
#include "sieve/parse.hpp"
#include "sieve/text_inputs.hpp"

namespace sieve {
namespace {

int64_t values_per_sample(const Shape& output_shape) {
  if (output_shape.empty()) throw Error("the explained output has no batch axis");
  return output_shape[0] == 0 ? 0 : element_count(output_shape) / output_shape[0];
}

void check_index(int64_t index, int64_t per_sample) {
  if (index < 0 || index >= per_sample) {
    throw Error("target index " + std::to_string(index) + " out of range: the model has " +
                std::to_string(per_sample) + " outputs per sample");
  }
}

Shape sample_shape(const Shape& output_shape) {
  Shape one = output_shape;
  one[0] = 1;
  return one;
}

// `mask` ([1, ...] or [samples, ...]) as weights for the batch whose row r is sample samples[r].
Tensor mask_weights(const Tensor& mask, const Shape& output_shape, const std::vector<int64_t>& samples) {
  const Shape one = sample_shape(output_shape);
  const int64_t rows = output_shape[0];
  const bool per_sample = mask.rank() == static_cast<int64_t>(one.size()) && mask.dim(0) != 1 &&
                          std::equal(one.begin() + 1, one.end(), mask.shape().begin() + 1);
  if (mask.shape() != one && !per_sample) {
    Shape all_samples = one;
    all_samples[0] = -1;  // printed as "?": any number of samples
    throw Error("target mask of shape " + to_string(mask.shape()) + " does not fit the output " +
                to_string(output_shape) + ": give " + to_string(one) + " (one sample) or " +
                to_string(all_samples) + " (one row per sample)");
  }
  std::vector<int64_t> mask_rows(static_cast<size_t>(rows), 0);
  if (per_sample) {
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t sample = samples.at(static_cast<size_t>(r));
      if (sample >= mask.dim(0)) {
        throw Error("target mask of shape " + to_string(mask.shape()) + " has no row for sample " +
                    std::to_string(sample));
      }
      mask_rows[static_cast<size_t>(r)] = sample;
    }
  }
  return gathered_rows(mask, mask_rows);
}

}  // namespace

Tensor target_seed(const Shape& output_shape, const std::vector<int64_t>& targets,
                   const std::vector<float>& values) {
  const int64_t per = values_per_sample(output_shape);
  if (static_cast<int64_t>(targets.size()) != output_shape[0]) throw Error("one target per sample is needed");
  Tensor seed(output_shape);
  for (size_t i = 0; i < targets.size(); ++i) {
    check_index(targets[i], per);
    seed[static_cast<int64_t>(i) * per + targets[i]] = values[i];
  }
  return seed;
}

Target::Target(std::vector<int64_t> indices) : indices_(std::move(indices)) {}
Target::Target(std::initializer_list<int64_t> indices) : indices_(indices) {}

Target Target::weighted(Tensor weights) {
  Target t(std::vector<int64_t>{});
  t.weights_ = std::move(weights);
  return t;
}

Tensor Target::gradient_seed(const Tensor& output) const {
  if (is_index()) return target_seed(output.shape(), indices_, std::vector<float>(indices_.size(), 1.0f));
  if (weights_.shape() != output.shape()) {
    throw Error("target weights of shape " + to_string(weights_.shape()) + " differ from the output shape " +
                to_string(output.shape()));
  }
  return weights_;
}

Tensor Target::relevance_seed(const Tensor& output) const {
  if (is_index()) {
    const int64_t per = values_per_sample(output.shape());
    std::vector<float> values(indices_.size(), 0.0f);
    for (size_t i = 0; i < indices_.size() && static_cast<int64_t>(i) < output.dim(0); ++i) {
      if (indices_[i] >= 0 && indices_[i] < per)
        values[i] = output[static_cast<int64_t>(i) * per + indices_[i]];
    }
    return target_seed(output.shape(), indices_, values);
  }
  Tensor seed = gradient_seed(output).clone();
  for (int64_t i = 0; i < seed.size(); ++i) seed[i] *= output[i];
  return seed;
}

Target Target::rows(const std::vector<int64_t>& rows) const {
  if (!is_index()) return weighted(gathered_rows(weights_, rows));
  std::vector<int64_t> picked;
  for (int64_t r : rows) picked.push_back(indices_.at(static_cast<size_t>(r)));
  return Target(std::move(picked));
}

TargetSelection TargetSelection::parse(const std::string& text) {
  TargetSelection t;
  if (text == "max") return t;
  if (text == "all" || text == "sum") {
    t.kind = text == "all" ? Kind::all : Kind::sum;
    return t;
  }
  t.kind = Kind::indices;
  std::stringstream s(text);
  std::string item;
  while (std::getline(s, item, ',')) {
    const std::optional<int64_t> v = parse_integer(item);
    if (!v || *v < 0)
      throw Error("target '" + text + "': expected max, all, sum, or flat output indices like 3 or 1,4");
    t.indices.push_back(*v);
  }
  return t;
}

TargetSelection TargetSelection::weights(Tensor mask) {
  TargetSelection t;
  t.kind = Kind::mask;
  t.mask = std::move(mask);
  return t;
}

std::vector<std::vector<int64_t>> TargetSelection::resolve(const Tensor& output) const {
  if (kind == Kind::sum || kind == Kind::mask)
    throw Error("a sum or mask target has no per-sample index; use TargetSelection::passes");
  const int64_t n = output.rank() == 0 ? 0 : output.dim(0), per = values_per_sample(output.shape());
  std::vector<std::vector<int64_t>> passes;
  if (kind == Kind::max) {
    std::vector<int64_t> best(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
      const float* row = output.data() + i * per;
      best[static_cast<size_t>(i)] = std::max_element(row, row + per) - row;
    }
    passes.push_back(best);
    return passes;
  }
  std::vector<int64_t> wanted = indices;
  if (kind == Kind::all) {
    for (int64_t c = 0; c < per; ++c) wanted.push_back(c);
  }
  for (int64_t c : wanted) {
    check_index(c, per);
    passes.emplace_back(static_cast<size_t>(n), c);
  }
  return passes;
}

std::vector<Target> TargetSelection::passes(const Tensor& output, const std::vector<int64_t>& samples) const {
  if (kind == Kind::sum) return {Target::weighted(Tensor(output.shape(), 1.0f))};
  if (kind == Kind::mask) return {Target::weighted(mask_weights(mask, output.shape(), samples))};
  std::vector<Target> targets;
  for (std::vector<int64_t>& t : resolve(output)) targets.emplace_back(std::move(t));
  return targets;
}

TargetSelection read_target(const std::string& text) {
  return text.ends_with(".npy") ? TargetSelection::weights(read_npy(text)) : TargetSelection::parse(text);
}

}  // namespace sieve
