#include "sieve/io/files.hpp"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <system_error>

#include "sieve/error.hpp"

namespace fs = std::filesystem;

namespace sieve {

void write_file_atomically(const std::string& path, std::string_view bytes) {
  const fs::path target(path);
  if (fs::is_directory(target)) throw Error(path + ": is a directory");
  // A name of this process beside the target: rename is atomic only within one file system.
  fs::path temporary = target;
  temporary += ".tmp-" + std::to_string(getpid());
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.close();
    if (!out) {
      std::error_code ignored;
      fs::remove(temporary, ignored);
      throw Error(path + ": cannot write file");
    }
  }
  std::error_code error;
  fs::rename(temporary, target, error);
  if (error) {
    std::error_code ignored;
    fs::remove(temporary, ignored);
    throw Error(path + ": cannot write file: " + error.message());
  }
}

}  // namespace sieve
