#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "sieve/graph.hpp"
#include "sieve/model.hpp"

namespace sieve::onnx_import {

struct ImportResult {
  Graph graph;
  ModelReport report;
  std::vector<std::string> input_names, output_names;
  std::vector<Shape> input_shapes, output_shapes;
  std::vector<std::string> input_types;  // ONNX element type names (FLOAT, INT64, …)
};

// Parses serialized ModelProto bytes, runs the ONNX checker and shape inference, builds the graph
// (refusing unsupported operators) and folds constant sub-graphs. `name` stands for the file in messages.
ImportResult import_model(std::string_view bytes, const std::string& name);

// Parses the model and lists its operators without checking or building anything.
OperatorScan scan_operators(std::string_view bytes, const std::string& name);

}  // namespace sieve::onnx_import
