#include <filesystem>
#include <iostream>

#include "commands.hpp"
#include "input_options.hpp"
#include "progress.hpp"
#include "sieve/analyzer.hpp"
#include "sieve/error.hpp"
#include "sieve/io/npy.hpp"
#include "sieve/visualize.hpp"

namespace fs = std::filesystem;

namespace sieve::cli {
namespace {

struct ExplainOptions {
  std::string model;
  std::vector<std::string> inputs, methods;
  std::string target = "max";
  std::string out;
  std::vector<std::string> save{"npy", "png"};
  std::string viz;
  std::string grid;
  InputOptions input;
};

Visualization parse_viz(const std::string& name) {
  if (name == "heatmap") return Visualization::heatmap;
  if (name == "graymap") return Visualization::graymap;
  if (name == "projection") return Visualization::projection;
  if (name == "scale_input") return Visualization::scale_input;
  if (name == "blend") return Visualization::blend;
  throw Error("unknown visualization '" + name + "' (heatmap, graymap, projection, scale_input, blend)");
}

// "dir/shirt.png" → "shirt", "batch.npy[3]" → "batch_3".
std::string stem_of(const std::string& input_name) {
  std::string s = fs::path(input_name).filename().string();
  const size_t bracket = s.find('[');
  std::string index;
  if (bracket != std::string::npos) {
    index = "_" + s.substr(bracket + 1, s.find(']') - bracket - 1);
    s = s.substr(0, bracket);
  }
  return fs::path(s).stem().string() + index;
}

std::string file_safe(std::string s) {
  for (char& c : s) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-' && c != '_') c = '_';
  }
  return s;
}

void run_explain(const ExplainOptions& o) {
  const Model model = Model::load(o.model);
  std::vector<MethodSpec> specs;
  std::vector<std::unique_ptr<Analyzer>> owned;
  std::vector<const Analyzer*> analyzers;
  for (const std::string& m : o.methods) {
    specs.push_back(MethodSpec::parse(m));
    owned.push_back(create_analyzer(specs.back()));
    analyzers.push_back(owned.back().get());
  }
  const TargetSelection targets = TargetSelection::parse(o.target);
  // The picture per method: --viz, or the method's own default.
  std::vector<Visualization> pictures;
  for (const MethodSpec& spec : specs) {
    std::string name = o.viz;
    for (const MethodInfo& info : available_methods()) {
      if (name.empty() && info.name == spec.name) name = info.visualization;
    }
    pictures.push_back(parse_viz(name));
  }
  for (const std::string& s : o.save) {
    if (s != "npy" && s != "png") throw Error("--save takes npy and/or png, not '" + s + "'");
  }
  const bool single_file = fs::path(o.out).extension() == ".npy";
  if (single_file && specs.size() != 1)
    throw Error("--out " + o.out + ": one .npy file holds one method; give a directory for several");
  const LoadedInputs loaded = load_cli_inputs(o.model, model, o.inputs, o.input);
  std::vector<Tensor> samples;
  for (const NamedInput& in : loaded.inputs) samples.push_back(in.tensor);

  Progress progress("explaining");
  const std::vector<Explanation> results = explain_samples(
      model, samples, analyzers, targets, o.input.batch, [&](size_t d, size_t t) { progress.update(d, t); });

  if (single_file) {
    // All explanations in input order: [N, ...] for one target per input, [N, T, ...] for several.
    const size_t per_input = results.size() / std::max<size_t>(samples.size(), 1);
    Shape shape = samples.at(0).shape();
    shape[0] = static_cast<int64_t>(samples.size());
    if (per_input > 1) shape.insert(shape.begin() + 1, static_cast<int64_t>(per_input));
    Tensor all = Tensor::uninitialized(shape);
    const int64_t per = samples[0].size();
    for (size_t i = 0; i < results.size(); ++i)
      std::copy_n(results[i].values.data(), per, all.data() + static_cast<int64_t>(i) * per);
    if (fs::path(o.out).has_parent_path()) fs::create_directories(fs::path(o.out).parent_path());
    write_npy(o.out, all);
    return;
  }
  fs::create_directories(o.out);
  const bool save_npy = std::find(o.save.begin(), o.save.end(), "npy") != o.save.end();
  const bool save_png = std::find(o.save.begin(), o.save.end(), "png") != o.save.end();
  const bool several_targets = targets.kind != TargetSelection::Kind::max;
  std::vector<std::vector<Image>> rows(samples.size());
  for (size_t i = 0; i < samples.size(); ++i) rows[i].push_back(input_image(samples[i]));
  for (const Explanation& e : results) {
    std::string name =
        file_safe(stem_of(loaded.inputs[e.sample].name)) + "__" + file_safe(specs[e.method].text());
    if (several_targets) name += "__class" + std::to_string(e.target);
    const fs::path base = fs::path(o.out) / name;
    if (save_npy) write_npy(base.string() + ".npy", e.values);
    if (!save_png && o.grid.empty()) continue;
    const Image picture = visualize(pictures[e.method], e.values, rows[e.sample][0]);
    if (save_png) write_png(base.string() + ".png", picture);
    rows[e.sample].push_back(picture);
  }
  if (!o.grid.empty()) write_png(o.grid, grid(rows));
  std::cout << "wrote " << results.size() << " explanation(s) of " << samples.size() << " input(s) to "
            << o.out << "\n";
}

}  // namespace

void add_explain_command(CLI::App& app) {
  auto options = std::make_shared<ExplainOptions>();
  CLI::App* cmd = app.add_subcommand("explain", "Explain a model's predictions on inputs");
  cmd->add_option("model", options->model, "ONNX model file")->required();
  cmd->add_option("inputs", options->inputs, "Inputs: .npy, PNG/JPEG, IDX files or directories of images")
      ->required();
  cmd->add_option("--method,-m", options->methods,
                  "Method NAME[:key=value,...] (repeatable; see sieve methods)")
      ->required();
  cmd->add_option("--target", options->target, "max (predicted class), a class index, a list 1,4,7, or all");
  cmd->add_option("--out,-o", options->out, "Output: FILE.npy (one method) or a directory")->required();
  cmd->add_option("--save", options->save, "What to write into a directory: npy, png")->delimiter(',');
  cmd->add_option("--viz", options->viz,
                  "Picture: heatmap, graymap, projection, scale_input, blend (default: per method)");
  cmd->add_option("--grid", options->grid,
                  "Also write one PNG grid: a row per input, the input then each method");
  add_input_options(cmd, options->input);
  cmd->callback([options] { run_explain(*options); });
}

}  // namespace sieve::cli
