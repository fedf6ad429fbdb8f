#pragma once

// JSON files written by people (profiles, composites) are checked key by key, so a misspelt key is an
// error with a suggestion, never a field silently ignored.

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace sieve {

// Throws "WHERE: unknown key 'K'CONTEXT (did you mean 'KEY'?)" for the first key of `object` that is
// not in `allowed`; `object` must be a JSON object.
void reject_unknown_keys(const nlohmann::json& object, const std::vector<std::string>& allowed,
                         const std::string& where, const std::string& context = "");

}  // namespace sieve
