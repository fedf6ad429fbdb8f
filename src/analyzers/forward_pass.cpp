#include <algorithm>
#include <sstream>

#include "sieve/analyzer.hpp"
#include "sieve/error.hpp"

namespace sieve {

MethodSpec MethodSpec::parse(const std::string& text) {
  MethodSpec spec;
  const size_t colon = text.find(':');
  spec.name = text.substr(0, colon);
  if (spec.name.empty()) throw Error("method '" + text + "': empty method name");
  if (colon == std::string::npos) return spec;
  std::stringstream rest(text.substr(colon + 1));
  std::string item;
  while (std::getline(rest, item, ',')) {
    const size_t eq = item.find('=');
    if (eq == std::string::npos || eq == 0)
      throw Error("method '" + text + "': parameter '" + item + "' is not key=value");
    spec.params[item.substr(0, eq)] = item.substr(eq + 1);
  }
  return spec;
}

std::string MethodSpec::text() const {
  std::string s = name;
  char sep = ':';
  for (const auto& [k, v] : params) {
    s += sep + k + "=" + v;
    sep = ',';
  }
  return s;
}

ForwardPass::ForwardPass(const Model& model, const Tensor& input, const std::vector<ValueId>& also_keep)
    : model_(&model),
      input_(input),
      plan_(model.graph(), model.graph().outputs.at(0), model.graph().inputs.at(0)) {
  if (model.input_shapes().size() != 1) throw Error("explanations need a model with exactly one input");
  check_input(input, model.input_shapes()[0], model.input_names()[0]);
  output_ = Executor(model.graph()).run({input}, &trace_, plan_.trace_keep(also_keep)).at(0);
}

Tensor ForwardPass::reverse(const Tensor& seed,
                            const std::function<const BackwardMapping*(size_t)>& mapping_for) const {
  return reverse_pass(model_->graph(), plan_, trace_, seed, mapping_for);
}

Tensor target_seed(const Shape& output_shape, const std::vector<int64_t>& targets,
                   const std::vector<float>& values) {
  if (output_shape.size() != 2) {
    throw Error("the explained output must be [batch, classes], got " + to_string(output_shape));
  }
  if (static_cast<int64_t>(targets.size()) != output_shape[0]) throw Error("one target per sample is needed");
  Tensor seed(output_shape);
  for (size_t i = 0; i < targets.size(); ++i) {
    if (targets[i] < 0 || targets[i] >= output_shape[1]) {
      throw Error("target index " + std::to_string(targets[i]) + " out of range: the model has " +
                  std::to_string(output_shape[1]) + " outputs");
    }
    seed[static_cast<int64_t>(i) * output_shape[1] + targets[i]] = values[i];
  }
  return seed;
}

Tensor logit_seed(const ForwardPass& pass, const std::vector<int64_t>& targets) {
  const Tensor& out = pass.output();
  std::vector<float> logits(targets.size(), 0.0f);
  for (size_t i = 0; i < targets.size(); ++i) {
    if (out.rank() == 2 && targets[i] >= 0 && targets[i] < out.dim(1))
      logits[i] = out[static_cast<int64_t>(i) * out.dim(1) + targets[i]];
  }
  return target_seed(out.shape(), targets, logits);
}

TargetSelection TargetSelection::parse(const std::string& text) {
  TargetSelection t;
  if (text == "max") return t;
  if (text == "all") {
    t.kind = Kind::all;
    return t;
  }
  t.kind = Kind::indices;
  std::stringstream s(text);
  std::string item;
  while (std::getline(s, item, ',')) {
    size_t used = 0;
    int64_t v = 0;
    try {
      v = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != item.size() || item.empty() || v < 0)
      throw Error("target '" + text + "': expected max, all, or class indices like 3 or 1,4");
    t.indices.push_back(v);
  }
  return t;
}

std::vector<std::vector<int64_t>> TargetSelection::resolve(const Tensor& logits) const {
  if (logits.rank() != 2)
    throw Error("the explained output must be [batch, classes], got " + to_string(logits.shape()));
  const int64_t n = logits.dim(0), classes = logits.dim(1);
  std::vector<std::vector<int64_t>> passes;
  if (kind == Kind::max) {
    std::vector<int64_t> best(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
      const float* row = logits.data() + i * classes;
      best[static_cast<size_t>(i)] = std::max_element(row, row + classes) - row;
    }
    passes.push_back(best);
    return passes;
  }
  std::vector<int64_t> classes_wanted = indices;
  if (kind == Kind::all) {
    for (int64_t c = 0; c < classes; ++c) classes_wanted.push_back(c);
  }
  for (int64_t c : classes_wanted) {
    if (c >= classes) {
      throw Error("target index " + std::to_string(c) + " out of range: the model has " +
                  std::to_string(classes) + " outputs");
    }
    passes.emplace_back(static_cast<size_t>(n), c);
  }
  return passes;
}

}  // namespace sieve
