#pragma once

#include <string>

namespace sieve::cli {

// Writes `text` to `path`; throws sieve::Error naming the file when it cannot.
void write_text(const std::string& path, const std::string& text);

}  // namespace sieve::cli
