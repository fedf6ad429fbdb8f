// The LRP rules as branch lists (conventions: DESIGN.md table, METHODS.md §1; they match Zennit's).

#include <cmath>
#include <sstream>

#include "sieve/error.hpp"
#include "sieve/lrp.hpp"
#include "sieve/params.hpp"
#include "sieve/parse.hpp"

namespace sieve {
namespace {

using In = InputModifier;
using P = ParamModifier;

// "a;b;c" → {a, b, c}: per-channel bounds (',' already separates parameters).
std::vector<float> read_floats(Params& p, const std::string& key) {
  const std::string text = p.text(key, "");
  std::vector<float> values;
  std::stringstream s(text);
  std::string item;
  while (std::getline(s, item, ';')) {
    const std::optional<double> v = parse_double(item);
    if (!v || !std::isfinite(static_cast<float>(*v)))
      throw Error("rule parameter " + key + "=" + text + ": expected a number or numbers separated by ';'");
    values.push_back(static_cast<float>(*v));
  }
  return values;
}

}  // namespace

bool LinearRule::uses_bounds() const {
  for (const RuleBranch& b : branches) {
    if (b.input == In::low || b.input == In::high) return true;
  }
  return false;
}

std::vector<std::string> rule_names() {
  return {"z", "epsilon", "gamma", "alpha_beta", "z_plus", "z_box", "w_square", "flat", "pass", "gradient"};
}

LinearRule parse_rule(const std::string& text) {
  const MethodSpec spec = MethodSpec::parse(text);
  Params p(spec, "rule");
  LinearRule r;
  r.text = text;
  const std::string& name = spec.name;
  const bool ignore_bias = p.integer("ignore_bias", 0, 0, 1) != 0;
  const P bias_plus = ignore_bias ? P::zero : P::positive;
  const P bias_minus = ignore_bias ? P::zero : P::negative;
  const P bias_same = ignore_bias ? P::zero : P::identity;
  if (name == "z" || name == "epsilon") {
    if (name == "epsilon") {
      r.epsilon = static_cast<float>(p.number("epsilon", 0.25, 0.0, 1e30));
      r.epsilon_std = p.choice("epsilon_mode", "absolute", {"absolute", "std"}) == "std";
    }
    r.branches = {{In::identity, P::identity, bias_same, 0, 1.0f}};
    r.groups = {{}};
  } else if (name == "gamma") {
    r.gamma = static_cast<float>(p.number("gamma", 0.25, 0.0, 1e30));
    // Generalized γ: the positive branch for neurons whose true z > 0, the negative one for z < 0.
    const P bias_gp = ignore_bias ? P::zero : P::gamma_positive;
    const P bias_gn = ignore_bias ? P::zero : P::gamma_negative;
    r.branches = {{In::positive, P::gamma_positive, bias_gp, 0, 1.0f},
                  {In::negative, P::gamma_negative, P::zero, 0, 1.0f},
                  {In::positive, P::gamma_negative, bias_gn, 1, 1.0f},
                  {In::negative, P::gamma_positive, P::zero, 1, 1.0f}};
    r.groups = {{1.0f, GroupMask::positive_z}, {1.0f, GroupMask::negative_z}};
  } else if (name == "alpha_beta" || name == "z_plus") {
    const double alpha = name == "z_plus" ? 1.0 : p.number("alpha", 2.0, 0.0, 1e30);
    const double beta = name == "z_plus" ? 0.0 : p.number("beta", 1.0, 0.0, 1e30);
    if (std::abs(alpha - beta - 1.0) > 1e-9)
      throw Error("rule '" + text + "': alpha − beta must be 1 (got alpha=" + std::to_string(alpha) +
                  ", beta=" + std::to_string(beta) + ")");
    r.branches = {{In::positive, P::positive, bias_plus, 0, 1.0f},
                  {In::negative, P::negative, P::zero, 0, 1.0f}};
    r.groups = {{static_cast<float>(alpha), GroupMask::none}};
    if (beta != 0.0) {
      r.branches.push_back({In::positive, P::negative, bias_minus, 1, 1.0f});
      r.branches.push_back({In::negative, P::positive, P::zero, 1, 1.0f});
      r.groups.push_back({static_cast<float>(-beta), GroupMask::none});
    }
  } else if (name == "z_box") {
    r.low = read_floats(p, "low");
    r.high = read_floats(p, "high");
    if (r.low.size() != r.high.size())
      throw Error("rule '" + text + "': low and high need the same number of values");
    // x·W − l·W⁺ − h·W⁻; the biases b − b⁺ − b⁻ cancel.
    r.branches = {{In::identity, P::identity, bias_same, 0, 1.0f},
                  {In::low, P::positive, bias_plus, 0, -1.0f},
                  {In::high, P::negative, bias_minus, 0, -1.0f}};
    r.groups = {{}};
  } else if (name == "w_square") {
    r.branches = {{In::ones, P::square, ignore_bias ? P::zero : P::square, 0, 1.0f}};
    r.groups = {{}};
  } else if (name == "flat") {
    r.branches = {{In::ones, P::ones, P::zero, 0, 1.0f}};
    r.groups = {{}};
  } else if (name == "pass") {
    r.pass = true;
  } else if (name == "gradient") {
    r.gradient = true;
  } else {
    std::string list;
    for (const std::string& n : rule_names()) list += (list.empty() ? "" : ", ") + n;
    throw Error("unknown rule '" + name + "' (rules: " + list + ")");
  }
  p.finish();
  return r;
}

}  // namespace sieve
