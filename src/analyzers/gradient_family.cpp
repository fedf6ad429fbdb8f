// The gradient family: Gradient, Input × Gradient, Integrated Gradients, SmoothGrad, DeconvNet and
// Guided Backprop. All seed the target output with 1 (METHODS.md §1.11, §2.1–2.3).

#include "analyzers/gradient_family.hpp"

#include <cmath>
#include <cstring>
#include <random>

#include "analyzers/baseline.hpp"
#include "sieve/batch.hpp"
#include "sieve/error.hpp"
#include "sieve/io/npy.hpp"

namespace sieve::analyzers {
namespace {

enum class Postprocess { none, abs, square };

Postprocess read_postprocess(Params& p) {
  const std::string v = p.choice("postprocess", "none", {"none", "abs", "square"});
  return v == "abs" ? Postprocess::abs : v == "square" ? Postprocess::square : Postprocess::none;
}

void apply_postprocess(Tensor& t, Postprocess how) {
  if (how == Postprocess::none) return;
  for (float& v : t.values()) v = how == Postprocess::abs ? std::abs(v) : v * v;
}

// Mean gradient over `count` perturbed copies of every sample: copy k of sample i is make(i, k, row).
// Copies of all samples go through the model together, `rows` at a time.
template <class Make>
Tensor mean_gradient(const ForwardPass& pass, const Target& target, int64_t count, int64_t rows, Make make) {
  const Tensor& x = pass.input();
  const int64_t n = x.dim(0), per = x.size() / std::max<int64_t>(n, 1);
  const int64_t total = n * count;
  Shape row_shape = x.shape();
  row_shape[0] = 1;
  std::vector<double> sum(static_cast<size_t>(x.size()), 0.0);
  const RowSource copy = [&](int64_t row, float* destination) {
    make(row / count, row % count, destination);
  };
  run_in_batches(pass.model(), total, row_shape, std::min(rows, total), copy,
                 [&](const Tensor& batch, int64_t begin, int64_t m) {
                   std::vector<int64_t> samples;  // the row of `pass` each copy belongs to
                   for (int64_t r = 0; r < batch.dim(0); ++r)
                     samples.push_back((begin + std::min(r, m - 1)) / count);
                   const ForwardPass path = pass.at(batch, samples);
                   const Tensor g = path.reverse(target.rows(samples).gradient_seed(path.output()));
                   for (int64_t r = 0; r < m; ++r) {
                     const int64_t i = (begin + r) / count;
                     for (int64_t j = 0; j < per; ++j)
                       sum[static_cast<size_t>(i * per + j)] += g[r * per + j];
                   }
                 });
  Tensor mean = Tensor::uninitialized(x.shape());
  for (int64_t j = 0; j < x.size(); ++j)
    mean[j] = static_cast<float>(sum[static_cast<size_t>(j)] / static_cast<double>(count));
  return mean;
}

class Gradient : public Analyzer {
 public:
  explicit Gradient(Params& p) : post_(read_postprocess(p)) {}
  Tensor explain(const ForwardPass& pass, const Target& target) const override {
    Tensor g = pass.reverse(target.gradient_seed(pass.output()));
    if (post_ != Postprocess::none) g = g.clone();
    apply_postprocess(g, post_);
    return g;
  }

 private:
  Postprocess post_;
};

class InputXGradient : public Analyzer {
 public:
  Tensor explain(const ForwardPass& pass, const Target& target) const override {
    const Tensor g = pass.reverse(target.gradient_seed(pass.output()));
    Tensor r = Tensor::uninitialized(g.shape());
    for (int64_t i = 0; i < g.size(); ++i) r[i] = g[i] * pass.input()[i];
    return r;
  }
};

class IntegratedGradients : public Analyzer {
 public:
  explicit IntegratedGradients(Params& p) : baseline_(p.text("baseline", "0"), "integrated_gradients") {
    steps_ = p.integer("steps", 32, 1, 100000);
    batch_ = p.integer("batch", 32, 1, 1 << 20);
  }
  // (x − x̄) ⊙ mean of ∇f at x̄ + α(x − x̄), α = (k + ½)/m: the midpoint rule over the straight path.
  Tensor explain(const ForwardPass& pass, const Target& target) const override {
    const Tensor& x = pass.input();
    const int64_t per = x.size() / std::max<int64_t>(x.dim(0), 1);
    const Tensor reference = baseline_.for_batch(x);
    const int64_t m = steps_;
    const Tensor mean = mean_gradient(pass, target, m, batch_, [&](int64_t i, int64_t k, float* row) {
      const float alpha = static_cast<float>((static_cast<double>(k) + 0.5) / static_cast<double>(m));
      const float* xi = x.data() + i * per;
      const float* bi = reference.data() + i * per;
      for (int64_t j = 0; j < per; ++j) row[j] = bi[j] + alpha * (xi[j] - bi[j]);
    });
    Tensor r = Tensor::uninitialized(x.shape());
    for (int64_t j = 0; j < x.size(); ++j) r[j] = (x[j] - reference[j]) * mean[j];
    return r;
  }

