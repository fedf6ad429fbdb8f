#include "sieve/results.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "sieve/error.hpp"
#include "sieve/methods.hpp"
#include "sieve/parse.hpp"
#include "sieve/text_inputs.hpp"

namespace fs = std::filesystem;

namespace sieve {
namespace {

std::string digits(int64_t value, size_t width) {
  std::string s = std::to_string(value);
  if (s.size() < width) s.insert(0, width - s.size(), '0');
  return s;
}

}  // namespace

std::vector<double> softmax(const std::vector<float>& logits) {
  std::vector<double> p(logits.size());
  if (logits.empty()) return p;
  const double top = *std::max_element(logits.begin(), logits.end());
  double sum = 0.0;
  for (size_t i = 0; i < logits.size(); ++i) sum += p[i] = std::exp(static_cast<double>(logits[i]) - top);
  for (double& v : p) v /= sum;
  return p;
}

ParsedTargets parse_targets(const std::string& text, const std::vector<std::string>& class_names) {
  ParsedTargets parsed;
  if (text == "max" || text == "all" || text == "sum" || text.ends_with(".npy")) {
    parsed.selection = read_target(text);
    return parsed;
  }
  parsed.selection.kind = TargetSelection::Kind::indices;
  std::stringstream s(text);
  std::string item;
  while (std::getline(s, item, ',')) {
    int64_t index = -1;
    const auto name = std::find(class_names.begin(), class_names.end(), item);
    const std::optional<int64_t> number = parse_integer(item);
    if (name != class_names.end()) {
      index = name - class_names.begin();
    } else if (number && *number >= 0) {
      index = *number;
    } else {
      std::string message = "target '" + item + "': expected max, all, class indices like 3 or 1,4";
      if (class_names.empty()) throw Error(message + " (the model has no class names in its profile)");
      message += ", or class names";
      const std::string near = closest_match(item, class_names);
      throw Error(message + (near.empty() ? " from the profile" : " (did you mean '" + near + "'?)"));
    }
    std::vector<int64_t>& seen = parsed.selection.indices;
    if (std::find(seen.begin(), seen.end(), index) != seen.end()) {
      parsed.duplicates.push_back(index);
    } else {
      seen.push_back(index);
    }
  }
  if (parsed.selection.indices.empty()) throw Error("target '" + text + "': no class given");
  return parsed;
}

std::string file_safe(std::string s) {
  for (char& c : s) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-' && c != '_') c = '_';
  }
  return s;
}

std::vector<std::string> output_stems(const std::vector<NamedInput>& inputs) {
  std::map<std::string, int64_t> widest;  // per batch file: the largest index in the run
  for (const NamedInput& in : inputs) {
    if (in.index >= 0) widest[in.file] = std::max(widest[in.file], in.index);
  }
  std::vector<std::string> stems;
  std::map<std::string, size_t> uses;
  for (const NamedInput& in : inputs) {
    std::string stem = file_safe(fs::path(in.file).filename().string());
    if (in.index >= 0) {
      stem += '_';
      stem += digits(in.index, std::to_string(widest[in.file]).size());
    }
    stems.push_back(stem);
    ++uses[stem];
  }
  std::set<std::string> taken;
  for (const std::string& s : stems) {
    if (uses[s] == 1) taken.insert(s);
  }
  for (size_t i = 0; i < stems.size(); ++i) {
    if (uses[stems[i]] == 1) continue;
    std::string candidate = stems[i];
    candidate += '_';
    candidate += std::to_string(i);
    while (taken.count(candidate) != 0) candidate += "_";
    taken.insert(candidate);
    stems[i] = candidate;
  }
  return stems;
}

void OutputLedger::claim(const std::string& path) {
  const std::string key = fs::path(path).lexically_normal().string();
  if (!claimed_.insert(key).second)
    throw Error("internal error: " + path + " would be written twice in one run");
  files_.push_back(path);
}

std::map<std::string, std::string> method_parameters(const MethodSpec& spec) {
  std::map<std::string, std::string> all;
  for (const MethodInfo& info : available_methods()) {
    if (info.name != spec.name) continue;
    for (const MethodParameter& p : info.parameters) all[p.name] = p.default_value;
  }
  for (const auto& [key, value] : spec.params) all[key] = value;
  return all;
}

nlohmann::json to_json(const ExplanationRecord& r) {
  nlohmann::json j{{"input", r.input},           {"file", r.file},
                   {"method", r.method},         {"method_name", r.method_name},
                   {"parameters", r.parameters}, {"target", r.target},
                   {"logit", r.logit},           {"probability", r.probability},
                   {"outputs", r.outputs}};
  j["index"] = r.index >= 0 ? nlohmann::json(r.index) : nlohmann::json(nullptr);
  j["class_name"] = r.class_name.empty() ? nlohmann::json(nullptr) : nlohmann::json(r.class_name);
  if (!r.position.empty()) j["position"] = r.position;
  return j;
}

nlohmann::json manifest_json(const std::string& model, const std::vector<ExplanationRecord>& records) {
  nlohmann::json j{{"model", model}, {"explanations", nlohmann::json::array()}};
  for (const ExplanationRecord& r : records) j["explanations"].push_back(to_json(r));
  return j;
}

void write_json(const std::string& path, const nlohmann::json& j) {
  std::ofstream out(path);
  out << j.dump(2) << "\n";
  if (!out) throw Error(path + ": cannot write");
}

}  // namespace sieve
