#pragma once

// Numbers from text that people write (method parameters, flags, profiles): the whole text must be the
// number, so "0.5x" or "" is refused rather than read as 0.5 or 0.

#include <cstdint>
#include <optional>
#include <string>

namespace sieve {

// A finite decimal number ("0.25", "1e-3"); nullopt for anything else.
std::optional<double> parse_double(const std::string& text);
// A whole number ("32", "-1"); nullopt for anything else.
std::optional<int64_t> parse_integer(const std::string& text);
// `value` as people write it: shortest round-trip form ("0.25", "1e+06"), no trailing zeros.
std::string format_number(double value);

}  // namespace sieve
