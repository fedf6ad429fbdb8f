#include "sieve/parse.hpp"

#include <charconv>
#include <cmath>
#include <sstream>

namespace sieve {

std::optional<double> parse_double(const std::string& text) {
  double v = 0.0;
  const char* end = text.data() + text.size();
  // from_chars takes no leading '+', which people do write.
  const char* begin = !text.empty() && text[0] == '+' ? text.data() + 1 : text.data();
  const auto [stop, error] = std::from_chars(begin, end, v);
  if (begin == end || error != std::errc() || stop != end || !std::isfinite(v)) return std::nullopt;
  return v;
}

std::optional<int64_t> parse_integer(const std::string& text) {
  int64_t v = 0;
  const char* end = text.data() + text.size();
  const char* begin = !text.empty() && text[0] == '+' ? text.data() + 1 : text.data();
  const auto [stop, error] = std::from_chars(begin, end, v);
  if (begin == end || error != std::errc() || stop != end) return std::nullopt;
  return v;
}

std::string format_number(double value) {
  std::ostringstream s;
  s << value;
  return s.str();
}

}  // namespace sieve
