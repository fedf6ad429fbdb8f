// DeepLIFT with the Rescale rule (METHODS.md §1.12; Shrikumar et al. 2017), in its gradient form: the
// reverse pass of the gradient with every element-wise activation's derivative replaced by the
// multiplier Δout/Δin against a forward pass on the baseline, and the result multiplied by (x − x̄).
// Max pooling routes the gradient to the arg-max, which is what Captum's DeepLift computes on the
// shared references (docs/methods.md).

#include "analyzers/deeplift.hpp"

#include <cmath>

#include "analyzers/baseline.hpp"
#include "sieve/error.hpp"

namespace sieve::analyzers {
namespace {

// Below this |Δin| the multiplier is the gradient (Captum's eps).
constexpr float kSameAsReference = 1e-10f;

class DeepLift : public Analyzer {
 public:
  explicit DeepLift(Params& p) : baseline_(p.text("baseline", "0"), "deeplift") {}

  std::vector<ValueId> trace_values(const Model& model) const override { return activation_values(model); }

  Tensor explain(const ForwardPass& pass, const Target& target) const override {
    const Tensor& x = pass.input();
    const Tensor reference_input = baseline_.for_batch(x);
    std::vector<int64_t> rows;
    for (int64_t r = 0; r < x.dim(0); ++r) rows.push_back(r);
    const ForwardPass reference = pass.at(reference_input, rows, activation_values(pass.model()));
    const Graph& graph = pass.model().graph();

    const BackwardMapping rescale = [&](const Node& node, const VjpArgs& a) -> std::vector<Tensor> {
      const Tensor& in_ref = reference.value(node.inputs[0]);
      const Tensor& out_ref = reference.value(node.outputs[0]);
      const Tensor gradient = node.op->vjp(a).at(0);
      const Tensor& g = a.grad_outputs[0];
      Tensor m = Tensor::uninitialized(g.shape());
      for (int64_t i = 0; i < m.size(); ++i) {
        const float delta_in = a.inputs[0][i] - in_ref[i];
        m[i] = std::abs(delta_in) < kSameAsReference ? gradient[i]
                                                     : g[i] * (a.outputs[0][i] - out_ref[i]) / delta_in;
      }
      return {m};
    };
    const BackwardMapping refuse = [](const Node& node, const VjpArgs&) -> std::vector<Tensor> {
      throw Error("deeplift: node '" + node.name + "' (" + std::string(node.op->type()) +
                  ") is neither linear, an element-wise activation nor max pooling, where the Rescale "
                  "rule is defined");
    };
    const Tensor multipliers =
        pass.reverse(target.gradient_seed(pass.output()), [&](size_t index) -> const BackwardMapping* {
          switch (graph.role(graph.nodes()[index])) {
            case OpRole::monotone_activation:
              return &rescale;
            case OpRole::product:
            case OpRole::softmax:
            case OpRole::recurrent:  // gated products inside the cell
              return &refuse;
            default:
              return nullptr;
          }
        });
    Tensor r = Tensor::uninitialized(x.shape());
    for (int64_t i = 0; i < x.size(); ++i) r[i] = (x[i] - reference_input[i]) * multipliers[i];
    return r;
  }

 private:
  // The inputs and outputs of every element-wise activation, in both passes.
  static std::vector<ValueId> activation_values(const Model& model) {
    std::vector<ValueId> keep;
    const Graph& graph = model.graph();
    for (const Node& node : graph.nodes()) {
      if (graph.role(node) != OpRole::monotone_activation) continue;
      keep.push_back(node.inputs.at(0));
      keep.push_back(node.outputs.at(0));
    }
    return keep;
  }

  Baseline baseline_;
};

}  // namespace

std::unique_ptr<Analyzer> make_deeplift(Params& p) {
  return std::make_unique<DeepLift>(p);
}

}  // namespace sieve::analyzers
