#include <algorithm>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <map>
#include <set>
#include <sstream>

#include "commands.hpp"
#include "input_options.hpp"
#include "progress.hpp"
#include "sieve/analyzer.hpp"
#include "sieve/error.hpp"
#include "sieve/io/npy.hpp"
#include "sieve/io/stream.hpp"
#include "sieve/lrp.hpp"
#include "sieve/methods.hpp"
#include "sieve/results.hpp"
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
  std::vector<std::string> data;
  bool explain_rules = false, conservation = false, json = false;
  std::vector<std::string> fixed_inputs;
  std::string wrt, output;
  InputOptions input;
};

// Where the results go: nowhere (only --explain-rules / --conservation), one .npy array, one .png
// picture, or a directory. Paths are checked before any work.
enum class OutKind { none, npy, png, directory };

OutKind check_out_paths(const ExplainOptions& o, size_t explanations) {
  auto parent_exists = [](const fs::path& p) {
    return !p.has_parent_path() || fs::is_directory(p.parent_path());
  };
  if (!o.grid.empty()) {
    const fs::path g(o.grid);
    if (g.extension() != ".png") throw Error("--grid " + o.grid + ": the grid is a .png file");
    const bool inside_out = !o.out.empty() && g.has_parent_path() &&
                            g.parent_path().lexically_normal() == fs::path(o.out).lexically_normal();
    if (!parent_exists(g) && !inside_out)
      throw Error("--grid " + o.grid + ": directory " + g.parent_path().string() + " does not exist");
  }
  if (o.out.empty()) {
    if (!o.grid.empty()) throw Error("--grid goes with a directory --out");
    return OutKind::none;
  }
  const fs::path out(o.out);
  if (!parent_exists(out))
    throw Error("--out " + o.out + ": directory " + out.parent_path().string() + " does not exist");
  const std::string ext = out.extension().string();
  if (ext == ".npy" || ext == ".png") {
    if (fs::is_directory(out)) throw Error("--out " + o.out + ": is a directory");
    if (ext == ".npy" && o.methods.size() != 1)
      throw Error("--out " + o.out + ": one .npy file holds one method; give a directory for several");
    if (ext == ".png" && explanations != 1)
      throw Error("--out " + o.out + ": one .png file holds one picture, but the run makes " +
                  std::to_string(explanations) + " explanations; give a directory");
    if (!o.grid.empty()) throw Error("--grid goes with a directory --out, not " + o.out);
    return ext == ".npy" ? OutKind::npy : OutKind::png;
  }
  if (fs::exists(out) && !fs::is_directory(out))
    throw Error("--out " + o.out + ": exists and is not a directory");
  return OutKind::directory;
}

std::string join(const std::vector<std::string>& items) {
  std::string s;
  for (const std::string& i : items) s += (s.empty() ? "" : ", ") + i;
  return s;
}

// One line per input: the classes explained, with logit and probability, and how many files hold them.
void print_summary(const std::vector<NamedInput>& inputs, const std::vector<Explanation>& results,
                   const std::vector<ExplanationRecord>& records) {
  std::vector<std::vector<const ExplanationRecord*>> per_input(inputs.size());
  for (size_t k = 0; k < results.size(); ++k) per_input[results[k].sample].push_back(&records[k]);
  for (size_t i = 0; i < inputs.size(); ++i) {
    std::vector<std::string> classes;
    std::set<std::string> files;
    std::vector<int64_t> seen;
    for (const ExplanationRecord* r : per_input[i]) {
      files.insert(r->outputs.begin(), r->outputs.end());
      if (std::find(seen.begin(), seen.end(), r->target) != seen.end()) continue;
      seen.push_back(r->target);
      std::ostringstream c;
      if (r->target < 0) {
        c << "the weighted output";
      } else {
        c << "class " << r->target << (r->class_name.empty() ? "" : " (" + r->class_name + ")");
        if (!std::isnan(r->logit))
          c << std::fixed << std::setprecision(4) << " logit " << r->logit << " p " << r->probability;
      }
      classes.push_back(c.str());
    }
    std::cout << inputs[i].name << ": " << join(classes) << "; " << per_input[i].size() << " explanation(s)";
    if (!files.empty()) std::cout << " in " << files.size() << " file(s)";
    std::cout << "\n";
  }
}

