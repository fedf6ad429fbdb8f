#include "patterns/pattern_analyzers.hpp"

#include <map>

#include "sieve/error.hpp"
#include "sieve/patterns.hpp"

namespace sieve::patterns {
namespace {

class PatternAnalyzer : public Analyzer {
 public:
  PatternAnalyzer(bool attribution, std::string path, std::shared_ptr<const PatternFile> patterns)
      : attribution_(attribution),
        path_(std::move(path)),
        patterns_(path_.empty() ? std::move(patterns) : nullptr) {
    if (path_.empty() && patterns_ == nullptr)
      throw Error(std::string(attribution ? "pattern.attribution" : "pattern.net") +
                  " needs patterns: --patterns FILE or patterns=FILE (made by sieve fit-patterns)");
  }

  void prepare(const Model& model) override {
    prepared_ = &model;
    mappings_ = mappings_for(model);
  }

  Tensor explain(const ForwardPass& pass, const Target& target) const override {
    std::map<size_t, BackwardMapping> unprepared;
    const std::map<size_t, BackwardMapping>& mappings =
        prepared_ == &pass.model() ? mappings_ : (unprepared = mappings_for(pass.model()));
    return pass.reverse(target.relevance_seed(pass.output()), [&](size_t n) -> const BackwardMapping* {
      const auto it = mappings.find(n);
      return it == mappings.end() ? nullptr : &it->second;
    });
  }

 private:
  // Per layer node: the gradient's transpose with a₊ (PatternNet) or w ⊙ a₊ (PatternAttribution) as the
  // weights, read from the file and checked against the model.
  std::map<size_t, BackwardMapping> mappings_for(const Model& model) const {
    const std::vector<size_t> layers = pattern_layers(model);
    if (patterns_ != nullptr) check_patterns_fit(*patterns_, model, "the fitted patterns");
    PatternFile read;
    const PatternFile& file =
        patterns_ != nullptr ? *patterns_ : (read = read_pattern_file_for(path_, model));
    std::map<size_t, BackwardMapping> mappings;
    for (size_t l = 0; l < layers.size(); ++l) {
      const Node& node = model.graph().nodes()[layers[l]];
      Tensor w = file.patterns[l].positive;
      if (attribution_) {
        const Tensor& original = model.graph().value(node.inputs[1]).constant;
        w = w.clone();
        for (int64_t i = 0; i < w.size(); ++i) w[i] *= original[i];
      }
      mappings[layers[l]] = [w](const Node& n, const VjpArgs& a) {
        std::vector<Tensor> back(a.inputs.size());
        back[0] = n.op->as_linear()->apply_transpose(a.grad_outputs[0], w, a.input_shapes[0]);
        return back;
      };
    }
    return mappings;
  }

  bool attribution_;
  std::string path_;
  std::shared_ptr<const PatternFile> patterns_;
  const Model* prepared_ = nullptr;
  std::map<size_t, BackwardMapping> mappings_;  // of the prepared model
};

}  // namespace

std::unique_ptr<Analyzer> make_pattern_analyzer(bool attribution, const std::string& patterns_file,
                                                std::shared_ptr<const PatternFile> patterns) {
  return std::make_unique<PatternAnalyzer>(attribution, patterns_file, std::move(patterns));
}

}  // namespace sieve::patterns
