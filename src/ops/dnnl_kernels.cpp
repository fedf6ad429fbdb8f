#include "ops/dnnl_kernels.hpp"

#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <oneapi/dnnl/dnnl.hpp>
#include <string>

#include "sieve/error.hpp"

namespace sieve::kernels {
namespace {

using dnnl::memory;
using tag = memory::format_tag;
using dt = memory::data_type;

dnnl::engine& engine() {
  static dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}

dnnl::stream& stream() {
  thread_local dnnl::stream s(engine());
  return s;
}

tag plain_tag(size_t rank) {
  static const tag tags[] = {tag::undef, tag::a, tag::ab, tag::abc, tag::abcd, tag::abcde, tag::abcdef};
  if (rank == 0 || rank > 6) throw Error("oneDNN kernels support ranks 1 to 6, got " + std::to_string(rank));
  return tags[rank];
}

memory::desc plain_md(const Shape& shape) {
  return {memory::dims(shape.begin(), shape.end()), dt::f32, plain_tag(shape.size())};
}
memory::desc any_md(const Shape& shape) {
  return {memory::dims(shape.begin(), shape.end()), dt::f32, tag::any};
}

memory wrap(const Shape& shape, const float* data) {
  return memory(plain_md(shape), engine(), const_cast<float*>(data));  // oneDNN takes non-const handles
}

// User (plain) memory if the primitive accepts it as is, otherwise a reordered copy.
memory to_layout(memory user, const memory::desc& wanted) {
  if (user.get_desc() == wanted) return user;
  memory m(wanted, engine());
  dnnl::reorder(user, m).execute(stream(), user, m);
  return m;
}

// Output memory in the primitive's layout; copy_back moves it into the plain result tensor.
struct Output {
  memory user, prim;
  Output(const memory::desc& wanted, Tensor& result) : user(wrap(result.shape(), result.data())) {
    prim = user.get_desc() == wanted ? user : memory(wanted, engine());
  }
  void copy_back() {
    if (prim != user) dnnl::reorder(prim, user).execute(stream(), prim, user);
  }
};

std::string key_of(const char* kind, std::initializer_list<const std::vector<int64_t>*> parts) {
  std::string key = kind;
  for (const auto* p : parts) {
    key += '|';
    for (int64_t v : *p) key += std::to_string(v) + ',';
  }
  return key;
}

// Weights reordered into a primitive's layout, remembered per source tensor. The cached entry keeps
// a reference to the source storage so its address cannot be reused by another tensor while cached.
class WeightCache {
 public:
  memory get(const Tensor& w, const memory::desc& wanted) {
    memory user = wrap(w.shape(), w.data());
    if (user.get_desc() == wanted) return user;
    std::lock_guard lock(mutex_);
    for (auto it = entries_.begin(); it != entries_.end(); ++it) {
      if (it->source.data() == w.data() && it->source.shape() == w.shape() &&
          it->reordered.get_desc() == wanted) {
        entries_.splice(entries_.begin(), entries_, it);
        return it->reordered;
      }
    }
    memory m(wanted, engine());
    dnnl::reorder(user, m).execute(stream(), user, m);
    entries_.push_front({w, m});
    if (entries_.size() > kCapacity) entries_.pop_back();
    return m;
  }

 private:
  static constexpr size_t kCapacity = 64;
  struct Entry {
    Tensor source;
    memory reordered;
  };
  std::mutex mutex_;
  std::list<Entry> entries_;
};

WeightCache& weight_cache() {
  static WeightCache cache;
  return cache;
}

template <class PrimitiveDesc>
class PdCache {
 public:
  template <class Make>
  PrimitiveDesc get(const std::string& key, Make make) {
    std::lock_guard lock(mutex_);
    auto it = cache_.find(key);
    if (it != cache_.end()) return it->second;
    return cache_.emplace(key, make()).first->second;
  }

