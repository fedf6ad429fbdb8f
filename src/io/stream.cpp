#include "sieve/io/stream.hpp"

#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <exception>
#include <fstream>

#include "io/input_files.hpp"
#include "io/npy_header.hpp"
#include "sieve/error.hpp"
#include "sieve/io/idx.hpp"
#include "sieve/io/image.hpp"

namespace sieve {
namespace {

// Raw .npy bytes are converted in pieces of this size, so the staging buffer stays small.
constexpr int64_t kChunkBytes = int64_t{1} << 20;

// One input file and what its header said.
struct Source {
  detail::InputFile file;
  int64_t begin = 0;  // the first sample read (a slice FILE[a:b] starts later)
  int64_t count = 0;  // the end of the samples read: the file's count, or the slice's end
  Shape sample;       // their shape; for images known only once decoded
  detail::NpyHeader npy;
  bool npy_batch = false;  // [N, ...sample] rather than one sample
  Shape idx_shape;         // [N, H, W]
};

uint32_t big_endian(const unsigned char* b) {
  return (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) | (uint32_t{b[2]} << 8) | b[3];
}

// The shape in an IDX header, read through zlib (which passes plain files through) without the data;
// the same checks and messages as read_idx.
Shape read_idx_shape(const std::string& path) {
  const std::unique_ptr<gzFile_s, int (*)(gzFile)> file(gzopen(path.c_str(), "rb"), gzclose);
  if (!file) throw Error(path + ": cannot open file");
  const auto read = [&](unsigned char* into, unsigned bytes) {
    if (gzread(file.get(), into, bytes) != static_cast<int>(bytes)) {
      throw Error(path + ": truncated or corrupt IDX file");
    }
  };
  unsigned char magic[4];
  read(magic, 4);
  const int type = magic[2], ndims = magic[3];
  const bool known_type =
      type == 0x08 || type == 0x09 || type == 0x0B || type == 0x0C || type == 0x0D || type == 0x0E;
  if (magic[0] != 0 || magic[1] != 0 || !known_type || ndims < 1 || ndims > 8) {
    throw Error(path + ": not an IDX file (bad magic number)");
  }
  Shape shape;
  for (int i = 0; i < ndims; ++i) {
    unsigned char b[4];
    read(b, 4);
    shape.push_back(big_endian(b));
  }
  checked_element_count(shape, path);
  return shape;
}

}  // namespace

struct InputStream::Impl {
  Preprocessing p;
  Shape sample;  // the model input without its batch dimension
  std::vector<Source> sources;
  int64_t total = 0, read = 0;
  size_t current = 0;     // the source the next sample comes from
  int64_t row = 0;        // the next sample's index in it
  std::ifstream npy_in;   // the current .npy file once opened
  Tensor idx_values;      // the current IDX file, normalized, once read
  std::vector<char> raw;  // staging buffer for .npy bytes
  std::string failure;    // the error that ended the stream

  static std::string sample_name(const Source& s, int64_t i) {
    const bool batch = s.file.kind == detail::InputKind::idx || s.npy_batch;
    return batch ? s.file.path + "[" + std::to_string(i) + "]" : s.file.path;
  }

  // Moves past finished sources, releasing what they held.
  void skip_finished() {
    while (current < sources.size() && row >= sources[current].count) {
      if (npy_in.is_open()) npy_in.close();
      npy_in.clear();
      idx_values = Tensor();
      ++current;
      row = current < sources.size() ? sources[current].begin : 0;
    }
  }

  // Rows [row, row + k) of the current .npy source into `out` (k · sample-size floats).
  void read_npy_rows(const Source& s, int64_t k, float* out) {
    const std::string& path = s.file.path;
    if (!npy_in.is_open()) {
      npy_in.open(path, std::ios::binary | std::ios::ate);
      if (!npy_in) throw Error(path + ": cannot open file");
      const int64_t file_size = static_cast<int64_t>(npy_in.tellg());
      npy_in.seekg(0);
      const detail::NpyHeader h = detail::read_npy_header(npy_in, file_size, path);
      if (h.shape != s.npy.shape || h.dtype != s.npy.dtype || h.data_offset != s.npy.data_offset) {
        throw Error(path + ": the file changed while it was read");
      }
    }
    const int64_t per = element_count(s.sample);
    if (row < 0 || k < 0 || row + k > s.count) {
      throw Error(path + ": rows " + std::to_string(row) + " to " + std::to_string(row + k) +
                  " are outside the array of " + std::to_string(s.count));
    }
    // The header check guarantees data_offset + count · item_size <= the file size.
    npy_in.seekg(s.npy.data_offset + row * per * s.npy.item_size);
    const int64_t chunk = std::max<int64_t>(kChunkBytes / s.npy.item_size, 1);
    raw.resize(static_cast<size_t>(std::min(chunk, k * per) * s.npy.item_size));
    for (int64_t done = 0, n = k * per; done < n;) {
      const int64_t m = std::min(chunk, n - done);
      if (!npy_in.read(raw.data(), static_cast<std::streamsize>(m * s.npy.item_size))) {
        throw Error(path + ": truncated data (the file changed while it was read)");
      }
      detail::npy_to_float(s.npy.dtype, raw.data(), m, out + done);
      done += m;
    }
  }

