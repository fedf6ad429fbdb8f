#include "rules/linear_rule.hpp"

#include <cmath>

#include "sieve/error.hpp"

namespace sieve::rules {
namespace {

float modified(ParamModifier m, float v, float gamma) {
  switch (m) {
    case ParamModifier::identity:
      return v;
    case ParamModifier::positive:
      return v > 0.0f ? v : 0.0f;
    case ParamModifier::negative:
      return v < 0.0f ? v : 0.0f;
    case ParamModifier::square:
      return v * v;
    case ParamModifier::ones:
      return 1.0f;
    case ParamModifier::zero:
      return 0.0f;
    case ParamModifier::gamma_positive:
      return v + gamma * (v > 0.0f ? v : 0.0f);
    case ParamModifier::gamma_negative:
      return v + gamma * (v < 0.0f ? v : 0.0f);
  }
  return v;
}

Tensor modify(const Tensor& t, ParamModifier m, float gamma) {
  if (t.empty() || m == ParamModifier::identity) return t;
  if (m == ParamModifier::zero) return Tensor();  // no bias at all
  Tensor out = Tensor::uninitialized(t.shape());
  const int64_t n = t.size();
#pragma omp parallel for simd if (n > 65536)
  for (int64_t i = 0; i < n; ++i) out[i] = modified(m, t[i], gamma);
  return out;
}

// The branch's substitute input, or an empty tensor when it is all zero (the branch contributes nothing).
Tensor branch_input(InputModifier m, const LinearRuleInputs& in) {
  const Tensor& a = in.input;
  if (m == InputModifier::identity) return a;
  if (m == InputModifier::low) return in.low;
  if (m == InputModifier::high) return in.high;
  if (m == InputModifier::ones) return Tensor(a.shape(), 1.0f);
  Tensor out = Tensor::uninitialized(a.shape());
  const bool positive = m == InputModifier::positive;
  const int64_t n = a.size();
  bool any = false;
#pragma omp parallel for simd reduction(|| : any) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) {
    const float v = positive ? (a[i] > 0.0f ? a[i] : 0.0f) : (a[i] < 0.0f ? a[i] : 0.0f);
    out[i] = v;
    any = any || v != 0.0f;
  }
  return any ? out : Tensor();
}

void add_scaled(Tensor& into, const Tensor& add, float scale) {
  float* p = into.data();
  const float* q = add.data();
  const int64_t n = into.size();
#pragma omp parallel for simd if (n > 65536)
  for (int64_t i = 0; i < n; ++i) p[i] += scale * q[i];
}

Tensor sum_biases(const std::vector<const Tensor*>& biases, const std::vector<float>& signs) {
  Tensor total;
  for (size_t i = 0; i < biases.size(); ++i) {
    if (biases[i]->empty()) continue;
    if (total.empty()) {
      total = Tensor(biases[i]->shape());
    }
    add_scaled(total, *biases[i], signs[i]);
  }
  return total;
}

// Per sample: ε, or ε × the standard deviation of the sample's z.
std::vector<float> epsilons(const LinearRule& rule, const Tensor& z) {
  const int64_t n = z.rank() > 0 ? z.dim(0) : 1;
  std::vector<float> eps(static_cast<size_t>(n), rule.epsilon);
  if (!rule.epsilon_std) return eps;
  const int64_t per = n == 0 ? 0 : z.size() / n;
  for (int64_t i = 0; i < n; ++i) {
    double sum = 0.0, sq = 0.0;
    for (int64_t j = 0; j < per; ++j) {
      const double v = z[i * per + j];
      sum += v;
      sq += v * v;
    }
    const double mean = per ? sum / static_cast<double>(per) : 0.0;
    const double var = per ? std::max(0.0, sq / static_cast<double>(per) - mean * mean) : 0.0;
    eps[static_cast<size_t>(i)] = static_cast<float>(rule.epsilon * std::sqrt(var));
  }
  return eps;
}

}  // namespace

ModifiedParameters modify_parameters(const LinearRule& rule, const Tensor& weight, const Tensor& bias) {
  ModifiedParameters m;
  for (const RuleBranch& b : rule.branches) {
    m.weights.push_back(modify(weight, b.weight, rule.gamma));
    m.biases.push_back(modify(bias, b.bias, rule.gamma));
  }
  return m;
}

Tensor bounds_like(const Shape& like, const std::vector<float>& bound, const std::string& where) {
  Tensor t = Tensor::uninitialized(like);
  if (bound.size() == 1) {
    std::fill(t.data(), t.data() + t.size(), bound[0]);
    return t;
  }
  const int64_t channels = static_cast<int64_t>(bound.size());
  const int64_t n = like.empty() ? 1 : like[0], per = n == 0 ? 0 : t.size() / n;
  if (bound.empty() || per % channels != 0)
    throw Error(where + ": " + std::to_string(bound.size()) + " z^B bounds do not fit an input of shape " +
                to_string(like));
  const int64_t inner = per / channels;
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t c = 0; c < channels; ++c)
      std::fill_n(t.data() + i * per + c * inner, inner, bound[static_cast<size_t>(c)]);
  }
  return t;
}

