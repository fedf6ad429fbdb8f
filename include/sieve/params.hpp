#pragma once

// A method or rule written as text ("name:key=value,key=value") and the reader of its parameters,
// with defaults, that refuses keys the method does not know.

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace sieve {

struct MethodSpec {
  std::string name;
  std::map<std::string, std::string> params;
  // "name" or "name:key=value,key=value".
  static MethodSpec parse(const std::string& text);
  std::string text() const;
};

// What a method or rule accepts, for listings and manifests.
struct MethodParameter {
  std::string name, default_value, description;
};
struct MethodInfo {
  std::string name, description;
  std::vector<MethodParameter> parameters;
  std::string visualization;  // default picture: heatmap, graymap or projection
};

class Params {
 public:
  // `kind` names what the parameters belong to in messages ("method", "rule").
  explicit Params(const MethodSpec& spec, std::string kind = "method")
      : spec_(spec), kind_(std::move(kind)) {}
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

}  // namespace sieve
