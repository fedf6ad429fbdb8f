#pragma once

// What an explanation run produced, described so that a reader can tell what was explained: targets
// by index or class name, output file names that never collide, a ledger of every file written, and
// the manifest records (input, method with all parameters, target, logit, probability, files).

#include <cstdint>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "sieve/analyzer.hpp"
#include "sieve/io/inputs.hpp"

namespace sieve {

// Softmax of one sample's logits, computed in double precision.
std::vector<double> softmax(const std::vector<float>& logits);

// "max", "all", or a comma list of class indices and class names (from the profile's `class_names`),
// e.g. "3", "Shirt", "0,Shirt,9". Repeated classes are kept once and listed in `duplicates`.
// Throws sieve::Error for an unknown name (with the nearest name as a suggestion) or a malformed item.
struct ParsedTargets {
  TargetSelection selection;
  std::vector<int64_t> duplicates;
};
ParsedTargets parse_targets(const std::string& text, const std::vector<std::string>& class_names);

// File-name stems, one per input, all distinct: the file name with its extension ("01_pullover.jpg"),
// "batch.npy_07" for sample 7 of a batch file (indices zero-padded to the widest index of that file),
// and, where two inputs would still share a stem (same file name in two directories, or a file given
// twice), the input's position in the run appended ("x.png_3").
std::vector<std::string> output_stems(const std::vector<NamedInput>& inputs);

// `s` with every character other than letters, digits, '.', '-' and '_' replaced by '_'.
std::string file_safe(std::string s);

// Every path a run writes is claimed first; claiming a path twice throws sieve::Error (an internal
// error: two results would overwrite each other).
class OutputLedger {
 public:
  void claim(const std::string& path);
  const std::vector<std::string>& files() const { return files_; }

 private:
  std::set<std::string> claimed_;
  std::vector<std::string> files_;
};

// A method's parameters with the defaults filled in for those not given.
std::map<std::string, std::string> method_parameters(const MethodSpec& spec);

// One explanation as the manifest records it.
struct ExplanationRecord {
  std::string input;   // as named in the run, e.g. "batch.npy[3]"
  std::string file;    // the file it came from
  int64_t index = -1;  // the position inside a batch file, -1 for a single-sample file
  std::string method;  // the method as given, e.g. "integrated_gradients:steps=64"
  std::string method_name;
  std::map<std::string, std::string> parameters;  // every parameter, defaults included
  int64_t target = 0;      // the class (flat output index); -1 for a sum or mask target
  std::string class_name;  // empty without class names
  // The target's logit and softmax probability; NaN (null in JSON) where no class is explained.
  double logit = std::numeric_limits<double>::quiet_NaN(),
         probability = std::numeric_limits<double>::quiet_NaN();
  std::vector<std::string> outputs;  // files holding this explanation
  std::vector<int64_t> position;     // where inside a single array file the explanation sits, if so
};

nlohmann::json to_json(const ExplanationRecord& record);
// {"model": …, "explanations": [records…]}
nlohmann::json manifest_json(const std::string& model, const std::vector<ExplanationRecord>& records);
// Writes `j` (indented) to `path`; throws sieve::Error naming the file when it cannot be written.
void write_json(const std::string& path, const nlohmann::json& j);

}  // namespace sieve
