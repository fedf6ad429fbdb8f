// Gemm and MatMul. Both are linear in their first operand, which is how explanation rules see fully
// connected layers; the products run on oneDNN's matmul.

#include "ops/common.hpp"
#include "ops/dnnl_kernels.hpp"
#include "ops/factories.hpp"

namespace sieve::ops {
namespace {

void scale_in_place(Tensor& t, float factor) {
  if (factor == 1.0f) return;
  float* p = t.data();
  const int64_t n = t.size();
#pragma omp parallel for simd if (n > 65536)
  for (int64_t i = 0; i < n; ++i) p[i] *= factor;
}

Tensor transposed_2d(const Tensor& t) {
  const int64_t r = t.dim(0), c = t.dim(1);
  Tensor out = Tensor::uninitialized({c, r});
  for (int64_t i = 0; i < r; ++i) {
    for (int64_t j = 0; j < c; ++j) out[j * r + i] = t[i * c + j];
  }
  return out;
}

// Y = alpha·op(A)·op(B) + beta·C, with C broadcast to [M, N].
class GemmOp : public LinearOp {
 public:
  GemmOp(const OpSpec& spec) : where_(spec.where()) {
    alpha_ = spec.attributes.get_float("alpha", 1.0f);
    beta_ = spec.attributes.get_float("beta", 1.0f);
    trans_a_ = spec.attributes.get_int("transA", 0) != 0;
    trans_b_ = spec.attributes.get_int("transB", 0) != 0;
  }
  std::string_view type() const override { return "Gemm"; }
  Form form() const override { return Form::dense; }

  std::vector<Tensor> forward(std::span<const Tensor> inputs) const override {
    expect_inputs(inputs, 2, 3, where_);
    return {apply(inputs[0], inputs[1], bias(inputs))};
  }
  Tensor weight(std::span<const Tensor> inputs) const override { return inputs[1]; }
  int64_t weight_output_axis() const override { return trans_b_ ? 0 : 1; }
  // beta·C; kept in C's own (broadcastable) shape.
  Tensor bias(std::span<const Tensor> inputs) const override {
    const Tensor& c = optional_input(inputs, 2);
    if (c.empty() || beta_ == 1.0f) return c;
    Tensor scaled = c.clone();
    scale_in_place(scaled, beta_);
    return scaled;
  }

  Tensor apply(const Tensor& a, const Tensor& b, const Tensor& c) const override {
    const auto [m, k, n] = dims(a.shape(), b.shape());
    const Shape y_shape{m, n};
    // A bias over the output neurons goes into the kernel; any other broadcast of C is added afterwards.
    const bool row_bias =
        !c.empty() && c.size() == n && (c.rank() == 1 || (c.rank() == 2 && c.dim(0) == 1)) && alpha_ == 1.0f;
    Tensor y =
        m * n == 0 ? Tensor(y_shape)
        : k == 0   ? Tensor(y_shape)
                 : kernels::matmul(a, trans_a_, b, trans_b_, row_bias ? c.reshaped({n}) : Tensor(), y_shape);
    scale_in_place(y, alpha_);
    if (!c.empty() && !(row_bias && k > 0)) add_broadcast(y, c);
    return y;
  }
  Tensor apply_transpose(const Tensor& dy, const Tensor& b, const Shape& a_shape) const override {
    const auto [m, k, n] = dims(a_shape, b.shape());
    if (dy.shape() != Shape{m, n})
      throw Error(where_ + ": gradient shape " + to_string(dy.shape()) + " does not match [" +
                  std::to_string(m) + "," + std::to_string(n) + "]");
    // dA' = dY·op(B)ᵀ, then undo transA.
    Tensor da = m * k == 0 ? Tensor(Shape{m, k}) : kernels::matmul(dy, false, b, !trans_b_, Tensor(), {m, k});
    scale_in_place(da, alpha_);
    return trans_a_ ? transposed_2d(da) : da;
  }
  // ∂/∂C of beta·C broadcast to [M, N].
  Tensor bias_gradient(const Tensor& dy, const Shape& c_shape) const override {
    Tensor g = reduce_to_shape(dy, c_shape, where_).clone();
    scale_in_place(g, beta_);
    return g;
  }
  Tensor weight_gradient(const Tensor& a, const Tensor& dy, const Shape& b_shape) const override {
    const auto [m, k, n] = dims(a.shape(), b_shape);
    if (dy.shape() != Shape{m, n}) throw Error(where_ + ": gradient shape mismatch");
    // d op(B) = op(A)ᵀ·dY  ([K, N]); transB stores B as [N, K].
    Tensor db = k * n == 0 ? Tensor(Shape{k, n}) : kernels::matmul(a, !trans_a_, dy, false, Tensor(), {k, n});
    scale_in_place(db, alpha_);
    return trans_b_ ? transposed_2d(db) : db;
  }

