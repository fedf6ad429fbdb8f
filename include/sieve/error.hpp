#pragma once

#include <stdexcept>
#include <string>

namespace sieve {

// The one exception type of the library. Its message names the file, node or value at fault, so the
// CLI can print it as the single line a user sees.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

}  // namespace sieve
