#include "ops/common.hpp"

#include <algorithm>

namespace sieve::ops {

int64_t normalize_axis(int64_t axis, int64_t rank, const std::string& where) {
  if (axis < -rank || axis >= rank) {
    throw Error(where + ": axis " + std::to_string(axis) + " out of range for rank " + std::to_string(rank));
  }
  return axis < 0 ? axis + rank : axis;
}

Shape broadcast_shapes(const Shape& a, const Shape& b, const std::string& where) {
  const size_t rank = std::max(a.size(), b.size());
  Shape out(rank);
  for (size_t i = 0; i < rank; ++i) {
    const int64_t da = i < rank - a.size() ? 1 : a[i - (rank - a.size())];
    const int64_t db = i < rank - b.size() ? 1 : b[i - (rank - b.size())];
    if (da != db && da != 1 && db != 1) {
      throw Error(where + ": shapes " + to_string(a) + " and " + to_string(b) + " do not broadcast");
    }
    out[i] = da == 1 ? db : da;
  }
  return out;
}

Tensor reduce_to_shape(const Tensor& g, const Shape& target, const std::string& where) {
  if (g.shape() == target) return g;
  const Shape& gs = g.shape();
  if (target.size() > gs.size())
    throw Error(where + ": cannot reduce " + to_string(gs) + " to " + to_string(target));
  const size_t offset = gs.size() - target.size();
  std::vector<int64_t> ts = strides_of(target);
  Tensor out(target);
  std::vector<double> acc(static_cast<size_t>(out.size()), 0.0);
  for (int64_t i = 0; i < g.size(); ++i) {
    int64_t rem = i, t = 0;
    for (size_t d = gs.size(); d-- > 0;) {
      const int64_t idx = rem % gs[d];
      rem /= gs[d];
      if (d >= offset && target[d - offset] != 1) t += idx * ts[d - offset];
    }
    acc[static_cast<size_t>(t)] += g[i];
  }
  for (int64_t i = 0; i < out.size(); ++i) out[i] = static_cast<float>(acc[static_cast<size_t>(i)]);
  return out;
}

std::vector<int64_t> to_ints(const Tensor& t) {
  std::vector<int64_t> v(static_cast<size_t>(t.size()));
  for (int64_t i = 0; i < t.size(); ++i) {
    const float x = t[i];
    if (!std::isfinite(x)) throw Error("integer tensor holds a non-finite value");
    v[static_cast<size_t>(i)] = static_cast<int64_t>(std::llround(x));
  }
  return v;
}

Tensor from_ints(const std::vector<int64_t>& values) {
  Tensor t = Tensor::uninitialized({static_cast<int64_t>(values.size())});
  for (size_t i = 0; i < values.size(); ++i) t[static_cast<int64_t>(i)] = static_cast<float>(values[i]);
  return t;
}

void expect_inputs(std::span<const Tensor> inputs, size_t min, size_t max, const std::string& where) {
  if (inputs.size() < min || inputs.size() > max) {
    throw Error(where + ": expected " + std::to_string(min) + (min == max ? "" : "-" + std::to_string(max)) +
                " inputs, got " + std::to_string(inputs.size()));
  }
  for (size_t i = 0; i < min; ++i) {
    if (inputs[i].empty()) throw Error(where + ": required input " + std::to_string(i) + " is missing");
  }
}

WindowAttributes WindowAttributes::read(const OpSpec& spec, bool kernel_required) {
  WindowAttributes w;
  w.kernel = spec.attributes.get_ints("kernel_shape");
  if (kernel_required && w.kernel.empty()) spec.fail("attribute 'kernel_shape' is required");
  w.strides = spec.attributes.get_ints("strides");
  w.dilations = spec.attributes.get_ints("dilations");
  w.pads = spec.attributes.get_ints("pads");
  w.auto_pad = spec.attributes.get_string("auto_pad", "NOTSET");
  if (w.auto_pad != "NOTSET" && w.auto_pad != "SAME_UPPER" && w.auto_pad != "SAME_LOWER" &&
      w.auto_pad != "VALID") {
    spec.fail("unknown auto_pad '" + w.auto_pad + "'");
  }
  for (int64_t k : w.kernel)
    if (k <= 0) spec.fail("kernel_shape entries must be positive");
  for (int64_t s : w.strides)
    if (s <= 0) spec.fail("strides must be positive");
  for (int64_t d : w.dilations)
    if (d <= 0) spec.fail("dilations must be positive");
  for (int64_t p : w.pads)
    if (p < 0) spec.fail("negative pads are not supported");
  if (!w.kernel.empty()) {
    const size_t n = w.kernel.size();
    if ((!w.strides.empty() && w.strides.size() != n) || (!w.dilations.empty() && w.dilations.size() != n) ||
        (!w.pads.empty() && w.pads.size() != 2 * n)) {
      spec.fail("strides/dilations/pads do not match the " + std::to_string(n) +
                " spatial dimensions of kernel_shape");
    }
  }
  return w;
}

void WindowAttributes::resolve_pads(const std::vector<int64_t>& in, const std::vector<int64_t>& k,
                                    std::vector<int64_t>& begin, std::vector<int64_t>& end) const {
  const size_t n = in.size();
  begin.assign(n, 0);
  end.assign(n, 0);
  for (size_t i = 0; i < n; ++i) {
    const int64_t stride = strides.empty() ? 1 : strides[i];
    const int64_t dilation = dilations.empty() ? 1 : dilations[i];
    if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
      const int64_t out = (in[i] + stride - 1) / stride;
      const int64_t total = std::max<int64_t>(0, (out - 1) * stride + (k[i] - 1) * dilation + 1 - in[i]);
      begin[i] = auto_pad == "SAME_UPPER" ? total / 2 : total - total / 2;
      end[i] = total - begin[i];
    } else if (auto_pad == "NOTSET" && !pads.empty()) {
      begin[i] = pads[i];
      end[i] = pads[i + n];
    }
  }
}

int64_t window_output_size(int64_t in, int64_t kernel, int64_t stride, int64_t dilation, int64_t pad_begin,
                           int64_t pad_end, bool ceil_mode) {
  const int64_t span = (kernel - 1) * dilation + 1;
  const int64_t room = in + pad_begin + pad_end - span;
  if (room < 0) return 0;
  int64_t out = (ceil_mode ? (room + stride - 1) / stride : room / stride) + 1;
  // A ceil-mode window must start inside the input or the begin padding (as in ONNX and PyTorch).
  if (ceil_mode && (out - 1) * stride >= in + pad_begin) --out;
  return out;
}

}  // namespace sieve::ops