// A mistyped rule name in --rule PREDICATE:RULE[:k=v] gets a suggestion; other errors in the text are
// the library's to report.
void check_rule_names(const std::vector<std::string>& rules) {
  const std::vector<std::string> names = rule_names();
  for (const std::string& r : rules) {
    const size_t first = r.find(':');
    if (first == std::string::npos) continue;
    const size_t second = r.find(':', first + 1);
    const std::string rule =
        r.substr(first + 1, second == std::string::npos ? std::string::npos : second - first - 1);
    if (rule.empty() || std::find(names.begin(), names.end(), rule) != names.end()) continue;
    const std::string near = closest_match(rule, names);
    if (!near.empty())
      throw Error("--rule " + r + ": unknown rule '" + rule + "' (did you mean '" + near + "'?)");
  }
}

// --data: every sample in one tensor [M, ...], preprocessed as the inputs are; null without it.
std::shared_ptr<const Tensor> load_data(const ExplainOptions& o, const Model& model, size_t wrt) {
  if (o.data.empty()) return nullptr;
  const LoadedInputs resolved = resolve_preprocessing(o.model, model, o.input, o.data, wrt);
  InputStream stream(o.data, resolved.preprocessing, model.input_shapes().at(wrt));
  std::vector<float> values;
  Shape shape;
  int64_t count = 0;
  for (Tensor batch; stream.next(256, batch);) {
    shape = batch.shape();
    count += batch.dim(0);
    values.insert(values.end(), batch.values().begin(), batch.values().end());
  }
  if (count == 0) throw Error("--data holds no samples");
  shape[0] = count;
  return std::make_shared<const Tensor>(shape, std::span<const float>(values));
}

// The run's methods, each created once and prepared for the model; a method given twice runs once.
struct Methods {
  std::vector<MethodSpec> specs;
  std::vector<std::unique_ptr<Analyzer>> owned;
  std::vector<const Analyzer*> analyzers;
};

Methods create_methods(const ExplainOptions& o, const AnalyzerContext& context, const Model& model) {
  Methods methods;
  bool any_relevance = false;
  for (const std::string& m : o.methods) {
    MethodSpec spec = MethodSpec::parse(m);
    const bool repeated = std::any_of(methods.specs.begin(), methods.specs.end(),
                                      [&](const MethodSpec& s) { return s.text() == spec.text(); });
    if (repeated) {
      std::cerr << "sieve: notice: method " << spec.text() << " is given more than once; explained once\n";
      continue;
    }
    methods.specs.push_back(spec);
    methods.owned.push_back(create_analyzer(spec, context));
    methods.owned.back()->prepare(model);
    methods.analyzers.push_back(methods.owned.back().get());
    any_relevance =
        any_relevance || dynamic_cast<const RelevanceAnalyzer*>(methods.analyzers.back()) != nullptr;
  }
  if (!any_relevance && (!o.rules.empty() || !o.composite.empty() || o.explain_rules || o.conservation))
    throw Error(
        "--rule, --composite, --explain-rules and --conservation apply to relevance methods (lrp.*, "
        "deep_taylor*)");
  return methods;
}

// How many explanations each input gets, to check a single-file --out before any work.
size_t explanations_per_input(const TargetSelection& targets, const Model& model) {
  const Shape& output = model.output_shapes().at(0);
  const int64_t classes = output.size() == 2 ? output[1] : -1;
  if (targets.kind == TargetSelection::Kind::indices) return targets.indices.size();
  if (targets.kind == TargetSelection::Kind::all) return static_cast<size_t>(classes > 0 ? classes : 2);
  return 1;
}

// --explain-rules and --conservation of every relevance method: printed, or gathered into `printed`.
void report_relevance(const ExplainOptions& o, const Methods& methods, const Model& model,
                      const std::vector<Tensor>& samples, const TargetSelection& targets,
                      nlohmann::json& printed) {
  if (o.conservation &&
      (targets.kind == TargetSelection::Kind::sum || targets.kind == TargetSelection::Kind::mask ||
       model.input_shapes().size() != 1 || !o.output.empty()))
    throw Error(
        "--conservation reports class targets (max, indices, all) of a single-input model's first output");
  for (size_t m = 0; m < methods.analyzers.size(); ++m) {
    const auto* relevance = dynamic_cast<const RelevanceAnalyzer*>(methods.analyzers[m]);
    if (relevance == nullptr) continue;
    if (o.explain_rules) {
      const nlohmann::json rules = rules_json(methods.specs[m].text(), *relevance, model);
      if (o.json) {
        printed["rules"].push_back(rules);
      } else {
        std::cout << rules_table(rules);
      }
    }
    if (o.conservation) {
      const nlohmann::json c = conservation_json(
          methods.specs[m].text(), conservation_report(*relevance, model, samples, targets, o.input.batch));
      if (o.json) {
        printed["conservation"].push_back(c);
      } else {
        std::cout << conservation_table(c);
      }
    }
  }
}

