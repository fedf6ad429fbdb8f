#pragma once

// Wall-clock timing for the benchmarks that compare whole runs (not Google Benchmark loops).

#include <chrono>

namespace sieve::bench {

// Seconds `f()` takes.
template <class F>
double seconds(F f) {
  const auto start = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace sieve::bench
