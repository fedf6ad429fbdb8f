#pragma once

#include <stdexcept>
#include <string>
#include <vector>

namespace sieve {

// The one exception type of the library. Its message names the file, node or value at fault, so the
// CLI can print it as the single line a user sees.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// `message` on one line (line breaks as spaces, no trailing blanks), as every front end shows an error,
// even when a library (e.g. the ONNX checker) wrote several lines.
std::string single_line(std::string message);

// The candidate nearest to `word` by edit distance when it is close enough to be a likely typo
// (at most a third of the word's length, and at most 3 edits), for "did you mean" hints; empty otherwise.
std::string closest_match(const std::string& word, const std::vector<std::string>& candidates);

}  // namespace sieve