 private:
  int64_t steps_, batch_;
  Baseline baseline_;
};

class SmoothGrad : public Analyzer {
 public:
  explicit SmoothGrad(Params& p) : post_(read_postprocess(p)) {
    samples_ = p.integer("n", 32, 1, 100000);
    noise_level_ = p.number("noise_level", 0.2, 0.0, 100.0);
    seed_ = static_cast<uint64_t>(p.integer("seed", 0, 0, INT64_MAX));
    batch_ = p.integer("batch", 32, 1, 1 << 20);
    const std::string noise = p.text("noise", "");
    if (!noise.empty()) noise_ = read_npy(noise);
  }
  // Mean gradient over n copies x + η, η ~ N(0, σ²), σ = noise_level · (max − min of the sample), drawn
  // from the seed and the sample's index in the run (so any batching gives the same draws). With
  // noise=FILE the draws come from an array [N, n, ...input] over the run's N samples instead (for
  // reproducing other libraries).
  Tensor explain(const ForwardPass& pass, const Target& target) const override {
    const Tensor& x = pass.input();
    const int64_t n = x.dim(0), per = x.size() / std::max<int64_t>(n, 1);
    int64_t count = samples_;
    if (!noise_.empty()) {
      int64_t last = 0;
      for (int64_t i = 0; i < n; ++i) last = std::max(last, pass.sample(i));
      if (noise_.rank() < 2 || noise_.dim(0) <= last ||
          noise_.size() != noise_.dim(0) * noise_.dim(1) * per) {
        throw Error("smoothgrad: noise of shape " + to_string(noise_.shape()) + " does not fit sample " +
                    std::to_string(last) + " of inputs shaped " + to_string(x.shape()) +
                    " (expected [samples, n, ...input])");
      }
      count = noise_.dim(1);
    }
    std::vector<float> sigma(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
      const auto [lo, hi] = std::minmax_element(x.data() + i * per, x.data() + (i + 1) * per);
      sigma[static_cast<size_t>(i)] = static_cast<float>(noise_level_) * (*hi - *lo);
    }
    Tensor mean = mean_gradient(pass, target, count, batch_, [&](int64_t i, int64_t k, float* row) {
      const float* xi = x.data() + i * per;
      if (!noise_.empty()) {
        const float* eta = noise_.data() + (pass.sample(i) * count + k) * per;
        for (int64_t j = 0; j < per; ++j) row[j] = xi[j] + eta[j];
        return;
      }
      std::mt19937_64 rng(seed_ * 1000003u + static_cast<uint64_t>(pass.sample(i) * count + k));
      std::normal_distribution<float> normal(0.0f, sigma[static_cast<size_t>(i)]);
      for (int64_t j = 0; j < per; ++j) row[j] = xi[j] + normal(rng);
    });
    apply_postprocess(mean, post_);
    return mean;
  }

 private:
  Postprocess post_;
  int64_t samples_, batch_;
  double noise_level_;
  uint64_t seed_;
  Tensor noise_;
};

// DeconvNet and Guided Backprop replace only the backward mapping of ReLU.
class ModifiedRelu : public Analyzer {
 public:
  explicit ModifiedRelu(bool gate_by_forward) {
    mapping_ = [gate_by_forward](const Node&, const VjpArgs& a) -> std::vector<Tensor> {
      const Tensor& g = a.grad_outputs[0];
      Tensor r = Tensor::uninitialized(g.shape());
      for (int64_t i = 0; i < g.size(); ++i) {
        const bool open = g[i] > 0.0f && (!gate_by_forward || a.outputs[0][i] > 0.0f);
        r[i] = open ? g[i] : 0.0f;
      }
      return {r};
    };
  }
  Tensor explain(const ForwardPass& pass, const Target& target) const override {
    const auto& nodes = pass.model().graph().nodes();
    return pass.reverse(target.gradient_seed(pass.output()), [&](size_t n) -> const BackwardMapping* {
      return nodes[n].op->is_relu() ? &mapping_ : nullptr;
    });
  }

 private:
  BackwardMapping mapping_;
};

}  // namespace

std::unique_ptr<Analyzer> make_gradient(Params& p) {
  return std::make_unique<Gradient>(p);
}
std::unique_ptr<Analyzer> make_input_x_gradient(Params&) {
  return std::make_unique<InputXGradient>();
}
std::unique_ptr<Analyzer> make_integrated_gradients(Params& p) {
  return std::make_unique<IntegratedGradients>(p);
}
std::unique_ptr<Analyzer> make_smoothgrad(Params& p) {
  return std::make_unique<SmoothGrad>(p);
}
std::unique_ptr<Analyzer> make_deconvnet(Params&) {
  return std::make_unique<ModifiedRelu>(false);
}
std::unique_ptr<Analyzer> make_guided_backprop(Params&) {
  return std::make_unique<ModifiedRelu>(true);
}

}  // namespace sieve::analyzers
