#include "analyzers/baseline.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "sieve/error.hpp"
#include "sieve/io/npy.hpp"
#include "sieve/parse.hpp"

namespace sieve::analyzers {

Baseline::Baseline(const std::string& text, const std::string& method) : method_(method) {
  const std::optional<double> v = parse_double(text);
  if (v && std::isfinite(*v)) {
    value_ = static_cast<float>(*v);
  } else {
    file_ = read_npy(text);
  }
}

Tensor Baseline::for_batch(const Tensor& x) const {
  if (file_.empty()) return Tensor(x.shape(), value_);
  if (file_.size() == x.size()) return file_.reshaped(x.shape());
  const int64_t per = x.size() / std::max<int64_t>(x.dim(0), 1);
  if (file_.size() != per) {
    throw Error(method_ + ": baseline of shape " + to_string(file_.shape()) + " does not match input " +
                to_string(x.shape()));
  }
  Tensor b = Tensor::uninitialized(x.shape());
  for (int64_t i = 0; i < x.dim(0); ++i)
    std::memcpy(b.data() + i * per, file_.data(), static_cast<size_t>(per) * sizeof(float));
  return b;
}

}  // namespace sieve::analyzers