// One manifest record per explanation. The target's value is read from the explained output; its
// probability is the softmax over a [batch, classes] output, computed once per sample.
std::vector<ExplanationRecord> records_for(const std::vector<Explanation>& results,
                                           const std::vector<NamedInput>& inputs,
                                           const std::vector<MethodSpec>& specs,
                                           const std::vector<std::string>& class_names) {
  std::map<size_t, std::vector<double>> probabilities;
  std::vector<ExplanationRecord> records;
  for (const Explanation& e : results) {
    const NamedInput& in = inputs[e.sample];
    ExplanationRecord r;
    r.input = in.name;
    r.file = in.file;
    r.index = in.index;
    r.method = specs[e.method].text();
    r.method_name = specs[e.method].name;
    r.parameters = method_parameters(specs[e.method]);
    r.target = e.target;
    if (static_cast<size_t>(e.target) < class_names.size())
      r.class_name = class_names[static_cast<size_t>(e.target)];
    if (e.target >= 0) {
      r.logit = e.output[e.target];
      if (e.output.rank() == 2) {
        auto [at, fresh] = probabilities.try_emplace(e.sample);
        if (fresh) at->second = softmax({e.output.values().begin(), e.output.values().end()});
        r.probability = at->second[static_cast<size_t>(e.target)];
      }
    }
    records.push_back(std::move(r));
  }
  return records;
}

// The superpixels that `lime` without a mask switched on and off in a sample ([H, W]), empty for other
// methods: segmenting the same input with the same parameters again gives the same segments.
Tensor segments_of(const MethodSpec& spec, const Tensor& sample) {
  const Tensor segments = lime_segments(spec, sample);
  return segments.empty() ? segments : segments.reshaped({segments.dim(1), segments.dim(2)});
}

// All explanations in one .npy array (input order; [N, ...] for one target per input, [N, T, ...] for
// several) or the one explanation's picture in one .png. LIME's superpixels go beside the array, in
// OUT__METHOD__segments.npy ([N, H, W]).
void write_single_file(const ExplainOptions& o, OutKind kind, const std::vector<Explanation>& results,
                       const std::vector<Tensor>& samples, const std::vector<MethodSpec>& specs,
                       const std::vector<Visualization>& pictures, std::vector<ExplanationRecord>& records,
                       OutputLedger& ledger) {
  ledger.claim(o.out);
  if (kind == OutKind::png) {
    const Explanation& e = results.at(0);
    write_png(o.out, visualize(pictures[e.method], e.values, input_image(samples[e.sample])));
    records[0].outputs.push_back(o.out);
    return;
  }
  const size_t per = results.size() / std::max<size_t>(samples.size(), 1);
  Shape shape = samples.at(0).shape();
  shape[0] = static_cast<int64_t>(samples.size());
  if (per > 1) shape.insert(shape.begin() + 1, static_cast<int64_t>(per));
  Tensor all = Tensor::uninitialized(shape);
  const int64_t values = samples[0].size();
  for (size_t i = 0; i < results.size(); ++i) {
    std::copy_n(results[i].values.data(), values, all.data() + static_cast<int64_t>(i) * values);
    records[i].outputs.push_back(o.out);
    records[i].position = {static_cast<int64_t>(results[i].sample)};
    if (per > 1) records[i].position.push_back(static_cast<int64_t>(i % per));
  }
  write_npy(o.out, all);
  std::set<size_t> segmented;
  for (size_t i = 0; i < results.size(); ++i) {
    const size_t m = results[i].method;
    if (segmented.count(m) || lime_segments(specs[m], samples[0]).empty()) continue;
    segmented.insert(m);
    const std::string path =
        fs::path(o.out).replace_extension("").string() + "__" + file_safe(specs[m].text()) + "__segments.npy";
    ledger.claim(path);
    Tensor maps;
    for (size_t s = 0; s < samples.size(); ++s) {
      const Tensor one = segments_of(specs[m], samples[s]);
      if (maps.empty())
        maps = Tensor::uninitialized({static_cast<int64_t>(samples.size()), one.dim(0), one.dim(1)});
      std::copy_n(one.data(), one.size(), maps.data() + static_cast<int64_t>(s) * one.size());
    }
    write_npy(path, maps);
    for (size_t k = 0; k < results.size(); ++k) {
      if (results[k].method == m) records[k].outputs.push_back(path);
    }
  }
}

