#pragma once

#include <string>
#include <string_view>

namespace sieve {

// Writes `bytes` to `path` through a temporary file in the same directory renamed over `path`, so a
// reader never sees a half-written file and a failed write leaves an earlier file in place. Throws
// sieve::Error naming the file when it cannot be written.
void write_file_atomically(const std::string& path, std::string_view bytes);

}  // namespace sieve
