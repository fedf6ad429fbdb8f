// The perturbation family: occlusion (Zeiler & Fergus; METHODS.md §2 "Occlusion"), ablation of
// user-given feature groups, LIME on such groups, and RISE (Petsiuk et al., random upsampled masks). Each
// runs the model on altered copies of every sample; all copies of a batch go through the batch runner
// together.

#include "analyzers/perturbation.hpp"

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <random>
#include <sstream>

#include "analyzers/baseline.hpp"
#include "sieve/batch.hpp"
#include "sieve/blur.hpp"
#include "sieve/error.hpp"
#include "sieve/io/npy.hpp"
#include "sieve/io/superpixels.hpp"
#include "sieve/parse.hpp"

namespace sieve::analyzers {
namespace {

Shape sample_shape(const Tensor& x) {
  return Shape(x.shape().begin() + 1, x.shape().end());
}

int64_t per_sample(const Tensor& x) {
  return x.size() / std::max<int64_t>(x.dim(0), 1);
}

// The axes of a sample that windows and masks move over: every axis of a 1-D sample; the token axes of
// embedding vectors (not the embedding axis); otherwise all but the first, the channels, which a
// window covers whole.
std::vector<bool> spatial_axes(const Shape& sample, bool embedding) {
  std::vector<bool> spatial(sample.size(), true);
  if (sample.size() >= 2) {
    if (embedding) {
      spatial.back() = false;
    } else {
      spatial.front() = false;
    }
  }
  return spatial;
}

std::string joined_extent(const std::vector<int64_t>& v) {
  std::string s;
  for (int64_t d : v) s += (s.empty() ? "" : "x") + std::to_string(d);
  return s;
}

// The target's score (Σ weights ⊙ output) of every row of `output`.
std::vector<double> target_scores(const Tensor& output, const Target& target) {
  const Tensor w = target.gradient_seed(output);
  const int64_t rows = output.dim(0), per = output.size() / std::max<int64_t>(rows, 1);
  std::vector<double> scores(static_cast<size_t>(rows), 0.0);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t j = 0; j < per; ++j)
      scores[static_cast<size_t>(r)] += static_cast<double>(w[r * per + j]) * output[r * per + j];
  }
  return scores;
}

// The target's score on `total` altered copies: copy r belongs to row sample_of(r) of `pass` and is
// written by make(r, destination). Copies run `max_batch` rows at a time, forward only.
std::vector<double> perturbed_scores(const ForwardPass& pass, const Target& target, int64_t total,
                                     int64_t max_batch, const std::function<int64_t(int64_t)>& sample_of,
                                     const RowSource& make) {
  Shape row_shape = pass.input().shape();
  row_shape[0] = 1;
  std::vector<double> scores(static_cast<size_t>(total));
  run_in_batches(pass.model(), total, row_shape, std::min(max_batch, std::max<int64_t>(total, 1)), make,
                 [&](const Tensor& batch, int64_t begin, int64_t count) {
                   std::vector<int64_t> samples;
                   for (int64_t r = 0; r < batch.dim(0); ++r)
                     samples.push_back(sample_of(begin + std::min(r, count - 1)));
                   const Tensor out = pass.output_at(batch, samples);
                   const std::vector<double> s = target_scores(out, target.rows(samples));
                   for (int64_t r = 0; r < count; ++r) scores[static_cast<size_t>(begin + r)] = s[r];
                 });
  return scores;
}

// Altered copies per forward pass: the method's `batch`, or when it is not given (or empty, as the
// manifest lists it) the run's batch size.
int64_t read_batch(Params& p, int64_t run_batch) {
  return p.text("batch", "").empty() ? run_batch : p.integer("batch", run_batch, 1, 1 << 20);
}

// What replaces the altered elements.
struct Fill {
  enum class Kind { zero, baseline, mean, blur } kind = Kind::zero;
  Baseline baseline;
  double sigma = 0.0;  // blur, in elements

