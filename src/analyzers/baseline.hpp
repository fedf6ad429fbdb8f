#pragma once

#include <string>

#include "sieve/tensor.hpp"

namespace sieve::analyzers {

// A reference input of a method (Integrated Gradients' path start, DeepLIFT's reference, a fill): a
// constant, or a .npy file shaped like one sample or like the whole batch.
class Baseline {
 public:
  // `text`: a number, else a .npy path; `method` names the method in messages.
  Baseline(const std::string& text, const std::string& method);
  // The baseline of every row of `x`; throws when a file fits neither one sample nor the batch.
  Tensor for_batch(const Tensor& x) const;

 private:
  std::string method_;
  float value_ = 0.0f;
  Tensor file_;
};

}  // namespace sieve::analyzers
