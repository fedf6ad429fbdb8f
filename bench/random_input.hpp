#pragma once

#include <random>

#include "sieve/model.hpp"
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

// A batch for the model's first input: standard-normal values for a float input, token ids in
// [0, 1000) for an integer one (every benchmark vocabulary is at least that large).
inline sieve::Tensor random_input(const sieve::Model& model, int64_t batch) {
  if (model.input_is_float(0)) return random_input(model.input_shapes().at(0), batch);
  sieve::Shape shape = model.input_shapes().at(0);
  shape[0] = batch;
  sieve::Tensor t = sieve::Tensor::uninitialized(shape);
  std::mt19937 rng(0);
  std::uniform_int_distribution<int> ids(0, 999);
  for (float& v : t.values()) v = static_cast<float>(ids(rng));
  return t;
}
