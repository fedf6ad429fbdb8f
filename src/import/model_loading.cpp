#include <fstream>

#include "graph/canonicalize.hpp"
#include "import/onnx_import.hpp"
#include "sieve/error.hpp"
#include "sieve/model.hpp"

// Loading a model is the import layer's work: the graph layer below it only runs models.
namespace sieve {
namespace {

// Protobuf cannot parse messages beyond 2 GiB; larger files are refused before reading them.
constexpr std::streamoff kMaxModelBytes = std::streamoff{2} << 30;

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) throw Error(path + ": cannot open file");
  const std::streamoff size = in.tellg();
  if (size < 0) throw Error(path + ": cannot read file");
  if (size > kMaxModelBytes) throw Error(path + ": file larger than 2 GiB, which ONNX protobufs cannot hold");
  std::string bytes(static_cast<size_t>(size), '\0');
  in.seekg(0);
  if (!in.read(bytes.data(), size)) throw Error(path + ": read error");
  return bytes;
}

}  // namespace

OperatorScan scan_operators(const std::string& path) {
  return onnx_import::scan_operators(read_file(path), path);
}

Model Model::load(const std::string& path, const LoadOptions& options) {
  return from_bytes(read_file(path), path, options);
}

Model Model::from_bytes(std::string_view bytes, const std::string& name, const LoadOptions& options) {
  onnx_import::ImportResult imported = onnx_import::import_model(bytes, name);
  Model model;
  model.graph_ = std::move(imported.graph);
  model.report_ = std::move(imported.report);
  model.input_names_ = std::move(imported.input_names);
  model.output_names_ = std::move(imported.output_names);
  model.input_shapes_ = std::move(imported.input_shapes);
  model.output_shapes_ = std::move(imported.output_shapes);
  model.input_types_ = std::move(imported.input_types);
  try {
    canonicalize(model.graph_, options.canonicalize, model.report_);
  } catch (const Error& e) {
    throw Error(name + ": " + e.what());
  }
  std::vector<bool> counted(model.graph_.values().size(), false);
  for (const Node& node : model.graph_.nodes()) {
    for (ValueId v : node.inputs) {
      if (v >= 0 && !counted[static_cast<size_t>(v)] && model.graph_.value(v).is_constant()) {
        counted[static_cast<size_t>(v)] = true;
        model.report_.parameter_count += model.graph_.value(v).constant.size();
      }
    }
  }
  return model;
}

}  // namespace sieve
