#include <filesystem>
#include <iomanip>
#include <iostream>

#include "commands.hpp"
#include "input_options.hpp"
#include "progress.hpp"
#include "sieve/analyzer.hpp"
#include "sieve/batch.hpp"
#include "sieve/error.hpp"
#include "sieve/io/npy.hpp"
#include "sieve/lrp.hpp"
#include "sieve/text_inputs.hpp"
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
  std::vector<std::string> rules;
  std::string composite, patterns;
  bool explain_rules = false, conservation = false;
  std::vector<std::string> fixed_inputs;
  std::string wrt, output;
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

// The input value range in the model's input space, when the profile or the flags say what it is.
std::optional<InputRange> known_input_range(const Model& model, const LoadedInputs& loaded,
                                            const InputOptions& o) {
  if (loaded.profile && loaded.profile->input_range) return loaded.profile->input_range;
  const bool preprocessing_known = (loaded.profile && loaded.profile->preprocessing) || o.scale ||
                                   !o.mean.empty() || !o.std.empty() || o.raw_range.size() == 2;
  if (!preprocessing_known) return std::nullopt;
  const Shape& s = model.input_shapes().at(0);
  return input_range(loaded.preprocessing, s.size() >= 2 && s[1] > 0 ? s[1] : 1);
}

void print_rules(const MethodSpec& spec, const RelevanceAnalyzer& analyzer, const Model& model) {
  std::cout << "rules of " << spec.text() << ":\n";
  for (const RuleAssignment& a : analyzer.assignment(model)) {
    std::cout << "  " << std::left << std::setw(28) << a.name << std::setw(20) << a.op_type << a.rule << "\n";
  }
}

// Σ R per layer for a relevance method: means over the inputs of Σ R at each node's output and input.
void print_conservation(const MethodSpec& spec, const RelevanceAnalyzer& analyzer, const Model& model,
                        const std::vector<Tensor>& samples, const TargetSelection& targets,
                        int64_t max_batch) {
  std::vector<LayerRelevance> total;
  std::vector<double> logit_sum;
  size_t explained = 0;
  run_in_batches(model, samples, max_batch, [&](const Tensor& x, int64_t, int64_t count) {
    const auto rows = static_cast<size_t>(count);
    const ForwardPass pass(model, x, analyzer.trace_values(model));
    for (const std::vector<int64_t>& t : targets.resolve(pass.output())) {
      std::vector<LayerRelevance> layers;
      analyzer.explain(pass, t, &layers);
      if (total.empty()) {
        total = layers;
        for (LayerRelevance& l : total) l.input_sum.assign(1, 0.0), l.output_sum.assign(1, 0.0);
      }
      for (size_t k = 0; k < layers.size() && k < total.size(); ++k) {
        for (size_t i = 0; i < layers[k].input_sum.size() && i < rows; ++i) {
          total[k].input_sum[0] += layers[k].input_sum[i];
          total[k].output_sum[0] += layers[k].output_sum[i];
        }
      }
      for (size_t i = 0; i < rows; ++i)
        logit_sum.push_back(pass.output()[static_cast<int64_t>(i) * pass.output().dim(1) + t[i]]);
      explained += rows;
    }
  });
  double mean_logit = 0.0;
  for (double v : logit_sum) mean_logit += v / static_cast<double>(std::max<size_t>(explained, 1));
  std::cout << "relevance per layer for " << spec.text() << " (means over " << explained
            << " explanation(s); mean target logit " << mean_logit << "):\n";
  std::cout << "  " << std::left << std::setw(28) << "node" << std::setw(20) << "op" << std::right
            << std::setw(14) << "sum R out" << std::setw(14) << "sum R in" << std::setw(10) << "in/out"
            << "\n";
  const double n = static_cast<double>(std::max<size_t>(explained, 1));
  for (const LayerRelevance& l : total) {
    const double out = l.output_sum[0] / n, in = l.input_sum[0] / n;
    std::cout << "  " << std::left << std::setw(28) << l.name << std::setw(20) << l.op_type << std::right
              << std::setw(14) << out << std::setw(14) << in << std::setw(10) << (out != 0.0 ? in / out : 0.0)
              << "\n";
  }
}

