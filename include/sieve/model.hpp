#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "sieve/executor.hpp"
#include "sieve/graph.hpp"
#include "sieve/tensor.hpp"

namespace sieve {

// Semantics-preserving rewrites applied after import. Each is optional and reported.
struct CanonicalizeOptions {
  bool fold_batchnorm = true;       // BatchNormalization into the preceding Conv / Dense
  bool remove_identity = true;      // Identity and (inference) Dropout
  bool fold_zero_pad = true;        // all-zero Pad into the consuming op
  bool strip_final_softmax = true;  // explain logits: drop a trailing Softmax / LogSoftmax
  bool fuse_spelled_out = true;     // LayerNorm, GELU, HardSwish, SiLU written as several nodes become one
};

struct LoadOptions {
  CanonicalizeOptions canonicalize;
};

// What import and canonicalization saw and did, for `sieve info`.
struct ModelReport {
  std::string path;
  int64_t opset = 0;
  std::string producer;
  std::map<std::string, int> onnx_op_counts;   // operators in the file, before any rewrite
  std::map<std::string, int> op_counts;        // operators after canonicalization
  int64_t parameter_count = 0;                 // elements of all float constants used by the graph
  int folded_constant_nodes = 0;               // nodes evaluated at load time (shape arithmetic etc.)
  std::vector<std::string> canonicalizations;  // one line per rewrite applied
  std::string stripped_output_op;              // "Softmax"/"LogSoftmax" when removed, else empty
};

class Model;

// What `sieve info --json` prints and the report shows: the model file `path`, producer, opset, inputs
// and outputs (name, shape with null for a dynamic dimension), the operators before and after
// canonicalization, the parameter count, the rewrites applied and what the explained output is.
nlohmann::json model_summary_json(const std::string& path, const Model& model);

// A loaded, checked and canonicalized model, ready to run.
class Model {
 public:
  // Loads an ONNX file: parse, check, infer shapes, fold constants, build and canonicalize the graph.
  // Throws sieve::Error with the file, node, operator and opset on anything it cannot handle.
  static Model load(const std::string& path, const LoadOptions& options = {});
  // Same from serialized ModelProto bytes; `name` stands for the file in messages.
  static Model from_bytes(std::string_view bytes, const std::string& name, const LoadOptions& options = {});

  const Graph& graph() const { return graph_; }
  Graph& graph() { return graph_; }
  const ModelReport& report() const { return report_; }

  // Declared shape of each model input / output (-1 for a dynamic dimension).
  const std::vector<Shape>& input_shapes() const { return input_shapes_; }
  const std::vector<Shape>& output_shapes() const { return output_shapes_; }
  const std::vector<std::string>& input_names() const { return input_names_; }
  const std::vector<std::string>& output_names() const { return output_names_; }
  // ONNX element type of each model input (FLOAT, INT64, BOOL, …); every input runs as float32, integer
  // inputs holding exact integers.
  const std::vector<std::string>& input_types() const { return input_types_; }
  bool input_is_float(size_t i) const;

  // Rows one forward pass holds: the first input's declared batch size when it is fixed, else `wanted`
  // (at least 1).
  int64_t rows_per_pass(int64_t wanted) const;

  // Forward pass; checks the inputs against the declared shapes and for NaN/Inf.
  std::vector<Tensor> run(const std::vector<Tensor>& inputs) const;

 private:
  Graph graph_;
  ModelReport report_;
  std::vector<std::string> input_names_, output_names_, input_types_;
  std::vector<Shape> input_shapes_, output_shapes_;
};

// The operators of an ONNX file and which of them sieve cannot run, read without building the graph
// (so `sieve info` can list every unsupported node instead of stopping at the first).
struct OperatorScan {
  int64_t opset = 0;
  std::map<std::string, int> op_counts;
  std::vector<std::string> unsupported;  // "Erf (node 'my_erf')"
};
OperatorScan scan_operators(const std::string& path);

// Checks a batch for one model input against its declared shape (the batch dimension may differ when
// declared dynamic) and for NaN/Inf; throws naming the input, the shapes or the element.
void check_input(const Tensor& input, const Shape& declared, const std::string& name);

}  // namespace sieve