 private:
  struct Dims {
    int64_t m, k, n;
  };
  Dims dims(const Shape& a, const Shape& b) const {
    if (a.size() != 2 || b.size() != 2) {
      throw Error(where_ + ": Gemm needs 2-D operands, got " + to_string(a) + " and " + to_string(b));
    }
    const int64_t m = trans_a_ ? a[1] : a[0], k = trans_a_ ? a[0] : a[1];
    const int64_t kb = trans_b_ ? b[1] : b[0], n = trans_b_ ? b[0] : b[1];
    if (k != kb) throw Error(where_ + ": inner dimensions differ: A " + to_string(a) + ", B " + to_string(b));
    return {m, k, n};
  }
  void add_broadcast(Tensor& y, const Tensor& c) const {
    const Shape target = broadcast_shapes(y.shape(), c.shape(), where_);
    if (target != y.shape())
      throw Error(where_ + ": C of shape " + to_string(c.shape()) + " does not broadcast to " +
                  to_string(y.shape()));
    const int64_t m = y.dim(0), n = y.dim(1);
    const Shape cs = c.rank() == 2 ? c.shape() : c.rank() == 1 ? Shape{1, c.dim(0)} : Shape{1, 1};
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t j = 0; j < n; ++j) y[i * n + j] += c[(cs[0] == 1 ? 0 : i) * cs[1] + (cs[1] == 1 ? 0 : j)];
    }
  }

  std::string where_;
  float alpha_ = 1.0f, beta_ = 1.0f;
  bool trans_a_ = false, trans_b_ = false;
};

// Numpy matmul. Linear in A for a fixed B; as a layer, B is [K, N] and the bias (added by a following Add
// after canonicalization, or given to apply) runs over N.
class MatMulOp : public LinearOp {
 public:
  MatMulOp(const OpSpec& spec) : where_(spec.where()) {}
  std::string_view type() const override { return "MatMul"; }
  Form form() const override { return Form::dense; }
  int64_t output_neuron_axis(int64_t output_rank) const override { return output_rank - 1; }

  std::vector<Tensor> forward(std::span<const Tensor> inputs) const override {
    expect_inputs(inputs, 2, 2, where_);
    return {apply(inputs[0], inputs[1], Tensor())};
  }
  Tensor weight(std::span<const Tensor> inputs) const override { return inputs[1]; }
  int64_t weight_output_axis() const override { return 1; }
  Tensor bias(std::span<const Tensor>) const override { return {}; }

