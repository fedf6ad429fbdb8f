#pragma once

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>

namespace sieve::cli {

// A progress bar on stderr, shown only when stderr is a terminal and the work has taken over a second.
class Progress {
 public:
  explicit Progress(std::string label) : label_(std::move(label)), start_(std::chrono::steady_clock::now()) {}
  ~Progress() { finish(); }
  // Ends the bar's line, so that what is printed next starts on a line of its own.
  void finish() {
    if (shown_) std::fputc('\n', stderr);
    shown_ = false;
  }
  void update(size_t done, size_t total) {
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    if (!isatty(STDERR_FILENO) || (elapsed < 1.0 && !shown_) || total == 0) return;
    shown_ = true;
    const int width = 30, filled = static_cast<int>(width * done / total);
    std::fprintf(stderr, "\r%s [%s%s] %zu/%zu %.0fs", label_.c_str(),
                 std::string(static_cast<size_t>(filled), '#').c_str(),
                 std::string(static_cast<size_t>(width - filled), ' ').c_str(), done, total, elapsed);
    std::fflush(stderr);
  }

 private:
  std::string label_;
  std::chrono::steady_clock::time_point start_;
  bool shown_ = false;
};

}  // namespace sieve::cli