  Fill(Params& p, const std::string& method) : baseline(p.text("baseline", "0"), method) {
    const std::string kind_name = p.choice("fill", "zero", {"zero", "baseline", "mean", "blur"});
    sigma = p.number("sigma", 4.0, 1e-3, 1e4);
    kind = kind_name == "baseline" ? Kind::baseline
           : kind_name == "mean"   ? Kind::mean
           : kind_name == "blur"   ? Kind::blur
                                   : Kind::zero;
  }

  // The fill values for every element of `x` ([N, ...]).
  Tensor values(const Tensor& x, const std::vector<bool>& spatial) const {
    switch (kind) {
      case Kind::zero:
        return Tensor(x.shape(), 0.0f);
      case Kind::baseline:
        return baseline.for_batch(x);
      case Kind::mean:
        return spatial_mean(x, spatial);
      case Kind::blur:
        return blurred(x, spatial);
    }
    return {};
  }

 private:
  // Each sample's mean over the spatial axes, per position of the other axes (per channel of an image).
  static Tensor spatial_mean(const Tensor& x, const std::vector<bool>& spatial) {
    const Shape sample = sample_shape(x);
    const std::vector<int64_t> strides = strides_of(sample);
    const int64_t per = per_sample(x);
    std::vector<int64_t> key(static_cast<size_t>(per), 0);  // flat index over the non-spatial axes
    int64_t keys = 1;
    for (int64_t e = 0; e < per; ++e) {
      int64_t k = 0;
      for (size_t a = 0; a < sample.size(); ++a) {
        if (!spatial[a]) k = k * sample[a] + (e / strides[a]) % sample[a];
      }
      key[static_cast<size_t>(e)] = k;
    }
    for (size_t a = 0; a < sample.size(); ++a) {
      if (!spatial[a]) keys *= sample[a];
    }
    Tensor m = Tensor::uninitialized(x.shape());
    for (int64_t i = 0; i < x.dim(0); ++i) {
      std::vector<double> sum(static_cast<size_t>(keys), 0.0);
      for (int64_t e = 0; e < per; ++e)
        sum[static_cast<size_t>(key[static_cast<size_t>(e)])] += x[i * per + e];
      const double count = static_cast<double>(per / keys);
      for (int64_t e = 0; e < per; ++e)
        m[i * per + e] = static_cast<float>(sum[static_cast<size_t>(key[static_cast<size_t>(e)])] / count);
    }
    return m;
  }

  // A Gaussian blur (σ = sigma elements) along every spatial axis of each sample, edge values repeated.
  Tensor blurred(const Tensor& x, const std::vector<bool>& spatial) const {
    std::vector<double> values(x.values().begin(), x.values().end());
    std::vector<bool> axes{false};  // not across the batch
    axes.insert(axes.end(), spatial.begin(), spatial.end());
    gaussian_blur(values, x.shape(), axes, sigma, BlurEdges::repeat);
    Tensor out = Tensor::uninitialized(x.shape());
    for (int64_t i = 0; i < out.size(); ++i) out[i] = static_cast<float>(values[static_cast<size_t>(i)]);
    return out;
  }
};

// Groups of elements of one sample (flat indices), each altered together in one copy.
using Groups = std::vector<std::vector<int64_t>>;

