#include "arrays.hpp"

#include <cstring>

#include "sieve/error.hpp"

namespace py = pybind11;

namespace sieve::python {
namespace {

// C order, float32, aligned for its element type: what the library reads without a copy. Anything else
// (another dtype, byte order or layout, a view with strides) is converted once by NumPy.
using Float32Array =
    py::array_t<float, py::array::c_style | py::array::forcecast | py::detail::npy_api::NPY_ARRAY_ALIGNED_>;

std::string dtype_name(const py::array& array) {
  return py::str(static_cast<py::object>(array.dtype())).cast<std::string>();
}

}  // namespace

InputArray input_array(const py::handle& object, const std::string& what) {
  if (!py::isinstance<py::array>(object))
    throw Error(what + ": expected a NumPy array, got " +
                py::str(static_cast<py::object>(py::type::of(object).attr("__name__"))).cast<std::string>());
  const auto given = py::reinterpret_borrow<py::array>(object);
  const char kind = given.dtype().kind();
  if (kind != 'f' && kind != 'i' && kind != 'u')
    throw Error(what + ": dtype " + dtype_name(given) +
                " is not a real number type (float32 is read as it is, other float and integer types are "
                "converted)");
  if (given.ndim() == 0) throw Error(what + ": a batch needs a leading batch dimension, got a scalar");
  InputArray in;
  in.array = Float32Array::ensure(given);
  if (!in.array) throw py::error_already_set();
  Shape shape(in.array.shape(), in.array.shape() + in.array.ndim());
  // Read only (the array may be read-only); the memory stays NumPy's: the storage holds a reference to the
  // array and gives it back, under the interpreter lock, when the last tensor over it is gone (possibly on a
  // thread that does not hold it).
  auto* owner = new py::object(in.array);
  in.storage = std::shared_ptr<float[]>(const_cast<float*>(in.array.data()), [owner](float*) {
    py::gil_scoped_acquire gil;
    delete owner;
  });
  in.tensor = Tensor::borrowed(std::move(shape), in.storage);
  return in;
}

Tensor InputArray::row(int64_t i) const {
  Shape shape = tensor.shape();
  const int64_t per = shape[0] == 0 ? 0 : tensor.size() / shape[0];
  shape[0] = 1;
  // The row's storage shares ownership with the whole array's (shared_ptr's aliasing constructor).
  return Tensor::borrowed(std::move(shape), std::shared_ptr<float[]>(storage, storage.get() + i * per));
}

std::vector<Tensor> InputArray::rows() const {
  std::vector<Tensor> rows;
  for (int64_t i = 0; i < tensor.dim(0); ++i) rows.push_back(row(i));
  return rows;
}

py::array_t<float> to_numpy(const Tensor& tensor) {
  auto* kept = new Tensor(tensor);
  const py::capsule owner(kept, [](void* p) { delete static_cast<Tensor*>(p); });
  std::vector<py::ssize_t> strides;
  for (int64_t s : strides_of(tensor.shape())) strides.push_back(static_cast<py::ssize_t>(s * sizeof(float)));
  return py::array_t<float>(std::vector<py::ssize_t>(tensor.shape().begin(), tensor.shape().end()), strides,
                            kept->data(), owner);
}

py::array_t<float> stacked(const std::vector<Tensor>& samples) {
  if (samples.empty()) return py::array_t<float>(std::vector<py::ssize_t>{0});
  std::vector<py::ssize_t> shape(samples[0].shape().begin(), samples[0].shape().end());
  shape[0] = static_cast<py::ssize_t>(samples.size());
  py::array_t<float> out(shape);
  float* to = out.mutable_data();
  for (const Tensor& s : samples) {
    std::memcpy(to, s.data(), static_cast<size_t>(s.size()) * sizeof(float));
    to += s.size();
  }
  return out;
}

}  // namespace sieve::python