 private:
  std::mutex mutex_;
  std::map<std::string, PrimitiveDesc> cache_;
};

memory::dims dims_of(const std::vector<int64_t>& v) {
  return {v.begin(), v.end()};
}

memory::dims dnnl_dilations(const ConvGeometry& g) {
  memory::dims d;
  for (int64_t v : g.dilations) d.push_back(v - 1);
  return d;
}

// oneDNN wants grouped weights as [G, O/G, I/G, k...]; the ONNX layout [O, I/G, k...] has the same bytes.
Shape dnnl_weight_shape(const ConvGeometry& g, const Shape& w) {
  if (g.groups == 1) return w;
  Shape s{g.groups, w[0] / g.groups};
  s.insert(s.end(), w.begin() + 1, w.end());
  return s;
}

dnnl::convolution_forward::primitive_desc conv_forward_pd(const ConvGeometry& g, const Shape& x,
                                                          const Shape& w, bool with_bias, const Shape& y,
                                                          dnnl::prop_kind prop, bool relu = false) {
  static PdCache<dnnl::convolution_forward::primitive_desc> cache;
  const Shape wd = dnnl_weight_shape(g, w);
  const std::vector<int64_t> flags{with_bias ? 1 : 0, static_cast<int64_t>(prop), relu ? 1 : 0};
  return cache.get(
      key_of("conv", {&x, &wd, &y, &g.strides, &g.dilations, &g.pad_begin, &g.pad_end, &flags}), [&] {
        const memory::desc bias = with_bias ? memory::desc({w[0]}, dt::f32, tag::a) : memory::desc();
        dnnl::convolution_forward::desc d(prop, dnnl::algorithm::convolution_direct, any_md(x), any_md(wd),
                                          bias, any_md(y), dims_of(g.strides), dnnl_dilations(g),
                                          dims_of(g.pad_begin), dims_of(g.pad_end));
        dnnl::primitive_attr attr;
        if (relu) {
          dnnl::post_ops ops;
          ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_relu, 0.0f, 0.0f);
          attr.set_post_ops(ops);
        }
        return dnnl::convolution_forward::primitive_desc(d, attr, engine());
      });
}

}  // namespace

Tensor conv_forward(const ConvGeometry& g, const Tensor& x, const Tensor& w, const Tensor& b,
                    const Shape& y_shape, bool relu) {
  const bool with_bias = !b.empty();
  auto pd =
      conv_forward_pd(g, x.shape(), w.shape(), with_bias, y_shape, dnnl::prop_kind::forward_inference, relu);
  Tensor y = Tensor::uninitialized(y_shape);
  memory src = to_layout(wrap(x.shape(), x.data()), pd.src_desc());
  memory weights = weight_cache().get(w.reshaped(dnnl_weight_shape(g, w.shape())), pd.weights_desc());
  Output dst(pd.dst_desc(), y);
  std::unordered_map<int, memory> args{
      {DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, weights}, {DNNL_ARG_DST, dst.prim}};
  if (with_bias) args.emplace(DNNL_ARG_BIAS, wrap(b.shape(), b.data()));
  dnnl::convolution_forward(pd).execute(stream(), args);
  dst.copy_back();
  stream().wait();
  return y;
}

Tensor conv_backward_data(const ConvGeometry& g, const Tensor& dy, const Tensor& w, const Shape& x_shape) {
  static PdCache<dnnl::convolution_backward_data::primitive_desc> cache;
  const Shape wd = dnnl_weight_shape(g, w.shape());
  auto pd = cache.get(
      key_of("conv_bwd_data",
             {&x_shape, &wd, &dy.shape(), &g.strides, &g.dilations, &g.pad_begin, &g.pad_end}),
      [&] {
        auto hint =
            conv_forward_pd(g, x_shape, w.shape(), false, dy.shape(), dnnl::prop_kind::forward_training);
        dnnl::convolution_backward_data::desc d(dnnl::algorithm::convolution_direct, any_md(x_shape),
                                                any_md(wd), any_md(dy.shape()), dims_of(g.strides),
                                                dnnl_dilations(g), dims_of(g.pad_begin), dims_of(g.pad_end));
        return dnnl::convolution_backward_data::primitive_desc(d, engine(), hint);
      });
  Tensor dx = Tensor::uninitialized(x_shape);
  memory diff_dst = to_layout(wrap(dy.shape(), dy.data()), pd.diff_dst_desc());
  memory weights = weight_cache().get(w.reshaped(wd), pd.weights_desc());
  Output diff_src(pd.diff_src_desc(), dx);
  dnnl::convolution_backward_data(pd).execute(
      stream(),
      {{DNNL_ARG_DIFF_DST, diff_dst}, {DNNL_ARG_WEIGHTS, weights}, {DNNL_ARG_DIFF_SRC, diff_src.prim}});
  diff_src.copy_back();
  stream().wait();
  return dx;
}

Tensor conv_backward_weights(const ConvGeometry& g, const Tensor& x, const Tensor& dy, const Shape& w_shape) {
  static PdCache<dnnl::convolution_backward_weights::primitive_desc> cache;
  const Shape wd = dnnl_weight_shape(g, w_shape);
  auto pd =
      cache.get(key_of("conv_bwd_w",
                       {&x.shape(), &wd, &dy.shape(), &g.strides, &g.dilations, &g.pad_begin, &g.pad_end}),
                [&] {
                  auto hint = conv_forward_pd(g, x.shape(), w_shape, false, dy.shape(),
                                              dnnl::prop_kind::forward_training);
                  dnnl::convolution_backward_weights::desc d(
                      dnnl::algorithm::convolution_direct, any_md(x.shape()), any_md(wd), any_md(dy.shape()),
                      dims_of(g.strides), dnnl_dilations(g), dims_of(g.pad_begin), dims_of(g.pad_end));
                  return dnnl::convolution_backward_weights::primitive_desc(d, engine(), hint);
                });
  Tensor dw = Tensor::uninitialized(w_shape);
  memory src = to_layout(wrap(x.shape(), x.data()), pd.src_desc());
  memory diff_dst = to_layout(wrap(dy.shape(), dy.data()), pd.diff_dst_desc());
  Tensor dw_view = dw.reshaped(wd);
  Output diff_weights(pd.diff_weights_desc(), dw_view);
  dnnl::convolution_backward_weights(pd).execute(
      stream(),
      {{DNNL_ARG_SRC, src}, {DNNL_ARG_DIFF_DST, diff_dst}, {DNNL_ARG_DIFF_WEIGHTS, diff_weights.prim}});
  diff_weights.copy_back();
  stream().wait();
  return dw;
}

