#pragma once

// Element-wise loops shared by the element-wise op families: plain loops the compiler vectorizes,
// parallel with OpenMP on large tensors.

#include <string>
#include <vector>

#include "ops/common.hpp"

namespace sieve::ops {

inline constexpr int64_t kParallelThreshold = 1 << 15;

// y_i = f(x_i).
template <class F>
Tensor map_unary(const Tensor& x, F f) {
  Tensor y = Tensor::uninitialized(x.shape());
  const float* px = x.data();
  float* py = y.data();
  const int64_t n = x.size();
#pragma omp parallel for simd if (n > kParallelThreshold)
  for (int64_t i = 0; i < n; ++i) py[i] = f(px[i]);
  return y;
}

// y_i = f(a_i, b_i) for two tensors of one shape.
template <class F>
Tensor zip(const Tensor& a, const Tensor& b, F f) {
  Tensor y = Tensor::uninitialized(a.shape());
  const float *pa = a.data(), *pb = b.data();
  float* py = y.data();
  const int64_t n = a.size();
#pragma omp parallel for simd if (n > kParallelThreshold)
  for (int64_t i = 0; i < n; ++i) py[i] = f(pa[i], pb[i]);
  return y;
}

// Applies f(a_i, b_i) with numpy broadcasting. The innermost axis is a contiguous run whenever possible.
template <class F>
Tensor broadcast_binary(const Tensor& a, const Tensor& b, const std::string& where, F f) {
  const Shape out = broadcast_shapes(a.shape(), b.shape(), where);
  Tensor y = Tensor::uninitialized(out);
  const int64_t n = y.size();
  if (n == 0) return y;
  if (a.shape() == b.shape()) {
    const float *pa = a.data(), *pb = b.data();
    float* py = y.data();
#pragma omp parallel for simd if (n > kParallelThreshold)
    for (int64_t i = 0; i < n; ++i) py[i] = f(pa[i], pb[i]);
    return y;
  }
  const size_t rank = out.size();
  auto broadcast_strides = [&](const Shape& s) {
    std::vector<int64_t> st(rank, 0);
    const std::vector<int64_t> own = strides_of(s);
    for (size_t i = 0; i < s.size(); ++i) {
      if (s[i] != 1) st[rank - s.size() + i] = own[i];
    }
    return st;
  };
  const std::vector<int64_t> sa = broadcast_strides(a.shape()), sb = broadcast_strides(b.shape());
  const int64_t inner = rank == 0 ? 1 : out.back();
  const int64_t rows = n / inner;
  const int64_t ia = rank == 0 ? 0 : sa.back(), ib = rank == 0 ? 0 : sb.back();
  const float *pa = a.data(), *pb = b.data();
  float* py = y.data();
#pragma omp parallel for if (n > kParallelThreshold)
  for (int64_t r = 0; r < rows; ++r) {
    int64_t rem = r, oa = 0, ob = 0;
    for (size_t d = rank - 1; d-- > 0;) {
      const int64_t idx = rem % out[d];
      rem /= out[d];
      oa += idx * sa[d];
      ob += idx * sb[d];
    }
    float* row = py + r * inner;
    for (int64_t i = 0; i < inner; ++i) row[i] = f(pa[oa + i * ia], pb[ob + i * ib]);
  }
  return y;
}

}  // namespace sieve::ops