namespace {

// z_g = Σ_b σ_b · forward(in_b, W_b, b_b) over the branches of group g; the group's biases, summed,
// enter once with the first branch that runs. A group that is the unmodified layer reuses the forward
// pass's own output.
Tensor group_z(const LinearRule& rule, const ModifiedParameters& params, const LinearRuleInputs& in,
               const std::vector<Tensor>& inputs, size_t g) {
  std::vector<size_t> members;
  std::vector<const Tensor*> biases;
  std::vector<float> signs;
  for (size_t b = 0; b < rule.branches.size(); ++b) {
    if (rule.branches[b].group != static_cast<int>(g)) continue;
    members.push_back(b);
    biases.push_back(&params.biases[b]);
    signs.push_back(rule.branches[b].sign);
  }
  const RuleBranch& only = rule.branches[members.front()];
  const bool is_true_z = members.size() == 1 && only.input == InputModifier::identity &&
                         only.weight == ParamModifier::identity && only.bias == ParamModifier::identity;
  if (is_true_z && !in.output.empty()) return in.output;
  Tensor z;
  Tensor bias = sum_biases(biases, signs);
  for (size_t b : members) {
    const bool last = b == members.back();
    if (inputs[b].empty() && !(last && z.empty())) continue;
    const Tensor x = inputs[b].empty() ? Tensor(in.input.shape()) : inputs[b];
    const float sign = rule.branches[b].sign;
    Tensor own_bias = bias;
    if (!bias.empty() && sign != 1.0f) {
      own_bias = bias.clone();
      for (float& v : own_bias.values()) v *= sign;
    }
    const Tensor y = in.op.apply(x, params.weights[b], own_bias);
    bias = Tensor();
    if (z.empty()) {
      z = sign == 1.0f ? y : Tensor(y.shape());
      if (sign != 1.0f) add_scaled(z, y, sign);
    } else {
      add_scaled(z, y, sign);
    }
  }
  return z;
}

// s_g = R ⊙ mask_g / stabilize(z_g), the mask keeping the neurons whose true z has the group's sign.
Tensor stabilized_share(const LinearRule& rule, size_t g, const Tensor& z, const Tensor& true_z,
                        const Tensor& relevance) {
  if (z.shape() != relevance.shape())
    throw Error("relevance of shape " + to_string(relevance.shape()) + " at an output of shape " +
                to_string(z.shape()));
  const std::vector<float> eps = epsilons(rule, z);
  const GroupMask mask = rule.groups[g].mask;
  Tensor s = Tensor::uninitialized(z.shape());
  const int64_t n = z.rank() > 0 ? z.dim(0) : 1, per = n == 0 ? 0 : z.size() / n;
#pragma omp parallel for if (z.size() > 65536)
  for (int64_t i = 0; i < n; ++i) {
    const float e = eps[static_cast<size_t>(i)];
    for (int64_t j = i * per; j < (i + 1) * per; ++j) {
      const bool open =
          mask == GroupMask::none || (mask == GroupMask::positive_z ? true_z[j] > 0.0f : true_z[j] < 0.0f);
      const float zj = z[j];
      s[j] = open ? relevance[j] / (zj + (zj >= 0.0f ? e : -e)) : 0.0f;
    }
  }
  return s;
}

}  // namespace

Tensor apply_linear_rule(const LinearRule& rule, const ModifiedParameters& params,
                         const LinearRuleInputs& in) {
  const size_t branches = rule.branches.size();
  std::vector<Tensor> inputs(branches);
  for (size_t b = 0; b < branches; ++b) inputs[b] = branch_input(rule.branches[b].input, in);

  bool needs_true_z = rule.epsilon_std;
  for (const RuleGroup& g : rule.groups) needs_true_z = needs_true_z || g.mask != GroupMask::none;
  Tensor true_z = in.output;
  if (true_z.empty() && needs_true_z) true_z = in.op.apply(in.input, in.weight, in.bias);

  std::vector<Tensor> scaled(rule.groups.size());
  for (size_t g = 0; g < rule.groups.size(); ++g)
    scaled[g] = stabilized_share(rule, g, group_z(rule, params, in, inputs, g), true_z, in.relevance);

  // R_in = Σ_b λ_g σ_b · in_b ⊙ backward_data(s_g, W_b).
  Tensor result(in.input.shape());
  for (size_t b = 0; b < branches; ++b) {
    if (inputs[b].empty()) continue;
    const RuleBranch& branch = rule.branches[b];
    const Tensor c =
        in.op.apply_transpose(scaled[static_cast<size_t>(branch.group)], params.weights[b], in.input.shape());
    const float factor = rule.groups[static_cast<size_t>(branch.group)].weight * branch.sign;
    const Tensor& x = inputs[b];
    float* r = result.data();
    const int64_t n = result.size();
    // An element whose branch input is zero contributes nothing to any output, so its share is zero
    // even where c overflowed: a neuron whose contributions are all zero has z = 0 and gets R / ε.
#pragma omp parallel for simd if (n > 65536)
    for (int64_t i = 0; i < n; ++i) r[i] += x[i] == 0.0f ? 0.0f : factor * x[i] * c[i];
  }
  return result;
}

}  // namespace sieve::rules
