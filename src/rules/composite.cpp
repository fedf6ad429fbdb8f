// Composites: which rule each linear node gets, by ordered predicates; and the named presets.

#include <fstream>
#include <nlohmann/json.hpp>

#include "sieve/error.hpp"
#include "sieve/json_keys.hpp"
#include "sieve/lrp.hpp"
#include "sieve/op_spec.hpp"
#include "sieve/parse.hpp"

namespace sieve {
namespace {

int64_t read_index(const std::string& text, const std::string& whole) {
  const std::optional<int64_t> v = parse_integer(text);
  if (!v || *v < 0)
    throw Error("rule predicate '" + whole + "': expected index=K or index=K-L with layer indices K ≤ L");
  return *v;
}

}  // namespace

NodePredicate NodePredicate::parse(const std::string& text) {
  NodePredicate p;
  if (text.empty()) throw Error("empty rule predicate");
  if (text == "any") return p;
  if (text == "first" || text == "last") {
    p.kind = text == "first" ? Kind::first : Kind::last;
    return p;
  }
  if (text.rfind("first=", 0) == 0) {
    p.kind = Kind::first;
    p.text = parse(text.substr(6)).text;
    if (p.text.empty()) throw Error("rule predicate '" + text + "': expected first=OPTYPE, e.g. first=Conv");
    return p;
  }
  if (text.rfind("name=", 0) == 0) {
    p.kind = Kind::name;
    p.text = text.substr(5);
    return p;
  }
  if (text.rfind("index=", 0) == 0) {
    p.kind = Kind::index_range;
    const std::string range = text.substr(6);
    const size_t dash = range.find('-');
    p.low = read_index(range.substr(0, dash), text);
    p.high = dash == std::string::npos ? p.low : read_index(range.substr(dash + 1), text);
    if (p.high < p.low) throw Error("rule predicate '" + text + "': the range is empty");
    return p;
  }
  if (!is_supported_op(text))
    throw Error(
        "unknown rule predicate '" + text +
        "' (an operator type such as Conv or Gemm, any, first, first=OPTYPE, last, index=K, index=K-L, "
        "name=NODE)");
  p.kind = Kind::op_type;
  p.text = text;
  return p;
}

CompositeEntry Composite::parse_entry(const std::string& text) {
  const size_t colon = text.find(':');
  if (colon == std::string::npos || colon + 1 >= text.size())
    throw Error("rule '" + text + "': expected PREDICATE:RULE[:key=value,...], e.g. Conv:gamma:gamma=0.25");
  return {NodePredicate::parse(text.substr(0, colon)), parse_rule(text.substr(colon + 1))};
}

Composite Composite::read_json(const std::string& path) {
  std::ifstream file(path);
  if (!file) throw Error(path + ": cannot open the composite file");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(file);
  } catch (const nlohmann::json::exception& e) {
    throw Error(path + ": not valid JSON: " + e.what());
  }
  if (j.is_object()) reject_unknown_keys(j, {"rules"}, path);
  if (!j.is_object() || !j.contains("rules") || !j["rules"].is_array())
    throw Error(path +
                ": a composite is {\"rules\": [{\"match\": ..., \"rule\": ..., \"params\": {...}}, ...]}");
  Composite c;
  for (const nlohmann::json& e : j["rules"]) {
    if (!e.is_object() || !e.contains("match") || !e["match"].is_string() || !e.contains("rule") ||
        !e["rule"].is_string())
      throw Error(path + ": every rule needs string fields \"match\" and \"rule\": " + e.dump());
    reject_unknown_keys(e, {"match", "rule", "params"}, path, " in rule " + e.dump());
    std::string rule = e["rule"].get<std::string>();
    if (e.contains("params")) {
      if (!e["params"].is_object()) throw Error(path + ": \"params\" must be an object: " + e.dump());
      char sep = ':';
      for (const auto& [key, value] : e["params"].items()) {
        std::string v;
        if (value.is_number()) {
          v = format_number(value.get<double>());
        } else if (value.is_string()) {
          v = value.get<std::string>();
        } else if (value.is_array()) {
          for (const nlohmann::json& x : value) {
            if (!x.is_number()) throw Error(path + ": parameter " + key + " must hold numbers");
            if (!v.empty()) v.push_back(';');
            v.append(format_number(x.get<double>()));
          }
        } else {
          throw Error(path + ": parameter " + key + " must be a number, a string or a list of numbers");
        }
        rule.push_back(sep);
        rule.append(key).append("=").append(v);
        sep = ',';
      }
    }
    try {
      c.entries.push_back({NodePredicate::parse(e["match"].get<std::string>()), parse_rule(rule)});
    } catch (const Error& err) {
      throw Error(path + ": " + err.what());
    }
  }
  return c;
}

}  // namespace sieve
