#pragma once

// Helpers the test suites share: a per-process scratch directory, whole-file reads and writes, a .npy
// builder for malformed-file tests, and running the command-line tool.

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace sieve {

// A scratch file in a directory of this process, so tests running in parallel never share files.
inline std::filesystem::path temp(const std::string& name) {
  static const std::filesystem::path dir = [] {
    const std::filesystem::path d =
        std::filesystem::path(::testing::TempDir()) / ("sieve_tests_" + std::to_string(getpid()));
    std::filesystem::create_directories(d);
    return d;
  }();
  return dir / name;
}

inline void write_bytes(const std::filesystem::path& p, const std::string& bytes) {
  std::ofstream(p, std::ios::binary) << bytes;
}

inline std::string read_bytes(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A .npy file (format 1.0) with the given header dictionary and raw data.
inline std::string npy(const std::string& dict, const std::string& data) {
  std::string header = dict;
  while ((10 + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::string out = "\x93NUMPY";
  out += '\x01';
  out += '\x00';
  out += static_cast<char>(header.size() & 0xff);
  out += static_cast<char>(header.size() >> 8);
  return out + header + data;
}

struct CliRun {
  int code;
  std::string out, err;
};

// Runs the sieve binary with `args` (a shell command line) and collects exit code, stdout and stderr.
inline CliRun sieve_cli(const std::string& args) {
  static int calls = 0;
  const std::filesystem::path err = temp("stderr_" + std::to_string(calls++) + ".txt");
  const std::string command = std::string(SIEVE_CLI) + " " + args + " 2>" + err.string();
  FILE* pipe = popen(command.c_str(), "r");
  std::string out;
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof buffer, pipe)) > 0) out.append(buffer, n);
  const int status = pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : 128, out, read_bytes(err)};
}

}  // namespace sieve
