#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace sieve {

using Shape = std::vector<int64_t>;

// Largest number of elements a single tensor may have (16 GiB of float32). Sizes read from files are
// checked against it before anything is allocated.
inline constexpr int64_t kMaxTensorElements = int64_t{1} << 32;

// Product of the dimensions; throws sieve::Error for a negative dimension or a product above
// kMaxTensorElements (checked without overflow). `what` names the tensor in the message.
int64_t checked_element_count(const Shape& shape, const std::string& what = "tensor");
// Product of the dimensions for shapes already known to be valid.
int64_t element_count(const Shape& shape);
// C-order strides of a shape, in elements.
std::vector<int64_t> strides_of(const Shape& shape);
std::string to_string(const Shape& shape);

// A dense float32 tensor in C order. Copies share the storage (values flow through the graph by
// reference); operations never write into their inputs, so shared storage is safe.
class Tensor {
 public:
  Tensor() = default;
  // Zero-filled tensor.
  explicit Tensor(Shape shape);
  Tensor(Shape shape, float fill);
  Tensor(Shape shape, std::span<const float> values);
  // Storage left uninitialized, for outputs that a kernel writes completely.
  static Tensor uninitialized(Shape shape);
  // A tensor over memory owned elsewhere (another library's array), read without copying: `storage`
  // holds element_count(shape) floats in C order and keeps their owner alive. It need not be 64-byte
  // aligned (aligned loads are faster, not required). The caller holds a copy of `storage` while the
  // library uses the tensor, so the tensor never owns it alone and is never overwritten in place.
  static Tensor borrowed(Shape shape, std::shared_ptr<float[]> storage);

  const Shape& shape() const { return shape_; }
  int64_t rank() const { return static_cast<int64_t>(shape_.size()); }
  int64_t dim(int64_t axis) const { return shape_.at(static_cast<size_t>(axis)); }
  int64_t size() const { return size_; }
  bool empty() const { return storage_ == nullptr; }

  float* data() { return storage_.get(); }
  const float* data() const { return storage_.get(); }
  std::span<float> values() { return {storage_.get(), static_cast<size_t>(size_)}; }
  std::span<const float> values() const { return {storage_.get(), static_cast<size_t>(size_)}; }
  float& operator[](int64_t i) { return storage_.get()[i]; }
  float operator[](int64_t i) const { return storage_.get()[i]; }

  // Same values, another shape with the same element count; shares the storage.
  Tensor reshaped(Shape shape) const;
  // Deep copy with its own storage.
  Tensor clone() const;
  // True when this tensor is the only owner of its storage (so it may be overwritten in place).
  bool unique() const { return storage_.use_count() == 1; }

 private:
  Shape shape_;
  int64_t size_ = 0;
  std::shared_ptr<float[]> storage_;
};

// Rows of a batch [N, ...] (the leading axis), as tensors of their own.
// Row i of a batch [N, ...], as [1, ...].
Tensor batch_row(const Tensor& batch, int64_t i);
// Rows rows[0], rows[1], … of a batch [N, ...], as [rows.size(), ...].
Tensor gathered_rows(const Tensor& batch, const std::vector<int64_t>& rows);
// `batch` padded to `rows` rows with copies of its last row; itself when it has no rows or enough.
Tensor padded_batch(const Tensor& batch, int64_t rows);
// The first `count` rows of a batch (itself when it has no more).
Tensor leading_rows(const Tensor& batch, int64_t count);

}  // namespace sieve
