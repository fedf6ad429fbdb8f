#include "sieve/json_keys.hpp"

#include <algorithm>

#include "sieve/error.hpp"

namespace sieve {

void reject_unknown_keys(const nlohmann::json& object, const std::vector<std::string>& allowed,
                         const std::string& where, const std::string& context) {
  for (const auto& [key, value] : object.items()) {
    if (std::find(allowed.begin(), allowed.end(), key) != allowed.end()) continue;
    const std::string near = closest_match(key, allowed);
    throw Error(where + ": unknown key '" + key + "'" + context +
                (near.empty() ? "" : " (did you mean '" + near + "'?)"));
  }
}

}  // namespace sieve
