#include "sieve/model.hpp"

namespace sieve {
namespace {

nlohmann::json shape_json(const Shape& s) {
  nlohmann::json j = nlohmann::json::array();
  for (int64_t d : s) j.push_back(d < 0 ? nlohmann::json(nullptr) : nlohmann::json(d));
  return j;
}

}  // namespace

nlohmann::json model_summary_json(const std::string& path, const Model& model) {
  const ModelReport& r = model.report();
  nlohmann::json j;
  j["model"] = path;
  j["producer"] = r.producer;
  j["opset"] = r.opset;
  for (size_t i = 0; i < model.input_names().size(); ++i)
    j["inputs"].push_back({{"name", model.input_names()[i]}, {"shape", shape_json(model.input_shapes()[i])}});
  for (size_t i = 0; i < model.output_names().size(); ++i)
    j["outputs"].push_back(
        {{"name", model.output_names()[i]}, {"shape", shape_json(model.output_shapes()[i])}});
  j["onnx_operators"] = r.onnx_op_counts;
  j["operators"] = r.op_counts;
  j["parameters"] = r.parameter_count;
  j["folded_constant_nodes"] = r.folded_constant_nodes;
  j["canonicalizations"] = r.canonicalizations;
  j["explained_output"] =
      r.stripped_output_op.empty() ? "model output" : "logits (final " + r.stripped_output_op + " stripped)";
  return j;
}

}  // namespace sieve
