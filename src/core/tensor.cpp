#include "sieve/tensor.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>

#include "sieve/error.hpp"

namespace sieve {
namespace {

// 64-byte alignment lets oneDNN and the vectorized loops use aligned loads on every tensor.
std::shared_ptr<float[]> allocate(int64_t count) {
  const size_t bytes = ((static_cast<size_t>(std::max<int64_t>(count, 1)) * sizeof(float) + 63) / 64) * 64;
  void* p = std::aligned_alloc(64, bytes);
  if (p == nullptr) throw Error("out of memory allocating " + std::to_string(count) + " floats");
  return std::shared_ptr<float[]>(static_cast<float*>(p), [](float* q) { std::free(q); });
}

}  // namespace

int64_t checked_element_count(const Shape& shape, const std::string& what) {
  int64_t count = 1;
  for (int64_t d : shape) {
    if (d < 0) throw Error(what + ": negative dimension in shape " + to_string(shape));
    if (d == 0) return 0;
    if (count > kMaxTensorElements / d) {
      throw Error(what + ": shape " + to_string(shape) + " has more than " +
                  std::to_string(kMaxTensorElements) + " elements");
    }
    count *= d;
  }
  return count;
}

int64_t element_count(const Shape& shape) {
  int64_t count = 1;
  for (int64_t d : shape) count *= d;
  return count;
}

std::vector<int64_t> strides_of(const Shape& shape) {
  std::vector<int64_t> s(shape.size(), 1);
  for (size_t i = shape.size(); i-- > 1;) s[i - 1] = s[i] * shape[i];
  return s;
}

std::string to_string(const Shape& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) s += ",";
    s += shape[i] < 0 ? std::string("?") : std::to_string(shape[i]);
  }
  return s + "]";
}

Tensor Tensor::uninitialized(Shape shape) {
  Tensor t;
  t.size_ = checked_element_count(shape);
  t.shape_ = std::move(shape);
  t.storage_ = allocate(t.size_);
  return t;
}

Tensor Tensor::borrowed(Shape shape, std::shared_ptr<float[]> storage) {
  Tensor t;
  t.size_ = checked_element_count(shape);
  t.shape_ = std::move(shape);
  t.storage_ = std::move(storage);
  return t;
}

Tensor::Tensor(Shape shape) : Tensor(std::move(shape), 0.0f) {}

Tensor::Tensor(Shape shape, float fill) : Tensor(uninitialized(std::move(shape))) {
  std::fill_n(storage_.get(), size_, fill);
}

Tensor::Tensor(Shape shape, std::span<const float> values) : Tensor(uninitialized(std::move(shape))) {
  if (static_cast<int64_t>(values.size()) != size_) {
    throw Error("tensor of shape " + to_string(shape_) + " given " + std::to_string(values.size()) +
                " values");
  }
  std::copy(values.begin(), values.end(), storage_.get());
}

Tensor Tensor::reshaped(Shape shape) const {
  if (checked_element_count(shape) != size_) {
    throw Error("cannot reshape " + to_string(shape_) + " to " + to_string(shape));
  }
  Tensor t = *this;
  t.shape_ = std::move(shape);
  return t;
}

Tensor Tensor::clone() const {
  if (empty()) return {};
  Tensor t = uninitialized(shape_);
  std::memcpy(t.data(), data(), static_cast<size_t>(size_) * sizeof(float));
  return t;
}

Tensor gathered_rows(const Tensor& batch, const std::vector<int64_t>& rows) {
  Shape shape = batch.shape();
  shape[0] = static_cast<int64_t>(rows.size());
  const int64_t per = batch.dim(0) == 0 ? 0 : batch.size() / batch.dim(0);
  Tensor t = Tensor::uninitialized(shape);
  for (size_t r = 0; r < rows.size(); ++r) {
    if (rows[r] < 0 || rows[r] >= batch.dim(0))
      throw Error("row " + std::to_string(rows[r]) + " of a batch of " + std::to_string(batch.dim(0)));
    std::memcpy(t.data() + static_cast<int64_t>(r) * per, batch.data() + rows[r] * per,
                static_cast<size_t>(per) * sizeof(float));
  }
  return t;
}

Tensor batch_row(const Tensor& batch, int64_t i) {
  return gathered_rows(batch, {i});
}

Tensor padded_batch(const Tensor& batch, int64_t rows) {
  const int64_t count = batch.dim(0);
  if (count == 0 || count >= rows) return batch;
  std::vector<int64_t> picked(static_cast<size_t>(rows), count - 1);
  for (int64_t r = 0; r < count; ++r) picked[static_cast<size_t>(r)] = r;
  return gathered_rows(batch, picked);
}

Tensor leading_rows(const Tensor& batch, int64_t count) {
  if (count >= batch.dim(0)) return batch;
  Shape shape = batch.shape();
  shape[0] = count;
  const int64_t per = batch.size() / batch.dim(0);
  return Tensor(shape, std::span<const float>(batch.data(), static_cast<size_t>(count * per)));
}

}  // namespace sieve
