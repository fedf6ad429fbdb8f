#pragma once

#include <random>

#include "sieve/tensor.hpp"

// A batch of standard-normal values shaped like a model input (batch dimension replaced).
inline sieve::Tensor random_input(const sieve::Shape& declared, int64_t batch) {
  sieve::Shape shape = declared;
  shape[0] = batch;
  sieve::Tensor t = sieve::Tensor::uninitialized(shape);
  std::mt19937 rng(0);
  std::normal_distribution<float> normal;
  for (float& v : t.values()) v = normal(rng);
  return t;
}
