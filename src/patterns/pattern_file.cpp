// Pattern files: safetensors with the patterns, the raw statistics (so fits can be merged later) and
// JSON metadata that ties them to one model.

#include <nlohmann/json.hpp>

#include "sieve/error.hpp"
#include "sieve/io/safetensors.hpp"
#include "sieve/patterns.hpp"

namespace sieve {
namespace {

constexpr const char* kFormat = "sieve-patterns-1";

StoredTensor stored(const Shape& shape, const std::vector<double>& values) {
  return {shape, values, true};
}

StoredTensor stored(const Tensor& t) {
  return {t.shape(), std::vector<double>(t.data(), t.data() + t.size()), false};
}

const StoredTensor& need(const SafetensorsFile& f, const std::string& path, const std::string& name,
                         const Shape& shape) {
  const auto it = f.tensors.find(name);
  if (it == f.tensors.end()) throw Error(path + ": pattern file lacks tensor '" + name + "'");
  if (it->second.shape != shape)
    throw Error(path + ": tensor '" + name + "' has shape " + to_string(it->second.shape) + ", expected " +
                to_string(shape));
  return it->second;
}

std::string meta(const SafetensorsFile& f, const std::string& path, const std::string& key) {
  const auto it = f.metadata.find(key);
  if (it == f.metadata.end()) throw Error(path + ": pattern file metadata lacks '" + key + "'");
  return it->second;
}

}  // namespace

void write_pattern_file(const std::string& path, const PatternFile& file) {
  SafetensorsFile out;
  nlohmann::json layers = nlohmann::json::array();
  for (size_t l = 0; l < file.statistics.layers().size(); ++l) {
    const LayerStatistics& s = file.statistics.layers()[l];
    const std::string p = s.node + "/";
    const Shape neurons{s.neurons};
    out.tensors[p + "count"] = stored(Shape{}, {s.count});
    out.tensors[p + "count_pos"] = stored(neurons, s.count_pos);
    out.tensors[p + "sum_y"] = stored(neurons, s.sum_y);
    out.tensors[p + "sum_y_pos"] = stored(neurons, s.sum_y_pos);
    out.tensors[p + "sum_x"] = stored(s.weight_shape, s.sum_x);
    out.tensors[p + "sum_x_pos"] = stored(s.weight_shape, s.sum_x_pos);
    out.tensors[p + "sum_xy"] = stored(s.weight_shape, s.sum_xy);
    out.tensors[p + "sum_xy_pos"] = stored(s.weight_shape, s.sum_xy_pos);
    if (l < file.patterns.size()) {
      out.tensors[p + "pattern_pos"] = stored(file.patterns[l].positive);
      out.tensors[p + "pattern_neg"] = stored(file.patterns[l].negative);
    }
    layers.push_back({{"node", s.node}, {"output_axis", s.output_axis}, {"samples", s.count}});
  }
  out.metadata["format"] = kFormat;
  out.metadata["model_fingerprint"] = file.fingerprint;
  out.metadata["pattern_type"] = to_string(file.type);
  out.metadata["images"] = std::to_string(file.statistics.images);
  out.metadata["data"] = file.data_description;
  out.metadata["layers"] = layers.dump();
  write_safetensors(path, out);
}

PatternFile read_pattern_file(const std::string& path) {
  const SafetensorsFile in = read_safetensors(path);
  if (meta(in, path, "format") != kFormat)
    throw Error(path + ": not a sieve pattern file (format '" + meta(in, path, "format") + "')");
  PatternFile file;
  file.fingerprint = meta(in, path, "model_fingerprint");
  file.data_description = meta(in, path, "data");
  nlohmann::json layers;
  try {
    layers = nlohmann::json::parse(meta(in, path, "layers"));
    file.statistics.images = std::stoll(meta(in, path, "images"));
    file.type = parse_pattern_type(meta(in, path, "pattern_type"));
  } catch (const std::exception& e) {
    throw Error(path + ": malformed pattern file metadata: " + e.what());
  }
  if (!layers.is_array()) throw Error(path + ": malformed pattern file metadata: 'layers' is not a list");
  for (const nlohmann::json& layer : layers) {
    if (!layer.is_object() || !layer.contains("node") || !layer["node"].is_string() ||
        !layer.contains("output_axis") || !layer["output_axis"].is_number_integer())
      throw Error(path + ": malformed layer entry " + layer.dump());
    LayerStatistics s;
    s.node = layer["node"].get<std::string>();
    s.output_axis = layer["output_axis"].get<int64_t>();
    const std::string p = s.node + "/";
    const auto sum_xy = in.tensors.find(p + "sum_xy");
    if (sum_xy == in.tensors.end()) throw Error(path + ": pattern file lacks tensor '" + p + "sum_xy'");
    s.weight_shape = sum_xy->second.shape;
    if (s.output_axis < 0 || s.output_axis >= static_cast<int64_t>(s.weight_shape.size()))
      throw Error(path + ": layer '" + s.node + "' has output axis " + std::to_string(s.output_axis) +
                  " outside its weight shape " + to_string(s.weight_shape));
    s.neurons = s.weight_shape[static_cast<size_t>(s.output_axis)];
    const Shape neurons{s.neurons};
    s.count = need(in, path, p + "count", Shape{}).values.at(0);
    s.count_pos = need(in, path, p + "count_pos", neurons).values;
    s.sum_y = need(in, path, p + "sum_y", neurons).values;
    s.sum_y_pos = need(in, path, p + "sum_y_pos", neurons).values;
    s.sum_x = need(in, path, p + "sum_x", s.weight_shape).values;
    s.sum_x_pos = need(in, path, p + "sum_x_pos", s.weight_shape).values;
    s.sum_xy = sum_xy->second.values;
    s.sum_xy_pos = need(in, path, p + "sum_xy_pos", s.weight_shape).values;
    LayerPatterns patterns{s.node, Tensor(s.weight_shape), Tensor(s.weight_shape)};
    const std::vector<double>& pos = need(in, path, p + "pattern_pos", s.weight_shape).values;
    const std::vector<double>& neg = need(in, path, p + "pattern_neg", s.weight_shape).values;
    for (size_t i = 0; i < pos.size(); ++i) {
      patterns.positive[static_cast<int64_t>(i)] = static_cast<float>(pos[i]);
      patterns.negative[static_cast<int64_t>(i)] = static_cast<float>(neg[i]);
    }
    file.statistics.layers().push_back(std::move(s));
    file.patterns.push_back(std::move(patterns));
  }
  return file;
}

void check_patterns_fit(const PatternFile& file, const Model& model, const std::string& source) {
  const std::string fingerprint = model_fingerprint(model);
  if (file.fingerprint != fingerprint)
    throw Error(source + ": these patterns were fitted for another model (fingerprint " + file.fingerprint +
                ", this model " + fingerprint + ")");
  const std::vector<size_t> layers = pattern_layers(model);
  if (layers.size() != file.patterns.size())
    throw Error(source + ": " + std::to_string(file.patterns.size()) + " pattern layers for a model with " +
                std::to_string(layers.size()));
}

PatternFile read_pattern_file_for(const std::string& path, const Model& model) {
  PatternFile file = read_pattern_file(path);
  check_patterns_fit(file, model, path);
  return file;
}

PatternFile fit_pattern_file(const Model& model, InputStream& data, PatternType type, int64_t batch,
                             const std::string& data_description,
                             const std::function<void(int64_t, int64_t)>& progress) {
  PatternFile file;
  file.fingerprint = model_fingerprint(model);
  file.type = type;
  file.data_description = data_description;
  file.statistics = fit_pattern_statistics(model, data, batch, progress);
  file.patterns = estimate_patterns(model, file.statistics, type);
  return file;
}

PatternFile merge_pattern_files(const Model& model, const std::vector<std::string>& paths, PatternType type) {
  if (paths.empty()) throw Error("no pattern files to merge");
  PatternFile file;
  file.fingerprint = model_fingerprint(model);
  file.type = type;
  for (const std::string& path : paths) {
    const PatternFile part = read_pattern_file_for(path, model);
    if (file.statistics.layers().empty()) {
      file.statistics = part.statistics;
    } else {
      file.statistics.merge(part.statistics);
    }
    file.data_description += (file.data_description.empty() ? "" : " + ") + part.data_description;
  }
  file.patterns = estimate_patterns(model, file.statistics, type);
  return file;
}

}  // namespace sieve