// Element e of sample i gets the mean of f(x) − f(x with group g filled) over the groups g of
// groups_of(i) containing e (0 where none does). For embedding vectors the change is shared evenly over
// the embedding axis, so a token's reported (summed) value is the change itself.
Tensor attribute_groups(const ForwardPass& pass, const Target& target,
                        const std::function<const Groups&(int64_t)>& groups_of, const Tensor& fill,
                        int64_t max_batch) {
  const Tensor& x = pass.input();
  const int64_t n = x.dim(0), per = per_sample(x);
  std::vector<int64_t> offsets{0};
  for (int64_t i = 0; i < n; ++i)
    offsets.push_back(offsets.back() + static_cast<int64_t>(groups_of(i).size()));
  const auto sample_of = [&](int64_t r) {
    return static_cast<int64_t>(std::upper_bound(offsets.begin(), offsets.end(), r) - offsets.begin()) - 1;
  };
  const RowSource make = [&](int64_t r, float* row) {
    const int64_t i = sample_of(r);
    std::memcpy(row, x.data() + i * per, static_cast<size_t>(per) * sizeof(float));
    for (int64_t e : groups_of(i)[static_cast<size_t>(r - offsets[static_cast<size_t>(i)])])
      row[e] = fill[i * per + e];
  };
  const std::vector<double> scores =
      perturbed_scores(pass, target, offsets.back(), max_batch, sample_of, make);
  const std::vector<double> base = target_scores(pass.output(), target);
  const double share = pass.explains_embedding() ? static_cast<double>(x.shape().back()) : 1.0;
  Tensor result = Tensor::uninitialized(x.shape());
  for (int64_t i = 0; i < n; ++i) {
    std::vector<double> sum(static_cast<size_t>(per), 0.0);
    std::vector<int64_t> count(static_cast<size_t>(per), 0);
    const Groups& groups = groups_of(i);
    for (size_t g = 0; g < groups.size(); ++g) {
      const double change = base[static_cast<size_t>(i)] - scores[static_cast<size_t>(offsets[i]) + g];
      for (int64_t e : groups[g]) {
        sum[static_cast<size_t>(e)] += change;
        ++count[static_cast<size_t>(e)];
      }
    }
    for (int64_t e = 0; e < per; ++e) {
      const int64_t c = count[static_cast<size_t>(e)];
      result[i * per + e] = c == 0 ? 0.0f : static_cast<float>(sum[static_cast<size_t>(e)] / c / share);
    }
  }
  return result;
}

// "6" or "1x6x6": positive integers.
std::vector<int64_t> parse_extent(const std::string& text, const std::string& key) {
  std::vector<int64_t> v;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, 'x')) {
    const std::optional<int64_t> d = parse_integer(item);
    if (!d || *d < 1)
      throw Error("method 'occlusion': parameter " + key + "=" + text +
                  " must be a positive integer or one per axis, such as 1x6x6");
    v.push_back(*d);
  }
  if (v.empty()) throw Error("method 'occlusion': parameter " + key + " is empty");
  return v;
}

class Occlusion : public Analyzer {
 public:
  Occlusion(Params& p, int64_t max_batch) : fill_(p, "occlusion") {
    window_ = parse_extent(p.text("window", "8"), "window");
    const std::string stride = p.text("stride", "");
    if (!stride.empty()) stride_ = parse_extent(stride, "stride");
    max_batch_ = read_batch(p, max_batch);
  }

  Tensor explain(const ForwardPass& pass, const Target& target) const override {
    const Tensor& x = pass.input();
    const Shape sample = sample_shape(x);
    const std::vector<bool> spatial = spatial_axes(sample, pass.explains_embedding());
    // A square window spans the spatial axes and covers the others whole; a stride given as one
    // number moves over the spatial axes and steps the others by their window.
    const std::vector<int64_t> window = per_axis(window_, sample, spatial, sample, "window");
    const std::vector<int64_t> stride =
        stride_.empty() ? window : per_axis(stride_, sample, spatial, window, "stride");
    for (size_t a = 0; a < sample.size(); ++a) {
      if (window[a] > sample[a]) {
        throw Error("occlusion: window " + joined_extent(window) + " is larger than the input's samples " +
                    to_string(sample) + " on axis " + std::to_string(a + 1) + " (" +
                    std::to_string(window[a]) + " > " + std::to_string(sample[a]) + ")");
      }
    }
    const Groups windows = window_groups(sample, window, stride);
    return attribute_groups(
        pass, target, [&](int64_t) -> const Groups& { return windows; }, fill_.values(x, spatial),
        max_batch_);
  }

 private:
  // `given` for every axis of the sample: as given when it has one entry per axis, else its one value on
  // the spatial axes and `others` elsewhere.
  static std::vector<int64_t> per_axis(const std::vector<int64_t>& given, const Shape& sample,
                                       const std::vector<bool>& spatial, const std::vector<int64_t>& others,
                                       const std::string& key) {
    if (given.size() == sample.size()) return given;
    if (given.size() != 1) {
      throw Error("occlusion: " + key + "=" + joined_extent(given) + " has " + std::to_string(given.size()) +
                  " entries but the input's samples " + to_string(sample) + " have " +
                  std::to_string(sample.size()) + " axes (give one number, or one per axis)");
    }
    std::vector<int64_t> v(sample.size());
    for (size_t a = 0; a < sample.size(); ++a) v[a] = spatial[a] ? given[0] : others[a];
    return v;
  }

