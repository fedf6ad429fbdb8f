#pragma once

#include <string>

#include "sieve/error.hpp"

namespace sieve {

// The message of the sieve::Error that `f` throws, or "no error".
template <class F>
std::string error_of(F f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

}  // namespace sieve
