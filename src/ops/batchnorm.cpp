// BatchNormalization in its inference form: a per-channel affine map y = w_c·x + b_c with
// w = γ/√(σ²+ε) and b = β − μ·w. Canonicalization folds it into a preceding Conv/Gemm; one that
// stays is an affine linear layer of its own.

#include <cmath>

#include "ops/common.hpp"
#include "ops/factories.hpp"

namespace sieve::ops {
namespace {

class BatchNormOp : public LinearOp {
 public:
  BatchNormOp(const OpSpec& spec) : where_(spec.where()) {
    epsilon_ = spec.attributes.get_float("epsilon", 1e-5f);
    if (spec.attributes.get_int("training_mode", 0) != 0 || spec.num_outputs > 1) {
      spec.fail("only the inference form of BatchNormalization is supported (training_mode=0, one output)");
    }
    if (spec.attributes.get_int("spatial", 1) != 1) spec.fail("spatial=0 is not supported");
  }
  std::string_view type() const override { return "BatchNormalization"; }
  Form form() const override { return Form::channel_affine; }

  std::vector<Tensor> forward(std::span<const Tensor> inputs) const override {
    expect_inputs(inputs, 5, 5, where_);
    return {apply(inputs[0], weight(inputs), bias(inputs))};
  }
  Tensor weight(std::span<const Tensor> inputs) const override {
    const int64_t c = channels(inputs);
    Tensor w = Tensor::uninitialized({c});
    for (int64_t i = 0; i < c; ++i)
      w[i] = static_cast<float>(inputs[1][i] / std::sqrt(static_cast<double>(inputs[4][i]) + epsilon_));
    return w;
  }
  Tensor bias(std::span<const Tensor> inputs) const override {
    const Tensor w = weight(inputs);
    Tensor b = Tensor::uninitialized(w.shape());
    for (int64_t i = 0; i < w.size(); ++i) b[i] = inputs[2][i] - inputs[3][i] * w[i];
    return b;
  }

  bool parameters_are_inputs() const override { return false; }

  Tensor apply(const Tensor& x, const Tensor& w, const Tensor& b) const override {
    const auto [n, c, inner] = layout(x.shape(), w);
    Tensor y = Tensor::uninitialized(x.shape());
#pragma omp parallel for collapse(2) if (x.size() > 65536)
    for (int64_t i = 0; i < n; ++i) {
      for (int64_t j = 0; j < c; ++j) {
        const float scale = w[j], shift = b.empty() ? 0.0f : b[j];
        const float* px = x.data() + (i * c + j) * inner;
        float* py = y.data() + (i * c + j) * inner;
        for (int64_t k = 0; k < inner; ++k) py[k] = px[k] * scale + shift;
      }
    }
    return y;
  }
  Tensor apply_transpose(const Tensor& dy, const Tensor& w, const Shape& x_shape) const override {
    if (dy.shape() != x_shape)
      throw Error(where_ + ": gradient shape " + to_string(dy.shape()) + " != " + to_string(x_shape));
    return apply(dy, w, Tensor());
  }
  Tensor weight_gradient(const Tensor& x, const Tensor& dy, const Shape& w_shape) const override {
    const auto [n, c, inner] = layout(x.shape(), Tensor(w_shape));
    Tensor dw(w_shape);
    for (int64_t j = 0; j < c; ++j) {
      double sum = 0.0;
      for (int64_t i = 0; i < n; ++i) {
        const int64_t base = (i * c + j) * inner;
        for (int64_t k = 0; k < inner; ++k) sum += static_cast<double>(x[base + k]) * dy[base + k];
      }
      dw[j] = static_cast<float>(sum);
    }
    return dw;
  }

 private:
  struct Layout {
    int64_t n, c, inner;
  };
  Layout layout(const Shape& x, const Tensor& w) const {
    if (x.size() < 2) throw Error(where_ + ": input must be [N, C, ...], got " + to_string(x));
    if (w.rank() != 1 || w.dim(0) != x[1]) {
      throw Error(where_ + ": " + std::to_string(w.size()) + " channel parameters for input " + to_string(x));
    }
    const int64_t inner = x[0] * x[1] == 0 ? 0 : element_count(x) / (x[0] * x[1]);
    return {x[0], x[1], inner};
  }
  int64_t channels(std::span<const Tensor> inputs) const {
    const int64_t c = inputs[1].size();
    for (size_t i = 2; i < 5; ++i) {
      if (inputs[i].size() != c) throw Error(where_ + ": scale, B, mean and var must have the same length");
    }
    return c;
  }

  std::string where_;
  float epsilon_;
};

}  // namespace

std::unique_ptr<Op> make_batch_normalization(const OpSpec& spec) {
  return std::make_unique<BatchNormOp>(spec);
}

}  // namespace sieve::ops