  // Every window position: starts 0, s, 2s, … while the window fits (as Captum's Occlusion).
  static Groups window_groups(const Shape& sample, const std::vector<int64_t>& window,
                              const std::vector<int64_t>& stride) {
    const size_t rank = sample.size();
    const std::vector<int64_t> strides = strides_of(sample);
    std::vector<int64_t> positions(rank);
    for (size_t a = 0; a < rank; ++a) positions[a] = (sample[a] - window[a]) / stride[a] + 1;
    Groups groups;
    std::vector<int64_t> at(rank, 0);  // window position per axis
    for (bool more = true; more;) {
      std::vector<int64_t> elements;
      std::vector<int64_t> offset(rank, 0);  // position inside the window
      for (bool inside = true; inside;) {
        int64_t flat = 0;
        for (size_t a = 0; a < rank; ++a) flat += (at[a] * stride[a] + offset[a]) * strides[a];
        elements.push_back(flat);
        inside = advance(offset, window);
      }
      groups.push_back(std::move(elements));
      more = advance(at, positions);
    }
    return groups;
  }

  // The next index of an odometer over `extent`; false after the last.
  static bool advance(std::vector<int64_t>& index, const std::vector<int64_t>& extent) {
    for (size_t a = index.size(); a-- > 0;) {
      if (++index[a] < extent[a]) return true;
      index[a] = 0;
    }
    return false;
  }

  std::vector<int64_t> window_, stride_;
  Fill fill_;
  int64_t max_batch_;
};

// A user feature mask (mask=FILE.npy): one integer group per element, shaped like one sample or like
// the batch; for token ids also shaped like the ids, one group per token.
class FeatureMask {
 public:
  // `optional`: an empty mask (none given) is allowed, the caller groups otherwise.
  FeatureMask(Params& p, const std::string& method, bool optional = false) : method_(method) {
    path_ = p.text("mask", "");
    if (path_.empty() && optional) return;
    if (path_.empty())
      throw Error("method '" + method + "' needs mask=FILE.npy (one integer group per element)");
    mask_ = read_npy(path_);
    for (int64_t k = 0; k < mask_.size(); ++k) {
      if (mask_[k] != std::nearbyint(mask_[k])) {
        throw Error(method + ": mask " + path_ + " element " + std::to_string(k) + " is " +
                    std::to_string(mask_[k]) + ", not an integer group");
      }
    }
  }

  // The groups of every sample of the pass, in increasing group number; one entry when one mask serves
  // every sample.
  bool given() const { return !path_.empty(); }

  std::vector<Groups> groups(const ForwardPass& pass) const {
    const Tensor& x = pass.input();
    const Shape sample = sample_shape(x);
    const int64_t n = x.dim(0), per = per_sample(x);
    const int64_t dims = pass.explains_embedding() ? sample.back() : 1;
    const bool per_token = dims > 1 && (mask_.size() == per / dims || mask_.size() == n * (per / dims));
    const int64_t repeat = per_token ? dims : 1;
    const int64_t mask_per = per / repeat;
    const bool one_mask = mask_.size() == mask_per, batch_mask = mask_.size() == n * mask_per;
    if (!one_mask && !batch_mask) {
      throw Error(method_ + ": mask " + path_ + " of shape " + to_string(mask_.shape()) +
                  " does not match the input's samples " + to_string(sample) + " (" + std::to_string(per) +
                  " elements; or one mask per sample, " + std::to_string(n * per) + ")");
    }
    std::vector<Groups> groups(one_mask ? 1 : static_cast<size_t>(n));
    for (size_t m = 0; m < groups.size(); ++m) {
      std::map<int64_t, std::vector<int64_t>> by_group;
      for (int64_t e = 0; e < per; ++e)
        by_group[static_cast<int64_t>(mask_[static_cast<int64_t>(m) * mask_per + e / repeat])].push_back(e);
      for (auto& [id, elements] : by_group) groups[m].push_back(std::move(elements));
    }
    return groups;
  }