  Tensor apply(const Tensor& a, const Tensor& b, const Tensor& bias) const override {
    if (a.rank() == 0 || b.rank() == 0) throw Error(where_ + ": MatMul operands must not be scalars");
    // 1-D operands are promoted to matrices and the added axis removed again (numpy rules).
    const Tensor a2 = a.rank() == 1 ? a.reshaped({1, a.dim(0)}) : a;
    const Tensor b2 = b.rank() == 1 ? b.reshaped({b.dim(0), 1}) : b;
    const int64_t k = a2.shape().back(), kb = b2.dim(b2.rank() - 2);
    if (k != kb)
      throw Error(where_ + ": inner dimensions differ: " + to_string(a.shape()) + " @ " +
                  to_string(b.shape()));
    const Shape batch = broadcast_shapes(Shape(a2.shape().begin(), a2.shape().end() - 2),
                                         Shape(b2.shape().begin(), b2.shape().end() - 2), where_);
    Shape c_shape = batch;
    c_shape.push_back(a2.dim(a2.rank() - 2));
    c_shape.push_back(b2.shape().back());
    if (!bias.empty() && bias.size() != c_shape.back())
      throw Error(where_ + ": bias does not match the output features");
    Tensor c = element_count(c_shape) == 0 || k == 0 ? Tensor(c_shape)
                                                     : kernels::matmul(a2, false, b2, false, bias, c_shape);
    if (k == 0 && !bias.empty()) throw Error(where_ + ": empty inner dimension with a bias");
    Shape out = batch;
    if (a.rank() > 1) out.push_back(c_shape[c_shape.size() - 2]);
    if (b.rank() > 1) out.push_back(c_shape.back());
    return c.reshaped(out);
  }
  // General numpy-matmul gradient (any ranks, batch broadcasting); the layer form above is its 2-D case.
  std::vector<Tensor> vjp(const VjpArgs& args) const override {
    std::vector<Tensor> grads(2);
    const Tensor& g = args.grad_outputs[0];
    if (g.empty()) return grads;
    const Shape &as = args.input_shapes[0], &bs = args.input_shapes[1];
    if (as.size() < 2 || bs.size() < 2)
      throw Error(where_ + ": gradient of MatMul with 1-D operands is not supported");
    const Shape batch(g.shape().begin(), g.shape().end() - 2);
    auto full = [&](const Shape& s) {
      Shape f = batch;
      f.insert(f.end(), s.end() - 2, s.end());
      return f;
    };
    if (args.wanted[0]) {
      const Tensor da = kernels::matmul(g, false, args.inputs[1], true, Tensor(), full(as));
      grads[0] = reduce_to_shape(da, as, where_);
    }
    if (args.wanted[1]) {
      const Tensor db = kernels::matmul(args.inputs[0], true, g, false, Tensor(), full(bs));
      grads[1] = reduce_to_shape(db, bs, where_);
    }
    return grads;
  }
  Tensor apply_transpose(const Tensor& dy, const Tensor& b, const Shape& a_shape) const override {
    check_layer(a_shape, b.shape());
    const int64_t k = b.dim(0), n = b.dim(1), rows = element_count(a_shape) / std::max<int64_t>(k, 1);
    if (dy.size() != rows * n)
      throw Error(where_ + ": gradient shape " + to_string(dy.shape()) + " does not match");
    if (rows * k == 0) return Tensor(a_shape);
    return kernels::matmul(dy.reshaped({rows, n}), false, b, true, Tensor(), {rows, k}).reshaped(a_shape);
  }
  Tensor weight_gradient(const Tensor& a, const Tensor& dy, const Shape& b_shape) const override {
    check_layer(a.shape(), b_shape);
    const int64_t k = b_shape[0], n = b_shape[1], rows = a.size() / std::max<int64_t>(k, 1);
    if (dy.size() != rows * n) throw Error(where_ + ": gradient shape does not match");
    if (rows == 0) return Tensor(b_shape);
    return kernels::matmul(a.reshaped({rows, k}), true, dy.reshaped({rows, n}), false, Tensor(), {k, n});
  }

 private:
  // As a layer, MatMul maps [..., K] to [..., N] with a 2-D weight.
  void check_layer(const Shape& a, const Shape& b) const {
    if (b.size() != 2 || a.size() < 2 || a.back() != b[0]) {
      throw Error(where_ + ": MatMul as a layer needs a [K, N] weight and an input [..., K]; got " +
                  to_string(a) + " and " + to_string(b));
    }
  }
  std::string where_;
};

}  // namespace

std::unique_ptr<Op> make_gemm(const OpSpec& spec) {
  return std::make_unique<GemmOp>(spec);
}
std::unique_ptr<Op> make_matmul(const OpSpec& spec) {
  return std::make_unique<MatMulOp>(spec);
}

}  // namespace sieve::ops
