#include "text_files.hpp"

#include <fstream>

#include "sieve/error.hpp"

namespace sieve::cli {

void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  if (!out) throw Error(path + ": cannot write file");
}

}  // namespace sieve::cli