 private:
  std::string method_, path_;
  Tensor mask_;
};

class Ablation : public Analyzer {
 public:
  Ablation(Params& p, int64_t max_batch) : fill_(p, "ablation"), mask_(p, "ablation") {
    max_batch_ = read_batch(p, max_batch);
  }

  // Every group of the mask is filled in one copy; each element gets its group's change.
  Tensor explain(const ForwardPass& pass, const Target& target) const override {
    const std::vector<Groups> groups = mask_.groups(pass);
    const Shape sample = sample_shape(pass.input());
    const std::vector<bool> spatial = spatial_axes(sample, pass.explains_embedding());
    return attribute_groups(
        pass, target,
        [&](int64_t i) -> const Groups& { return groups[groups.size() == 1 ? 0 : static_cast<size_t>(i)]; },
        fill_.values(pass.input(), spatial), max_batch_);
  }

 private:
  Fill fill_;
  FeatureMask mask_;
  int64_t max_batch_;
};

// The superpixel options of LIME's parameters.
SuperpixelOptions superpixel_options(Params& p) {
  SuperpixelOptions o;
  o.algorithm = p.choice("segmentation", "slic", {"slic", "slico", "mslic", "lsc"});
  o.region_size = static_cast<int>(p.integer("region_size", 10, 1, 1 << 20));
  o.ruler = static_cast<float>(p.number("ruler", 10.0, 1e-6, 1e6));
  o.ratio = static_cast<float>(p.number("ratio", 0.075, 1e-6, 1e6));
  o.iterations = static_cast<int>(p.integer("iterations", 10, 1, 100000));
  return o;
}

// The superpixels of every sample of images [N, C, H, W]: [N, H, W].
Tensor segment_maps(const Tensor& x, const SuperpixelOptions& options, bool embedding) {
  if (embedding || x.rank() != 4) {
    throw Error(
        "lime: without mask=FILE.npy the input is segmented into superpixels, which needs images "
        "[N, C, H, W]; the explained input is " +
        std::string(embedding ? "embedding vectors " : "") + "of shape " + to_string(x.shape()) +
        " (give a mask with one integer group per element)");
  }
  if (x.dim(1) > 4) {
    throw Error("lime: superpixels need images of 1 to 4 channels; the input has " +
                std::to_string(x.dim(1)) + " (shape " + to_string(x.shape()) + "; give mask=FILE.npy)");
  }
  const int64_t per = per_sample(x), pixels = x.dim(2) * x.dim(3);
  Tensor maps = Tensor::uninitialized({x.dim(0), x.dim(2), x.dim(3)});
  for (int64_t i = 0; i < x.dim(0); ++i) {
    const Tensor image(sample_shape(x), std::span<const float>(x.data() + i * per, static_cast<size_t>(per)));
    const Tensor labels = superpixels(image, options);
    std::copy(labels.values().begin(), labels.values().end(), maps.data() + i * pixels);
  }
  return maps;
}

// LIME (Ribeiro et al.; METHODS.md §2 "LIME"): n random on/off states of the groups (the first all on) —
// a feature mask's, or without one each image's superpixels —, the target's score on each, weighted by
// the kernel sqrt(exp(−d²/w²)) of the cosine distance d to the all-on state, and a weighted ridge
// regression with intercept; each element gets its group's coefficient.
class Lime : public Analyzer {
 public:
  Lime(Params& p, int64_t max_batch) : fill_(p, "lime"), mask_(p, "lime", true) {
    segmentation_ = superpixel_options(p);
    samples_ = p.integer("n", 1000, 2, 10000000);
    kernel_width_ = p.number("kernel_width", 0.25, 1e-9, 1e9);
    alpha_ = p.number("alpha", 1.0, 0.0, 1e12);
    seed_ = static_cast<uint64_t>(p.integer("seed", 0, 0, INT64_MAX));
    max_batch_ = read_batch(p, max_batch);
  }

