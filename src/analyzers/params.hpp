#pragma once

// Reads a method's key=value parameters, with defaults, and refuses keys the method does not know.

#include <set>
#include <string>

#include "sieve/analyzer.hpp"
#include "sieve/error.hpp"

namespace sieve::analyzers {

class Params {
 public:
  // `kind` names what the parameters belong to in messages ("method", "rule").
  explicit Params(const MethodSpec& spec, std::string kind = "method") : spec_(spec), kind_(std::move(kind)) {}
  double number(const std::string& key, double fallback, double min, double max);
  int64_t integer(const std::string& key, int64_t fallback, int64_t min, int64_t max);
  std::string choice(const std::string& key, const std::string& fallback,
                     const std::set<std::string>& allowed);
  std::string text(const std::string& key, const std::string& fallback);
  // Throws for any parameter no reader asked for.
  void finish() const;

 private:
  const std::string* find(const std::string& key);
  const MethodSpec& spec_;
  std::string kind_;
  std::set<std::string> known_;
};

}  // namespace sieve::analyzers