  // The rows of the current IDX source, read (and normalized as load_inputs does) on first use.
  const float* idx_rows(const Source& s) {
    if (idx_values.empty()) {
      Tensor t = read_idx(s.file.path);
      if (t.shape() != s.idx_shape) throw Error(s.file.path + ": the file changed while it was read");
      normalize_raw(t, p, 1);
      idx_values = t;
    }
    return idx_values.data() + row * element_count(s.sample);
  }

  void fill(int64_t rows, Tensor& batch) {
    Tensor out;
    Shape shape;
    std::string first;  // the first sample in the batch
    int64_t filled = 0, per = 0;
    // Where the next samples of shape `s` go; allocates the batch for the first one.
    const auto place = [&](const Shape& s, const std::string& name) {
      if (filled == 0) {
        shape = s;
        first = name;
        per = element_count(s);
        Shape wanted{rows};
        wanted.insert(wanted.end(), s.begin(), s.end());
        out = batch.unique() && batch.shape() == wanted ? batch : Tensor::uninitialized(wanted);
      } else if (s != shape) {
        throw Error(first + " and " + name + ": samples of shapes " + to_string(shape) + " and " +
                    to_string(s) + " cannot share a batch (read them one by one)");
      }
      return out.data() + filled * per;
    };
    while (filled < rows) {
      skip_finished();
      if (current >= sources.size()) throw Error("InputStream: the inputs ended before their announced size");
      const Source& s = sources[current];
      int64_t k = std::min(rows - filled, s.count - row);
      switch (s.file.kind) {
        case detail::InputKind::npy:
          read_npy_rows(s, k, place(s.sample, sample_name(s, row)));
          break;
        case detail::InputKind::idx: {
          const float* values = idx_rows(s);
          float* into = place(s.sample, sample_name(s, row));
          std::copy_n(values, k * per, into);
          break;
        }
        case detail::InputKind::image: {
          k = 1;
          Tensor t;
          try {
            t = image_to_tensor(read_image(s.file.path), p, sample[0], sample[1], sample[2]);
          } catch (const Error& e) {
            const std::string message = e.what();
            throw Error(message.rfind(s.file.path, 0) == 0 ? message : s.file.path + ": " + message);
          }
          float* into = place(Shape(t.shape().begin() + 1, t.shape().end()), s.file.path);
          std::copy_n(t.data(), t.size(), into);
          break;
        }
      }
      for (int64_t i = 0; i < k; ++i) {
        detail::check_finite(out.data() + (filled + i) * per, per, sample_name(s, row + i));
      }
      filled += k;
      row += k;
    }
    skip_finished();
    batch = out;
  }
};

InputStream::InputStream(const std::vector<std::string>& paths, const Preprocessing& p,
                         const Shape& model_input_shape)
    : impl_(std::make_unique<Impl>()) {
  if (model_input_shape.empty()) throw Error("the model input has no declared shape");
  Impl& s = *impl_;
  s.p = p;
  s.sample.assign(model_input_shape.begin() + 1, model_input_shape.end());
  for (const std::string& path : paths) {
    for (detail::InputFile& file : detail::expand_input_path(path)) {
      Source source;
      switch (file.kind) {
        case detail::InputKind::npy: {
          std::ifstream in(file.path, std::ios::binary | std::ios::ate);
          if (!in) throw Error(file.path + ": cannot open file");
          const int64_t file_size = static_cast<int64_t>(in.tellg());
          in.seekg(0);
          source.npy = detail::read_npy_header(in, file_size, file.path);
          const Shape& shape = source.npy.shape;
          source.npy_batch = detail::npy_is_batch(shape, s.sample, file.path);
          source.count = source.npy_batch ? shape[0] : 1;
          source.sample.assign(shape.begin() + (source.npy_batch ? 1 : 0), shape.end());
          break;
        }
        case detail::InputKind::idx:
          source.idx_shape = read_idx_shape(file.path);
          detail::check_idx_fits(source.idx_shape, s.sample, file.path);
          source.count = source.idx_shape[0];
          source.sample = {1, source.idx_shape[1], source.idx_shape[2]};
          break;
        case detail::InputKind::image:
          detail::check_image_fits(s.sample, file.path);
          source.count = 1;
          break;
      }
      const auto [begin, end] = detail::slice_rows(file, source.count, file.path);
      source.begin = begin;
      source.count = end;
      source.file = std::move(file);
      s.total += source.count - source.begin;
      s.sources.push_back(std::move(source));
    }
  }
  s.row = s.sources.empty() ? 0 : s.sources[0].begin;
  s.skip_finished();
}

InputStream::~InputStream() = default;
InputStream::InputStream(InputStream&&) noexcept = default;
InputStream& InputStream::operator=(InputStream&&) noexcept = default;

bool InputStream::next(int64_t max_rows, Tensor& batch) {
  if (!impl_) throw Error("InputStream: used after it was moved from");
  Impl& s = *impl_;
  if (!s.failure.empty()) throw Error("InputStream: stopped by an earlier error: " + s.failure);
  if (max_rows < 1) throw Error("InputStream: max_rows must be at least 1, not " + std::to_string(max_rows));
  const int64_t rows = std::min(max_rows, s.total - s.read);
  if (rows <= 0) {
    batch = Tensor();
    return false;
  }
  try {
    s.fill(rows, batch);
  } catch (const std::exception& e) {
    s.failure = e.what();
    throw;
  }
  s.read += rows;
  return true;
}

int64_t InputStream::size_hint() const {
  return impl_ ? impl_->total : -1;
}

int64_t InputStream::samples_read() const {
  return impl_ ? impl_->read : 0;
}

}  // namespace sieve
