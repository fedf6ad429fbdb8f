// The `sieve` Python module: a thin adapter over the library, like the command line. Arrays come in as
// NumPy arrays (read without a copy when they are C-contiguous float32) and go out as NumPy arrays;
// every computation runs with the interpreter lock released; sieve::Error becomes sieve.Error with the
// message the command line prints.

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "arrays.hpp"
#include "sieve/analyzer.hpp"
#include "sieve/error.hpp"
#include "sieve/evaluation.hpp"
#include "sieve/io/inputs.hpp"
#include "sieve/io/profile.hpp"
#include "sieve/methods.hpp"
#include "sieve/model.hpp"
#include "sieve/patterns.hpp"
#include "sieve/report.hpp"

namespace py = pybind11;

namespace sieve::python {
namespace {

// A loaded model with what its profile (MODEL.onnx.json, as the command line reads it) says about its
// inputs. Calls hold the model through a shared pointer, so closing it while another thread computes
// with it only ends its use by later calls.
class ModelHandle {
 public:
  explicit ModelHandle(const std::string& path) : path_(path) {
    py::gil_scoped_release release;
    model_ = std::make_shared<const Model>(Model::load(path));
    profile_ = find_profile(path);
    const Shape& input = model_->input_shapes().at(0);
    const Shape& output = model_->output_shapes().at(0);
    const int64_t channels = input.size() >= 2 ? input[1] : -1;
    if (profile_)
      check_profile_fits(*profile_, path + ".json", channels, output.size() == 2 ? output[1] : -1);
    preprocessing_ = model_preprocessing(profile_, channels);
    input_range_ = known_input_range(profile_, preprocessing_, false, channels > 0 ? channels : 1);
  }

  std::shared_ptr<const Model> model() const {
    if (model_ == nullptr) throw Error(path_ + ": the model is closed");
    return model_;
  }
  void close() { model_.reset(); }
  bool closed() const { return model_ == nullptr; }
  const std::string& path() const { return path_; }
  std::vector<std::string> class_names() const {
    return profile_ ? profile_->class_names : std::vector<std::string>{};
  }
  const Preprocessing& preprocessing() const { return preprocessing_; }
  const std::optional<InputRange>& input_range() const { return input_range_; }

