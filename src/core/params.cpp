#include "sieve/params.hpp"

#include <sstream>

#include "sieve/error.hpp"
#include "sieve/parse.hpp"

namespace sieve {

MethodSpec MethodSpec::parse(const std::string& text) {
  MethodSpec spec;
  const size_t colon = text.find(':');
  spec.name = text.substr(0, colon);
  if (spec.name.empty()) throw Error("method '" + text + "': empty method name");
  if (colon == std::string::npos) return spec;
  std::stringstream rest(text.substr(colon + 1));
  std::string item;
  while (std::getline(rest, item, ',')) {
    const size_t eq = item.find('=');
    if (eq == std::string::npos || eq == 0)
      throw Error("method '" + text + "': parameter '" + item + "' is not key=value");
    spec.params[item.substr(0, eq)] = item.substr(eq + 1);
  }
  return spec;
}

std::string MethodSpec::text() const {
  std::string s = name;
  char sep = ':';
  for (const auto& [k, v] : params) {
    s += sep + k + "=" + v;
    sep = ',';
  }
  return s;
}

const std::string* Params::find(const std::string& key) {
  known_.insert(key);
  auto it = spec_.params.find(key);
  return it == spec_.params.end() ? nullptr : &it->second;
}

double Params::number(const std::string& key, double fallback, double min, double max) {
  const std::string* v = find(key);
  if (v == nullptr) return fallback;
  const std::optional<double> d = parse_double(*v);
  if (!d || *d < min || *d > max) {
    throw Error(kind_ + " '" + spec_.name + "': parameter " + key + "=" + *v + " must be a number in [" +
                format_number(min) + ", " + format_number(max) + "]");
  }
  return *d;
}

int64_t Params::integer(const std::string& key, int64_t fallback, int64_t min, int64_t max) {
  const std::string* v = find(key);
  if (v == nullptr) return fallback;
  const std::optional<int64_t> i = parse_integer(*v);
  if (!i || *i < min || *i > max) {
    throw Error(kind_ + " '" + spec_.name + "': parameter " + key + "=" + *v + " must be an integer in [" +
                std::to_string(min) + ", " + std::to_string(max) + "]");
  }
  return *i;
}

std::string Params::choice(const std::string& key, const std::string& fallback,
                           const std::set<std::string>& allowed) {
  const std::string* v = find(key);
  if (v == nullptr) return fallback;
  if (!allowed.count(*v)) {
    std::string list;
    for (const std::string& a : allowed) list += (list.empty() ? "" : ", ") + a;
    throw Error(kind_ + " '" + spec_.name + "': parameter " + key + "=" + *v + " must be one of " + list);
  }
  return *v;
}

std::string Params::text(const std::string& key, const std::string& fallback) {
  const std::string* v = find(key);
  return v == nullptr ? fallback : *v;
}

void Params::finish() const {
  for (const auto& [key, value] : spec_.params) {
    if (!known_.count(key)) throw Error(kind_ + " '" + spec_.name + "' has no parameter '" + key + "'");
  }
}

}  // namespace sieve