// One .npy and/or .png per input × method (× target) in the --out directory, and the --grid picture.
void write_directory(const ExplainOptions& o, const std::vector<Explanation>& results,
                     const std::vector<NamedInput>& inputs, const std::vector<Tensor>& samples,
                     const std::vector<MethodSpec>& specs, const std::vector<Visualization>& pictures,
                     const TargetSelection& targets, std::vector<ExplanationRecord>& records,
                     OutputLedger& ledger) {
  fs::create_directories(o.out);
  const bool save_npy = std::find(o.save.begin(), o.save.end(), "npy") != o.save.end();
  const bool save_png = std::find(o.save.begin(), o.save.end(), "png") != o.save.end();
  const bool several_targets =
      targets.kind == TargetSelection::Kind::indices || targets.kind == TargetSelection::Kind::all;
  const std::vector<std::string> stems = output_stems(inputs);
  std::vector<std::vector<Image>> rows(samples.size());
  for (size_t i = 0; i < samples.size(); ++i) rows[i].push_back(input_image(samples[i]));
  std::set<std::string> written_segments;
  for (size_t k = 0; k < results.size(); ++k) {
    const Explanation& e = results[k];
    std::string name = stems[e.sample] + "__" + file_safe(specs[e.method].text());
    if (several_targets) name += "__class" + std::to_string(e.target);
    const std::string base = (fs::path(o.out) / name).string();
    if (save_npy) {
      ledger.claim(base + ".npy");
      write_npy(base + ".npy", e.values);
      records[k].outputs.push_back(base + ".npy");
      // LIME's superpixels, once per input and method (whatever the targets).
      const std::string segments_file =
          stems[e.sample] + "__" + file_safe(specs[e.method].text()) + "__segments.npy";
      const std::string segments_path = (fs::path(o.out) / segments_file).string();
      if (written_segments.count(segments_path) != 0) {
        records[k].outputs.push_back(segments_path);
      } else if (const Tensor segments = segments_of(specs[e.method], samples[e.sample]); !segments.empty()) {
        ledger.claim(segments_path);
        write_npy(segments_path, segments);
        written_segments.insert(segments_path);
        records[k].outputs.push_back(segments_path);
      }
    }
    if (!save_png && o.grid.empty()) continue;
    const Image picture = visualize(pictures[e.method], e.values, rows[e.sample][0]);
    if (save_png) {
      ledger.claim(base + ".png");
      write_png(base + ".png", picture);
      records[k].outputs.push_back(base + ".png");
    }
    rows[e.sample].push_back(picture);
  }
  if (!o.grid.empty()) {
    ledger.claim(o.grid);
    write_png(o.grid, grid(rows));
  }
}

void run_explain(const ExplainOptions& o) {
  check_rule_names(o.rules);
  for (const std::string& s : o.save) {
    if (s != "npy" && s != "png") throw Error("--save takes npy and/or png, not '" + s + "'");
  }
  const Model model = Model::load(o.model);
  ExplainSetup setup{o.wrt, o.output, {}, false};
  const size_t wrt = explained_input(model, setup);
  const LoadedInputs loaded = load_cli_inputs(o.model, model, o.inputs, o.input, wrt);
  const std::vector<std::string> class_names =
      loaded.profile ? loaded.profile->class_names : std::vector<std::string>{};
  AnalyzerContext context;
  context.input_range = known_input_range(model, loaded, o.input, wrt);
  context.rules = o.rules;
  context.composite_file = o.composite;
  context.patterns_file = o.patterns;
  context.data = load_data(o, model, wrt);
  context.max_batch = o.input.batch;
  const Methods methods = create_methods(o, context, model);
  const ParsedTargets parsed = parse_targets(o.target, class_names);
  for (int64_t d : parsed.duplicates)
    std::cerr << "sieve: notice: target " << d << " is given more than once; explained once\n";
  const TargetSelection& targets = parsed.selection;
  const OutKind out_kind = check_out_paths(
      o, loaded.inputs.size() * methods.specs.size() * explanations_per_input(targets, model));
  if (out_kind == OutKind::none && !o.explain_rules && !o.conservation)
    throw Error("--out is required (a .npy file, a .png file or a directory)");
  std::vector<Tensor> samples;
  for (const NamedInput& in : loaded.inputs) samples.push_back(in.tensor);
  for (const std::string& text : o.fixed_inputs)
    add_fixed_input(setup, model, text, static_cast<int64_t>(samples.size()));
  // With --json, everything printed is one object: "rules", "conservation", then the manifest's fields.
  nlohmann::json printed = nlohmann::json::object();
  report_relevance(o, methods, model, samples, targets, printed);
  if (out_kind == OutKind::none) {
    if (o.json) std::cout << printed.dump() << "\n";
    return;
  }
  std::vector<Visualization> pictures;
  for (const MethodSpec& spec : methods.specs) pictures.push_back(method_visualization(spec, o.viz));
  Progress progress("explaining");
  const std::vector<Explanation> results =
      explain_samples(model, samples, methods.analyzers, targets, setup, o.input.batch,
                      [&](size_t d, size_t t) { progress.update(d, t); });
  progress.finish();

  std::vector<ExplanationRecord> records = records_for(results, loaded.inputs, methods.specs, class_names);
  OutputLedger ledger;
  const bool single_file = out_kind == OutKind::npy || out_kind == OutKind::png;
  if (single_file) {
    write_single_file(o, out_kind, results, samples, methods.specs, pictures, records, ledger);
  } else {
    write_directory(o, results, loaded.inputs, samples, methods.specs, pictures, targets, records, ledger);
  }
  const std::string manifest = single_file ? o.out + ".json" : (fs::path(o.out) / "manifest.json").string();
  ledger.claim(manifest);
  const nlohmann::json manifest_content = manifest_json(o.model, records);
  write_json(manifest, manifest_content);
  if (o.json) {
    printed.update(manifest_content);
    printed["manifest"] = manifest;
    std::cout << printed.dump() << "\n";
    return;
  }
  print_summary(loaded.inputs, results, records);
  std::cout << "wrote " << results.size() << " explanation(s) of " << samples.size() << " input(s) in "
            << ledger.files().size() - 1 << " file(s) to " << o.out << " (manifest " << manifest << ")\n";
}

}  // namespace