  Tensor explain(const ForwardPass& pass, const Target& target) const override {
    const Tensor& x = pass.input();
    const int64_t n = x.dim(0), per = per_sample(x);
    const std::vector<Groups> groups =
        mask_.given()
            ? mask_.groups(pass)
            : superpixel_groups(segment_maps(x, segmentation_, pass.explains_embedding()), x.dim(1));
    const auto groups_of = [&](int64_t i) -> const Groups& {
      return groups[groups.size() == 1 ? 0 : static_cast<size_t>(i)];
    };
    const Tensor fill = fill_.values(x, spatial_axes(sample_shape(x), pass.explains_embedding()));
    // The on/off states of every sample: row k of sample i at states[i][k · groups + g].
    std::vector<std::vector<uint8_t>> states(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
      const size_t d = groups_of(i).size();
      std::vector<uint8_t>& s = states[static_cast<size_t>(i)];
      s.assign(static_cast<size_t>(samples_) * d, 1);
      std::mt19937_64 rng(seed_ * 1000003u + static_cast<uint64_t>(i));
      std::bernoulli_distribution on(0.5);
      for (size_t j = d; j < s.size(); ++j) s[j] = on(rng) ? 1 : 0;
    }
    const RowSource make = [&](int64_t r, float* row) {
      const int64_t i = r / samples_, k = r % samples_;
      std::memcpy(row, x.data() + i * per, static_cast<size_t>(per) * sizeof(float));
      const Groups& g = groups_of(i);
      const uint8_t* state = states[static_cast<size_t>(i)].data() + static_cast<size_t>(k) * g.size();
      for (size_t j = 0; j < g.size(); ++j) {
        if (state[j] == 0) {
          for (int64_t e : g[j]) row[e] = fill[i * per + e];
        }
      }
    };
    const std::vector<double> scores = perturbed_scores(
        pass, target, n * samples_, max_batch_, [&](int64_t r) { return r / samples_; }, make);
    const double share = pass.explains_embedding() ? static_cast<double>(x.shape().back()) : 1.0;
    Tensor result = Tensor::uninitialized(x.shape());
    for (int64_t i = 0; i < n; ++i) {
      const Groups& g = groups_of(i);
      const Eigen::VectorXd beta =
          fit(states[static_cast<size_t>(i)], g.size(), scores.data() + static_cast<size_t>(i * samples_));
      for (size_t j = 0; j < g.size(); ++j) {
        for (int64_t e : g[j])
          result[i * per + e] = static_cast<float>(beta[static_cast<Eigen::Index>(j)] / share);
      }
    }
    return result;
  }

 private:
  // The groups of each sample from its segment map [N, H, W]: a segment covers its pixels in every channel.
  static std::vector<Groups> superpixel_groups(const Tensor& maps, int64_t channels) {
    const int64_t pixels = maps.dim(1) * maps.dim(2);
    std::vector<Groups> groups(static_cast<size_t>(maps.dim(0)));
    for (size_t i = 0; i < groups.size(); ++i) {
      const float* map = maps.data() + static_cast<int64_t>(i) * pixels;
      const int64_t segments = static_cast<int64_t>(*std::max_element(map, map + pixels)) + 1;
      groups[i].resize(static_cast<size_t>(segments));
      for (int64_t c = 0; c < channels; ++c) {
        for (int64_t e = 0; e < pixels; ++e) groups[i][static_cast<size_t>(map[e])].push_back(c * pixels + e);
      }
    }
    return groups;
  }