void run_explain(const ExplainOptions& o) {
  const Model model = Model::load(o.model);
  ExplainSetup setup{o.wrt, o.output, {}, false};
  const LoadedInputs loaded =
      load_cli_inputs(o.model, model, o.inputs, o.input, explained_input(model, setup));
  AnalyzerContext context;
  context.input_range = known_input_range(model, loaded, o.input);
  context.rules = o.rules;
  context.composite_file = o.composite;
  context.patterns_file = o.patterns;
  std::vector<MethodSpec> specs;
  std::vector<std::unique_ptr<Analyzer>> owned;
  std::vector<const Analyzer*> analyzers;
  bool any_relevance = false;
  for (const std::string& m : o.methods) {
    specs.push_back(MethodSpec::parse(m));
    owned.push_back(create_analyzer(specs.back(), context));
    owned.back()->prepare(model);
    analyzers.push_back(owned.back().get());
    any_relevance = any_relevance || dynamic_cast<const RelevanceAnalyzer*>(analyzers.back()) != nullptr;
  }
  if (!any_relevance && (!o.rules.empty() || !o.composite.empty() || o.explain_rules || o.conservation))
    throw Error(
        "--rule, --composite, --explain-rules and --conservation apply to relevance methods (lrp.*, "
        "deep_taylor*)");
  const TargetSelection targets = read_target(o.target);
  std::vector<Tensor> samples;
  for (const NamedInput& in : loaded.inputs) samples.push_back(in.tensor);
  for (const std::string& text : o.fixed_inputs)
    add_fixed_input(setup, model, text, static_cast<int64_t>(samples.size()));
  for (size_t m = 0; m < analyzers.size(); ++m) {
    const auto* relevance = dynamic_cast<const RelevanceAnalyzer*>(analyzers[m]);
    if (relevance == nullptr) continue;
    if (o.explain_rules) print_rules(specs[m], *relevance, model);
    if (o.conservation) print_conservation(specs[m], *relevance, model, samples, targets, o.input.batch);
  }
  if (o.out.empty()) {
    if (o.explain_rules || o.conservation) return;
    throw Error("--out is required (a .npy file or a directory)");
  }
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
  Progress progress("explaining");
  const std::vector<Explanation> results =
      explain_samples(model, samples, analyzers, targets, setup, o.input.batch,
                      [&](size_t d, size_t t) { progress.update(d, t); });

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
  const bool several_targets =
      targets.kind == TargetSelection::Kind::indices || targets.kind == TargetSelection::Kind::all;
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
  cmd->add_option(
      "--target", options->target,
      "max (largest output), a flat output index (the class of [N, classes]), a list 1,4,7, all, sum, "
      "or MASK.npy (weights shaped like one output sample or all of them)");
  cmd->add_option("--input", options->fixed_inputs,
                  "NAME=FILE.npy|VALUE: another model input, held fixed (repeatable)");
  cmd->add_option("--wrt", options->wrt, "The input to explain (default: the only float input)");
  cmd->add_option("--output", options->output, "The output to explain, by name (default: the first)");
  cmd->add_option(
      "--out,-o", options->out,
      "Output: FILE.npy (one method) or a directory (optional with --explain-rules/--conservation)");
  cmd->add_option("--save", options->save, "What to write into a directory: npy, png")->delimiter(',');
  cmd->add_option("--viz", options->viz,
                  "Picture: heatmap, graymap, projection, scale_input, blend (default: per method)");
  cmd->add_option("--grid", options->grid,
                  "Also write one PNG grid: a row per input, the input then each method");
  cmd->add_option("--rule", options->rules,
                  "Relevance methods: PREDICATE:RULE[:key=value,...] ahead of the preset, e.g. "
                  "Conv:gamma:gamma=0.25, first:z_box, Gemm:epsilon:epsilon=0.1 (repeatable)");
  cmd->add_option("--composite", options->composite,
                  "Relevance methods: a JSON composite ahead of the preset");
  cmd->add_option("--patterns", options->patterns,
                  "pattern.net / pattern.attribution: the fitted pattern file");
  cmd->add_flag("--explain-rules", options->explain_rules,
                "Print the rule each node of a relevance method gets");
  cmd->add_flag("--conservation", options->conservation,
                "Print the relevance entering and leaving every layer (sums, means over the inputs)");
  add_input_options(cmd, options->input);
  cmd->callback([options] { run_explain(*options); });
}

}  // namespace sieve::cli