namespace {

// A plain [..., R, C] tensor, or one stored as [..., C, R] and read transposed, as a oneDNN descriptor.
memory::desc matrix_md(const Shape& stored, bool transposed) {
  if (!transposed) return plain_md(stored);
  const size_t rank = stored.size();
  memory::dims dims(stored.begin(), stored.end()), strides(rank);
  int64_t stride = 1;
  for (size_t i = rank; i-- > 0;) {
    strides[i] = stride;
    stride *= stored[i];
  }
  std::swap(dims[rank - 1], dims[rank - 2]);
  std::swap(strides[rank - 1], strides[rank - 2]);
  return {dims, dt::f32, strides};
}

}  // namespace

Tensor matmul(const Tensor& a, bool a_transposed, const Tensor& b, bool b_transposed, const Tensor& bias,
              const Shape& c_shape) {
  static PdCache<dnnl::matmul::primitive_desc> cache;
  // oneDNN needs equal ranks; missing leading batch dimensions broadcast as 1.
  const size_t rank = c_shape.size();
  auto padded = [rank](const Shape& s) {
    Shape p(rank - s.size(), 1);
    p.insert(p.end(), s.begin(), s.end());
    return p;
  };
  const Shape as = padded(a.shape());
  const Shape bs = padded(b.shape());
  Shape bias_shape;
  if (!bias.empty()) {
    bias_shape.assign(rank, 1);
    bias_shape.back() = c_shape.back();
  }
  const std::vector<int64_t> flags{a_transposed ? 1 : 0, b_transposed ? 1 : 0};
  const memory::desc a_md = matrix_md(as, a_transposed);
  const memory::desc b_md = matrix_md(bs, b_transposed);
  auto pd = cache.get(key_of("matmul", {&as, &bs, &bias_shape, &c_shape, &flags}), [&] {
    const memory::desc bias_md = bias.empty() ? memory::desc() : plain_md(bias_shape);
    dnnl::matmul::desc d(a_md, b_md, bias_md, plain_md(c_shape));
    return dnnl::matmul::primitive_desc(d, engine());
  });
  Tensor c = Tensor::uninitialized(c_shape);
  std::unordered_map<int, memory> args{
      {DNNL_ARG_SRC, memory(a_md, engine(), const_cast<float*>(a.data()))},
      {DNNL_ARG_WEIGHTS, memory(b_md, engine(), const_cast<float*>(b.data()))},
      {DNNL_ARG_DST, wrap(c_shape, c.data())}};
  if (!bias.empty()) args.emplace(DNNL_ARG_BIAS, wrap(bias_shape, bias.data()));
  dnnl::matmul(pd).execute(stream(), args);
  stream().wait();
  return c;
}

Tensor pool_forward(PoolKind kind, const PoolGeometry& g, const Tensor& x, const Shape& y_shape) {
  static PdCache<dnnl::pooling_v2_forward::primitive_desc> cache;
  const std::vector<int64_t> flags{static_cast<int64_t>(kind)};
  auto pd = cache.get(
      key_of("pool",
             {&x.shape(), &y_shape, &g.kernel, &g.strides, &g.dilations, &g.pad_begin, &g.pad_end, &flags}),
      [&] {
        memory::dims dil;
        for (int64_t v : g.dilations) dil.push_back(v - 1);
        const auto algo = kind == PoolKind::max ? dnnl::algorithm::pooling_max
                                                : dnnl::algorithm::pooling_avg_exclude_padding;
        dnnl::pooling_v2_forward::desc d(dnnl::prop_kind::forward_inference, algo, plain_md(x.shape()),
                                         any_md(y_shape), dims_of(g.strides), dims_of(g.kernel), dil,
                                         dims_of(g.pad_begin), dims_of(g.pad_end));
        return dnnl::pooling_v2_forward::primitive_desc(d, engine());
      });
  Tensor y = Tensor::uninitialized(y_shape);
  memory src = to_layout(wrap(x.shape(), x.data()), pd.src_desc());
  Output dst(pd.dst_desc(), y);
  dnnl::pooling_v2_forward(pd).execute(stream(), {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst.prim}});
  dst.copy_back();
  stream().wait();
  return y;
}

}  // namespace sieve::kernels