  // Ridge with intercept on kernel-weighted samples (as scikit-learn's Ridge with sample weights):
  // centre by the weighted means, scale rows by √π, solve (XᵀX + αI) β = Xᵀy.
  Eigen::VectorXd fit(const std::vector<uint8_t>& states, size_t groups, const double* scores) const {
    const Eigen::Index d = static_cast<Eigen::Index>(groups), m = static_cast<Eigen::Index>(samples_);
    Eigen::MatrixXd z(m, d);
    Eigen::VectorXd y(m), weight(m);
    for (Eigen::Index k = 0; k < m; ++k) {
      int64_t on = 0;
      for (Eigen::Index j = 0; j < d; ++j) {
        z(k, j) = states[static_cast<size_t>(k * d + j)];
        on += states[static_cast<size_t>(k * d + j)];
      }
      // Cosine distance to the all-on state: 1 − √(on/d) (1 for the all-off state).
      const double distance = 1.0 - std::sqrt(static_cast<double>(on) / static_cast<double>(d));
      weight[k] = std::sqrt(std::exp(-distance * distance / (kernel_width_ * kernel_width_)));
      y[k] = scores[k];
    }
    const double total = weight.sum();
    const Eigen::RowVectorXd z_mean = (weight.asDiagonal() * z).colwise().sum() / total;
    const double y_mean = weight.dot(y) / total;
    const Eigen::VectorXd root = weight.cwiseSqrt();
    const Eigen::MatrixXd zc = root.asDiagonal() * (z.rowwise() - z_mean);
    const Eigen::VectorXd yc = root.cwiseProduct((y.array() - y_mean).matrix());
    Eigen::MatrixXd normal = zc.transpose() * zc;
    normal.diagonal().array() += alpha_;
    return normal.ldlt().solve(zc.transpose() * yc);
  }

  Fill fill_;
  FeatureMask mask_;
  SuperpixelOptions segmentation_;
  int64_t samples_;
  double kernel_width_, alpha_;
  uint64_t seed_;
  int64_t max_batch_;
};

// RISE: n random binary grids of cells × cells (p = keep probability), bilinearly upsampled to
// (cells + 1) · ⌈size / cells⌉ and cropped at a random shift; saliency = Σ_k f(x ⊙ M_k + fill ⊙ (1 − M_k))
// · M_k / (n · p).
class Rise : public Analyzer {
 public:
  Rise(Params& p, int64_t max_batch) : fill_(p, "rise") {
    masks_ = p.integer("n", 2000, 1, 10000000);
    cells_ = p.integer("cells", 7, 1, 4096);
    keep_ = p.number("p", 0.5, 1e-6, 1.0);
    seed_ = static_cast<uint64_t>(p.integer("seed", 0, 0, INT64_MAX));
    max_batch_ = read_batch(p, max_batch);
  }

  Tensor explain(const ForwardPass& pass, const Target& target) const override {
    const Tensor& x = pass.input();
    const Shape sample = sample_shape(x);
    const std::vector<bool> spatial = spatial_axes(sample, pass.explains_embedding());
    const std::vector<int64_t> strides = strides_of(sample);
    std::vector<int64_t> extent;  // the spatial extents: one or two
    for (size_t a = 0; a < sample.size(); ++a) {
      if (spatial[a]) extent.push_back(sample[a]);
    }
    if (extent.empty() || extent.size() > 2) {
      throw Error("rise: masks are drawn over one or two spatial axes; the input's samples " +
                  to_string(sample) + " have " + std::to_string(extent.size()));
    }
    if (extent.size() == 1) extent.push_back(1);
    const int64_t n = x.dim(0), per = per_sample(x);
    std::vector<int64_t> position(static_cast<size_t>(per));  // flat spatial index of each element
    for (int64_t e = 0; e < per; ++e) {
      int64_t pos = 0;
      for (size_t a = 0; a < sample.size(); ++a) {
        if (spatial[a]) pos = pos * sample[a] + (e / strides[a]) % sample[a];
      }
      position[static_cast<size_t>(e)] = pos;
    }
    const Tensor fill = fill_.values(x, spatial);
    std::vector<float> mask;
    const RowSource make = [&](int64_t r, float* row) {
      const int64_t i = r / masks_;
      draw_mask(r % masks_, extent, mask);
      for (int64_t e = 0; e < per; ++e) {
        const float m = mask[static_cast<size_t>(position[static_cast<size_t>(e)])];
        row[e] = x[i * per + e] * m + fill[i * per + e] * (1.0f - m);
      }
    };
    const std::vector<double> scores = perturbed_scores(
        pass, target, n * masks_, max_batch_, [&](int64_t r) { return r / masks_; }, make);
    std::vector<double> sum(static_cast<size_t>(x.size()), 0.0);
    for (int64_t k = 0; k < masks_; ++k) {
      draw_mask(k, extent, mask);
      for (int64_t i = 0; i < n; ++i) {
        const double s = scores[static_cast<size_t>(i * masks_ + k)];
        for (int64_t e = 0; e < per; ++e)
          sum[static_cast<size_t>(i * per + e)] +=
              s * mask[static_cast<size_t>(position[static_cast<size_t>(e)])];
      }
    }
    Tensor result = Tensor::uninitialized(x.shape());
    const double norm = static_cast<double>(masks_) * keep_;
    for (int64_t j = 0; j < x.size(); ++j) result[j] = static_cast<float>(sum[static_cast<size_t>(j)] / norm);
    return result;
  }