void add_explain_command(CLI::App& app) {
  auto options = std::make_shared<ExplainOptions>();
  CLI::App* cmd = app.add_subcommand("explain", "Explain a model's predictions on inputs");
  cmd->add_option("model", options->model, "ONNX model file")->required();
  cmd->add_option("inputs", options->inputs, "Inputs: .npy, PNG/JPEG, IDX files or directories of images")
      ->required();
  cmd->add_option("--method,-m", options->methods,
                  "Method NAME[:key=value,...], one per flag (repeatable; see sieve methods)")
      ->required()
      ->allow_extra_args(false);
  cmd->add_option("--target", options->target,
                  "max (largest output), a flat output index (the class of [N, classes]), a class name, "
                  "a list 1,4,7, all, sum, or MASK.npy (weights shaped like one output sample or all of "
                  "them)");
  cmd->add_option("--input", options->fixed_inputs,
                  "NAME=FILE.npy|VALUE: another model input, held fixed (repeatable)")
      ->allow_extra_args(false);
  cmd->add_option("--wrt", options->wrt, "The input to explain (default: the only float input)");
  cmd->add_option("--output", options->output, "The output to explain, by name (default: the first)");
  cmd->add_option(
      "--out,-o", options->out,
      "Output: FILE.npy (one method) or a directory (optional with --explain-rules/--conservation)");
  cmd->add_option("--save", options->save, "What to write into a directory: npy, png")
      ->delimiter(',')
      ->allow_extra_args(false);
  cmd->add_option("--viz", options->viz,
                  "Picture: heatmap, graymap, projection, scale_input, blend (default: per method)");
  cmd->add_option("--grid", options->grid,
                  "Also write one PNG grid: a row per input, the input then each method");
  cmd->add_option("--rule", options->rules,
                  "Relevance methods: PREDICATE:RULE[:key=value,...] ahead of the preset, e.g. "
                  "Conv:gamma:gamma=0.25, first:z_box, Gemm:epsilon:epsilon=0.1, one per flag (repeatable)")
      ->allow_extra_args(false);
  cmd->add_option("--composite", options->composite,
                  "Relevance methods: a JSON composite ahead of the preset");
  cmd->add_option("--patterns", options->patterns,
                  "pattern.net / pattern.attribution: the fitted pattern file");
  cmd->add_option("--data", options->data,
                  "prediction_difference: the data its windows are sampled from (.npy, IDX, images or "
                  "directories; FILE[a:b] for a slice), preprocessed as the inputs");
  cmd->add_flag("--explain-rules", options->explain_rules,
                "Print the rule each node of a relevance method gets");
  cmd->add_flag("--conservation", options->conservation,
                "Print the relevance entering and leaving every layer (sums, means over the inputs)");
  cmd->add_flag(
      "--json", options->json,
      "Print one JSON object: the manifest's records, and the rules and conservation tables if asked");
  add_input_options(cmd, options->input);
  add_skip_unreadable_option(cmd, options->input);
  cmd->callback([options] { run_explain(*options); });
}

}  // namespace sieve::cli