 private:
  std::string path_;
  std::shared_ptr<const Model> model_;
  std::optional<ModelProfile> profile_;
  Preprocessing preprocessing_;
  std::optional<InputRange> input_range_;
};

// Fitted patterns, shared by every explanation that uses them.
struct Patterns {
  std::shared_ptr<const PatternFile> file;
};

py::tuple shape_tuple(const Shape& shape) {
  py::tuple t(shape.size());
  for (size_t i = 0; i < shape.size(); ++i) t[i] = shape[i];
  return t;
}

// The explained input of a single-input model as a batch, checked against its declared shape with any
// batch size (the batch runner splits and pads it into the model's own batches).
InputArray model_batch(const Model& model, const py::handle& x) {
  InputArray in = input_array(x, "x");
  if (in.tensor.dim(0) == 0) throw Error("x: the batch has no samples");
  Shape declared = model.input_shapes().at(0);
  if (!declared.empty()) declared[0] = -1;
  check_input(in.tensor, declared, model.input_names().at(0));
  return in;
}

// None: the predicted class; an int: that class for every sample; a sequence: one class per sample.
struct TargetArgument {
  TargetSelection selection;
  std::optional<std::vector<int64_t>> per_sample;
};

// Python ints and anything else usable as an index (NumPy integers), but not bools.
bool is_index(const py::handle& object) {
  return !py::isinstance<py::bool_>(object) && py::hasattr(object, "__index__");
}

std::string type_name(const py::handle& object) {
  return py::str(static_cast<py::object>(py::type::of(object).attr("__name__"))).cast<std::string>();
}

TargetArgument target_argument(const py::object& target, size_t samples) {
  TargetArgument t;
  if (target.is_none()) return t;
  // A NumPy array of classes is a sequence although it has __index__; one of no dimensions is one class.
  const bool scalar_array = py::isinstance<py::array>(target) && target.cast<py::array>().ndim() == 0;
  const bool sequence =
      py::isinstance<py::sequence>(target) && !py::isinstance<py::str>(target) && !scalar_array;
  if (!sequence && is_index(target)) {
    t.selection.kind = TargetSelection::Kind::indices;
    t.selection.indices = {py::int_(target).cast<int64_t>()};
    return t;
  }
  if (sequence) {
    std::vector<int64_t> classes;
    for (const py::handle item : target) {  // the iterator holds each item while it is read
      if (!is_index(item))
        throw Error("target: a list of class indices, got an item of type " + type_name(item));
      classes.push_back(py::int_(py::reinterpret_borrow<py::object>(item)).cast<int64_t>());
    }
    if (classes.size() != samples)
      throw Error("target: " + std::to_string(classes.size()) + " classes for " + std::to_string(samples) +
                  " samples: give one per sample");
    t.per_sample = std::move(classes);
    return t;
  }
  throw Error("target: None (the predicted class), a class index or a list of one class index per sample");
}

AnalyzerContext analyzer_context(const ModelHandle& handle, const std::optional<Patterns>& patterns,
                                 const std::vector<std::string>& rules, const std::string& composite,
                                 int64_t batch) {
  if (batch < 1) throw Error("batch: at least 1, got " + std::to_string(batch));
  AnalyzerContext context;
  context.input_range = handle.input_range();
  context.rules = rules;
  context.composite_file = composite;
  if (patterns) context.patterns = patterns->file;
  context.max_batch = batch;
  return context;
}

// model(x): one output as an array, several as a dict by output name, in the model's order.
py::object run_model(const ModelHandle& handle, const py::object& x) {
  const std::shared_ptr<const Model> model = handle.model();
  std::vector<InputArray> arrays;
  if (py::isinstance<py::dict>(x)) {
    const py::dict given = x.cast<py::dict>();
    for (const std::string& name : model->input_names()) {
      if (!given.contains(name)) throw Error("the model's input '" + name + "' is not given");
      arrays.push_back(input_array(given[py::str(name)], name));
    }
    if (given.size() != model->input_names().size())
      throw Error("the model takes " + std::to_string(model->input_names().size()) + " input(s), got " +
                  std::to_string(given.size()));
  } else {
    arrays.push_back(input_array(x, "x"));
  }
  std::vector<Tensor> inputs;
  for (const InputArray& a : arrays) inputs.push_back(a.tensor);
  std::vector<Tensor> outputs;
  {
    py::gil_scoped_release release;
    outputs = model->run(inputs);
  }
  if (outputs.size() == 1) return to_numpy(outputs[0]);
  py::dict named;
  for (size_t i = 0; i < outputs.size(); ++i) named[py::str(model->output_names()[i])] = to_numpy(outputs[i]);
  return named;
}

py::array_t<float> explain(const ModelHandle& handle, const py::object& x, const std::string& method,
                           const py::object& target, const std::optional<Patterns>& patterns,
                           const std::vector<std::string>& rules, const std::string& composite,
                           int64_t batch) {
  const std::shared_ptr<const Model> model = handle.model();
  const InputArray in = model_batch(*model, x);
  const TargetArgument t = target_argument(target, static_cast<size_t>(in.tensor.dim(0)));
  const AnalyzerContext context = analyzer_context(handle, patterns, rules, composite, batch);
  const std::vector<Tensor> samples = in.rows();
  std::vector<Tensor> explanations;
  {
    py::gil_scoped_release release;
    const std::unique_ptr<Analyzer> analyzer = create_analyzer(MethodSpec::parse(method), context);
    analyzer->prepare(*model);
    if (t.per_sample) {
      explanations = explain_targets(*model, *analyzer, samples, *t.per_sample, batch);
    } else {
      for (Explanation& e : explain_samples(*model, samples, {analyzer.get()}, t.selection, batch))
        explanations.push_back(std::move(e.values));
    }
  }
  return stacked(explanations);
}

py::list methods() {
  py::list all;
  for (const MethodInfo& m : available_methods()) {
    py::list parameters;
    for (const MethodParameter& p : m.parameters)
      parameters.append(py::dict(py::arg("name") = p.name, py::arg("default") = p.default_value,
                                 py::arg("description") = p.description));
    all.append(py::dict(py::arg("name") = m.name, py::arg("description") = m.description,
                        py::arg("picture") = m.visualization, py::arg("parameters") = parameters));
  }
  return all;
}

// Statistics of every batch the iterable yields, one pass, then the patterns of `type` estimated from
// their sum: what `sieve fit-patterns` does with the batches of its files.
Patterns fit_patterns(const ModelHandle& handle, const py::iterable& batches, const std::string& type,
                      const std::string& description) {
  const std::shared_ptr<const Model> model = handle.model();
  const PatternType pattern_type = parse_pattern_type(type);
  auto file = std::make_shared<PatternFile>();
  file->fingerprint = model_fingerprint(*model);
  file->type = pattern_type;
  file->data_description = description;
  file->statistics = PatternStatistics(*model);
  for (const py::handle item : batches) {
    const InputArray in = model_batch(*model, item);
    py::gil_scoped_release release;
    file->statistics.accumulate(*model, in.tensor);
  }
  if (file->statistics.images == 0) throw Error("no data for pattern fitting: the batches were empty");
  {
    py::gil_scoped_release release;
    file->patterns = estimate_patterns(*model, file->statistics, pattern_type);
  }
  return Patterns{std::move(file)};
}

py::array_t<double> numbers(const std::vector<double>& values) {
  py::array_t<double> out(static_cast<py::ssize_t>(values.size()));
  std::copy(values.begin(), values.end(), out.mutable_data());
  return out;
}

// One order's curves: [samples, steps + 1], their mean, and the AOPC per sample and on average.
py::dict curves(const DegradationCurves& d) {
  const size_t points = d.mean_curve.size();
  py::array_t<double> all({static_cast<py::ssize_t>(d.curves.size()), static_cast<py::ssize_t>(points)});
  double* to = all.mutable_data();
  for (const std::vector<double>& c : d.curves) to = std::copy_n(c.begin(), points, to);
  return py::dict(py::arg("curves") = all, py::arg("mean_curve") = numbers(d.mean_curve),
                  py::arg("aopc") = numbers(d.aopc), py::arg("aopc_mean") = d.aopc_mean);
}

// Region perturbation of explanations given as method strings (each explained for the tracked targets)
// or as arrays shaped like x, as `sieve evaluate -m` and `--explanations` compute it.
py::dict evaluate(const ModelHandle& handle, const py::object& x, const py::object& explanations,
                  const std::string& metric, const py::object& target,
                  const std::optional<Patterns>& patterns, int64_t batch) {
  const std::shared_ptr<const Model> model = handle.model();
  const MethodSpec spec = MethodSpec::parse(metric);
  if (spec.name != "region_perturbation")
    throw Error("metric '" + spec.name + "': the Python module evaluates region_perturbation");
  RegionPerturbationOptions options = region_perturbation_options(spec);
  options.max_batch = batch;
  if (options.fill == PerturbationFill::uniform) options.input_range = handle.input_range();
  const InputArray in = model_batch(*model, x);
  const std::vector<Tensor> samples = in.rows();
  const TargetArgument t = target_argument(target, samples.size());
  const AnalyzerContext context = analyzer_context(handle, patterns, {}, "", batch);

  // Method strings, or arrays of explanations.
  std::vector<py::object> items;
  if (py::isinstance<py::str>(explanations) || py::isinstance<py::array>(explanations)) {
    items.push_back(explanations);
  } else {
    for (const py::handle item : explanations.cast<py::iterable>())
      items.push_back(py::reinterpret_borrow<py::object>(item));
  }
  if (items.empty()) throw Error("explanations: give method strings or arrays shaped like x");
  std::vector<std::string> names, methods;
  std::vector<InputArray> given;
  for (size_t i = 0; i < items.size(); ++i) {
    if (py::isinstance<py::str>(items[i])) {
      methods.push_back(items[i].cast<std::string>());
      names.push_back(MethodSpec::parse(methods.back()).text());
      continue;
    }
    given.push_back(input_array(items[i], "explanations[" + std::to_string(i) + "]"));
    if (given.back().tensor.shape() != in.tensor.shape())
      throw Error("explanations[" + std::to_string(i) + "]: shape " + to_string(given.back().tensor.shape()) +
                  " differs from x's " + to_string(in.tensor.shape()));
    names.push_back("explanations[" + std::to_string(i) + "]");
  }
  if (!methods.empty() && !given.empty())
    throw Error("explanations: either method strings or arrays, not both");
  if (options.recompute && methods.empty())
    throw Error(
        "metric region_perturbation:recompute=1 explains every step again: give method strings, not arrays");

  RegionPerturbationResult result;
  {
    py::gil_scoped_release release;
    const std::vector<int64_t> targets = t.per_sample ? *t.per_sample
                                         : t.selection.kind == TargetSelection::Kind::indices
                                             ? std::vector<int64_t>(samples.size(), t.selection.indices[0])
                                             : predicted_classes(*model, samples, batch);
    std::vector<std::unique_ptr<Analyzer>> owned;
    std::vector<const Analyzer*> analyzers;
    for (const std::string& m : methods) {
      owned.push_back(create_analyzer(MethodSpec::parse(m), context));
      owned.back()->prepare(*model);
      analyzers.push_back(owned.back().get());
    }
    if (options.recompute) {
      result = region_perturbation(*model, samples, analyzers, options, targets);
    } else {
      std::vector<std::vector<Tensor>> values;
      for (const Analyzer* a : analyzers)
        values.push_back(explain_targets(*model, *a, samples, targets, batch));
      for (const InputArray& g : given) values.push_back(g.rows());
      result = region_perturbation(*model, samples, values, options, targets);
    }
  }
  py::dict per_method;
  for (size_t m = 0; m < result.methods.size(); ++m) {
    py::dict method;
    for (const DegradationCurves& d : result.methods[m].orders)
      method[py::str(to_string(d.order))] = curves(d);
    if (result.methods[m].abpc_mean) {
      method["abpc"] = numbers(result.methods[m].abpc);
      method["abpc_mean"] = *result.methods[m].abpc_mean;
    }
    per_method[py::str(names[m])] = method;
  }
  return py::dict(py::arg("targets") = result.targets, py::arg("tiles") = result.tiles,
                  py::arg("methods") = per_method, py::arg("random") = curves(result.random));
}

// The model's images, .npy or IDX files as one batch, preprocessed as the command line does.
py::array_t<float> load_inputs_for(const ModelHandle& handle, const std::vector<std::string>& paths) {
  const std::shared_ptr<const Model> model = handle.model();
  std::vector<NamedInput> inputs;
  {
    py::gil_scoped_release release;
    inputs = load_inputs(paths, handle.preprocessing(), model->input_shapes().at(0));
  }
  if (inputs.empty()) throw Error("no inputs in " + std::to_string(paths.size()) + " path(s)");
  std::vector<Tensor> samples;
  const py::object warn = py::module_::import("warnings").attr("warn");
  for (const NamedInput& in : inputs) {
    for (const std::string& w : in.warnings) warn(in.name + ": " + w);
    if (in.tensor.shape() != inputs[0].tensor.shape())
      throw Error(in.name + ": shape " + to_string(in.tensor.shape()) + " differs from " + inputs[0].name +
                  "'s " + to_string(inputs[0].tensor.shape()) + "; one batch holds samples of one shape");
    check_input(in.tensor, model->input_shapes().at(0), in.name);
    samples.push_back(in.tensor);
  }
  return stacked(samples);
}

// `text` as a Python string literal, for the call recorded in the report.
std::string quoted(const std::string& text) {
  std::string out = "'";
  for (char c : text) out += c == '\'' || c == '\\' ? std::string("\\") + c : std::string(1, c);
  return out + "'";
}

std::string quoted_list(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& i : items) out += (out.empty() ? "" : ", ") + quoted(i);
  return "[" + out + "]";
}

ReportModel report_model(const ModelHandle& handle, const std::shared_ptr<const Model>& model) {
  return {handle.path(), model.get(), handle.class_names(), handle.input_range()};
}

// What `sieve report` writes, from the same arguments: the inputs read as load_inputs reads them, the
// true labels as a list of classes or the command line's --labels text.
void report(const ModelHandle& handle, const std::vector<std::string>& paths,
            const std::vector<std::string>& methods, const std::string& out,
            const std::vector<std::shared_ptr<ModelHandle>>& compare, const py::object& labels,
            const std::vector<std::string>& evaluate, const std::string& patterns,
            const std::vector<std::string>& quality_data, const std::vector<std::string>& quality_eval,
            int top, const std::string& viz, int64_t batch) {
  check_report_path(out);
  if (batch < 1) throw Error("batch: at least 1, got " + std::to_string(batch));
  if (quality_data.empty() != quality_eval.empty())
    throw Error(
        "quality_data and quality_eval go together: rho(S) fits v on one split, measures on the other");
  const auto start = std::chrono::steady_clock::now();
  const std::shared_ptr<const Model> model = handle.model();
  std::vector<std::shared_ptr<const Model>> others;  // held for the call
  std::vector<ReportModel> models{report_model(handle, model)};
  for (const std::shared_ptr<ModelHandle>& c : compare) {
    others.push_back(c->model());
    models.push_back(report_model(*c, others.back()));
  }
  ReportOptions options;
  options.methods = methods;
  options.metrics = evaluate;
  options.patterns = patterns;
  options.viz = viz;
  options.top = top;
  options.batch = batch;
  options.preprocessing = handle.preprocessing();
  options.command_line = "sieve.report(" + quoted(handle.path()) + ", " + quoted_list(paths) +
                         ", methods=" + quoted_list(methods) + ", out=" + quoted(out) + ")";
  if (!quality_data.empty()) {
    options.quality = QualityRun{};
    options.quality->model_path = handle.path();
    options.quality->fit_data = quality_data;
    options.quality->eval_data = quality_eval;
  }
  std::optional<std::string> label_text;
  std::vector<int64_t> label_list;
  if (py::isinstance<py::str>(labels)) {
    label_text = labels.cast<std::string>();
  } else if (!labels.is_none()) {
    for (const py::handle item : labels.cast<py::iterable>()) {
      if (!is_index(item))
        throw Error("labels: a list of class indices, got an item of type " + type_name(item));
      label_list.push_back(py::int_(py::reinterpret_borrow<py::object>(item)).cast<int64_t>());
    }
    if (label_list.empty()) throw Error("labels: the list is empty");
  }
  py::gil_scoped_release release;
  const std::vector<NamedInput> inputs =
      load_inputs(paths, handle.preprocessing(), model->input_shapes().at(0));
  if (inputs.empty()) throw Error("no inputs in " + std::to_string(paths.size()) + " path(s)");
  for (const NamedInput& in : inputs) check_input(in.tensor, model->input_shapes().at(0), in.name);
  const Shape& output = model->output_shapes().at(0);
  const int64_t classes = output.size() == 2 ? output[1] : -1;
  if (label_text) {
    options.labels = read_labels(*label_text, inputs.size(), classes, handle.class_names());
  } else if (!label_list.empty()) {
    std::string text;
    for (int64_t l : label_list) text += (text.empty() ? "" : ",") + std::to_string(l);
    options.labels = read_labels(text, inputs.size(), classes, handle.class_names());
  }
  options.timings.emplace_back(
      "loading inputs", std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  write_report(out, report_html(models, inputs, options));
}

}  // namespace

PYBIND11_MODULE(sieve, m) {
  m.doc() = "Explanations of neural-network predictions (gradients, LRP, PatternNet, ...) for ONNX models";
  m.attr("__version__") = SIEVE_VERSION;
  // Never destroyed: the interpreter may be gone by the time static objects are.
  static const auto* error = new py::exception<Error>(m, "Error");
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const Error& e) {
      PyErr_SetString(error->ptr(), single_line(e.what()).c_str());
    }
  });

  py::class_<ModelHandle, std::shared_ptr<ModelHandle>>(m, "Model",
                                                        "An ONNX model, loaded, checked and canonicalized")
      .def(py::init<const std::string&>(), py::arg("path"),
           "Loads an ONNX file and the profile next to it (PATH.json), when there is one")
      .def("__call__", &run_model, py::arg("x"),
           "Runs the model: an array for its input (a dict name → array for several inputs); returns "
           "the output as an array, or a dict name → array when the model has several outputs")
      .def("close", &ModelHandle::close, "Releases the model; using it afterwards raises sieve.Error")
      .def("__enter__", [](const std::shared_ptr<ModelHandle>& self) { return self; })
      .def("__exit__", [](ModelHandle& self, const py::args&) { self.close(); })
      .def_property_readonly("closed", &ModelHandle::closed)
      .def_property_readonly("path", &ModelHandle::path)
      .def_property_readonly("class_names", &ModelHandle::class_names)
      .def_property_readonly("input_names", [](const ModelHandle& h) { return h.model()->input_names(); })
      .def_property_readonly("output_names", [](const ModelHandle& h) { return h.model()->output_names(); })
      .def_property_readonly("input_shapes",
                             [](const ModelHandle& h) {
                               py::list shapes;
                               for (const Shape& s : h.model()->input_shapes()) shapes.append(shape_tuple(s));
                               return shapes;
                             })
      .def_property_readonly("output_shapes",
                             [](const ModelHandle& h) {
                               py::list shapes;
                               for (const Shape& s : h.model()->output_shapes())
                                 shapes.append(shape_tuple(s));
                               return shapes;
                             })
      .def("__repr__", [](const ModelHandle& h) {
        return "sieve.Model('" + h.path() + "'" + (h.closed() ? ", closed" : "") + ")";
      });

  py::class_<Patterns>(m, "Patterns", "PatternNet / PatternAttribution patterns fitted for one model")
      .def_static(
          "load",
          [](const std::string& path) {
            py::gil_scoped_release release;
            return Patterns{std::make_shared<const PatternFile>(read_pattern_file(path))};
          },
          py::arg("path"), "Reads a pattern file (as written by sieve fit-patterns or save)")
      .def(
          "save",
          [](const Patterns& p, const std::string& path) {
            py::gil_scoped_release release;
            write_pattern_file(path, *p.file);
          },
          py::arg("path"), "Writes the pattern file the command line reads (--patterns)")
      .def_property_readonly("type", [](const Patterns& p) { return to_string(p.file->type); })
      .def_property_readonly("images", [](const Patterns& p) { return p.file->statistics.images; })
      .def_property_readonly("layers",
                             [](const Patterns& p) {
                               std::vector<std::string> nodes;
                               for (const LayerPatterns& l : p.file->patterns) nodes.push_back(l.node);
                               return nodes;
                             })
      .def_property_readonly("description", [](const Patterns& p) { return p.file->data_description; })
      .def_property_readonly("fingerprint", [](const Patterns& p) { return p.file->fingerprint; });

  m.def("explain", &explain, py::arg("model"), py::arg("x"), py::arg("method"),
        py::arg("target") = py::none(), py::kw_only(), py::arg("patterns") = py::none(),
        py::arg("rules") = std::vector<std::string>{}, py::arg("composite") = "", py::arg("batch") = 32,
        "Explains every sample of the batch x with one method (the command line's -m text); returns an "
        "array shaped like x");
  m.def("methods", &methods, "Every method with its description, default picture and parameters");
  m.def("fit_patterns", &fit_patterns, py::arg("model"), py::arg("batches"), py::arg("type") = "relu",
        py::arg("description") = "", "Fits patterns on every batch of an iterable of arrays, in one pass");
  m.def("evaluate", &evaluate, py::arg("model"), py::arg("x"), py::arg("explanations"),
        py::arg("metric") = "region_perturbation", py::arg("target") = py::none(), py::kw_only(),
        py::arg("patterns") = py::none(), py::arg("batch") = 32,
        "Region perturbation of explanations: method strings or arrays shaped like x");
  m.def("report", &report, py::arg("model"), py::arg("paths"), py::arg("methods"), py::kw_only(),
        py::arg("out"), py::arg("compare") = std::vector<std::shared_ptr<ModelHandle>>{},
        py::arg("labels") = py::none(), py::arg("evaluate") = std::vector<std::string>{},
        py::arg("patterns") = "", py::arg("quality_data") = std::vector<std::string>{},
        py::arg("quality_eval") = std::vector<std::string>{}, py::arg("top") = 5, py::arg("viz") = "",
        py::arg("batch") = 32,
        "Writes the HTML report sieve report writes: the inputs in paths explained with every method");
  m.def("load_inputs", &load_inputs_for, py::arg("model"), py::arg("paths"),
        "Images, .npy or IDX files as one batch, preprocessed as the command line does for the model");
}

}  // namespace sieve::python