 private:
  // Mask k over extent[0] × extent[1], the same for every sample; a 1-D extent has one cell across.
  void draw_mask(int64_t k, const std::vector<int64_t>& extent, std::vector<float>& mask) const {
    std::mt19937_64 rng(seed_ * 1000003u + static_cast<uint64_t>(k));
    std::bernoulli_distribution keep(keep_);
    const int64_t rows = cells_, cols = extent[1] == 1 ? 1 : cells_;
    std::vector<float> grid(static_cast<size_t>(rows * cols));
    for (float& g : grid) g = keep(rng) ? 1.0f : 0.0f;
    const int64_t cell_h = (extent[0] + rows - 1) / rows, cell_w = (extent[1] + cols - 1) / cols;
    const int64_t shift_y = std::uniform_int_distribution<int64_t>(0, cell_h - 1)(rng);
    const int64_t shift_x = std::uniform_int_distribution<int64_t>(0, cell_w - 1)(rng);
    // Half-pixel bilinear sampling of the grid at the upsampled size, edge cells held beyond the border.
    const auto source = [](int64_t dst, int64_t cells, int64_t upsampled, int64_t& lo, float& frac) {
      const double s = std::clamp(
          (static_cast<double>(dst) + 0.5) * static_cast<double>(cells) / static_cast<double>(upsampled) -
              0.5,
          0.0, static_cast<double>(cells - 1));
      lo = std::min<int64_t>(static_cast<int64_t>(s), cells - 1);
      frac = static_cast<float>(s - static_cast<double>(lo));
    };
    mask.resize(static_cast<size_t>(extent[0] * extent[1]));
    for (int64_t y = 0; y < extent[0]; ++y) {
      int64_t y0 = 0;
      float fy = 0.0f;
      source(y + shift_y, rows, (rows + 1) * cell_h, y0, fy);
      const int64_t y1 = std::min(y0 + 1, rows - 1);
      for (int64_t xx = 0; xx < extent[1]; ++xx) {
        int64_t x0 = 0;
        float fx = 0.0f;
        source(xx + shift_x, cols, (cols + 1) * cell_w, x0, fx);
        const int64_t x1 = std::min(x0 + 1, cols - 1);
        const auto g = [&](int64_t a, int64_t b) { return grid[static_cast<size_t>(a * cols + b)]; };
        mask[static_cast<size_t>(y * extent[1] + xx)] =
            (1 - fy) * ((1 - fx) * g(y0, x0) + fx * g(y0, x1)) + fy * ((1 - fx) * g(y1, x0) + fx * g(y1, x1));
      }
    }
  }

  Fill fill_;
  int64_t masks_, cells_;
  double keep_;
  uint64_t seed_;
  int64_t max_batch_;
};

}  // namespace

std::unique_ptr<Analyzer> make_occlusion(Params& p, int64_t max_batch) {
  return std::make_unique<Occlusion>(p, max_batch);
}
std::unique_ptr<Analyzer> make_ablation(Params& p, int64_t max_batch) {
  return std::make_unique<Ablation>(p, max_batch);
}
std::unique_ptr<Analyzer> make_lime(Params& p, int64_t max_batch) {
  return std::make_unique<Lime>(p, max_batch);
}
Tensor lime_segments(Params& p, const Tensor& input) {
  if (!p.text("mask", "").empty()) return {};
  return segment_maps(input, superpixel_options(p), false);
}
std::unique_ptr<Analyzer> make_rise(Params& p, int64_t max_batch) {
  return std::make_unique<Rise>(p, max_batch);
}

}  // namespace sieve::analyzers
