#include "sieve/io/inputs.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>

#include "io/input_files.hpp"
#include "sieve/error.hpp"
#include "sieve/io/formats.hpp"
#include "sieve/io/idx.hpp"
#include "sieve/io/image.hpp"
#include "sieve/io/npy.hpp"
#include "sieve/parse.hpp"

namespace fs = std::filesystem;

namespace sieve {
namespace detail {
std::vector<InputFile> expand_input_path(const std::string& text, UnreadableFiles* unreadable) {
  const DataSlice slice = parse_data_slice(text);
  const std::string& path = slice.path;
  if (fs::is_directory(path)) {
    std::vector<fs::path> entries;
    for (const auto& e : fs::directory_iterator(path)) entries.push_back(e.path());
    std::sort(entries.begin(), entries.end());
    std::vector<InputFile> out;
    for (const fs::path& entry : entries) {
      std::string problem;
      if (fs::is_directory(entry)) {
        problem = "a directory inside the input directory (directories are not read recursively)";
      } else if (!is_image_format(format_of_content(entry.string()))) {
        problem = "not a PNG or JPEG image (an input directory must hold only images)";
      }
      if (problem.empty()) {
        out.push_back({entry.string(), InputKind::image});
      } else if (unreadable != nullptr && unreadable->skip) {
        unreadable->skipped.push_back(entry.string());
      } else {
        throw Error(entry.string() + ": " + problem);
      }
    }
    if (out.empty()) throw Error(path + ": directory without PNG or JPEG images");
    if (slice.sliced) {
      const auto [begin, end] = slice_rows({path, InputKind::image, slice.begin, slice.end},
                                           static_cast<int64_t>(out.size()), text);
      out = std::vector<InputFile>(out.begin() + begin, out.begin() + end);
    }
    return out;
  }
  if (!fs::exists(path)) throw Error(path + ": no such file or directory");
  // Anything neither .npy nor IDX goes to the image reader, which names the file it cannot decode.
  const DataFormat format = format_of_file(path);
  const InputKind kind = format == DataFormat::npy   ? InputKind::npy
                         : format == DataFormat::idx ? InputKind::idx
                                                     : InputKind::image;
  return {{path, kind, slice.begin, slice.end}};
}

std::pair<int64_t, int64_t> slice_rows(const InputFile& file, int64_t count, const std::string& name) {
  const int64_t end = file.end < 0 ? count : file.end;
  if (file.begin == 0 && file.end < 0) return {0, count};  // no slice: every sample, also none
  if (file.begin >= end || end > count) {
    throw Error(name + ": the range " + std::to_string(file.begin) + ":" + std::to_string(end) +
                " is outside its " + std::to_string(count) + " sample(s)");
  }
  return {file.begin, end};
}

bool dims_match(const Shape& sample, const Shape& declared) {
  if (sample.size() != declared.size()) return false;
  for (size_t d = 0; d < sample.size(); ++d) {
    if (declared[d] >= 0 && declared[d] != sample[d]) return false;
  }
  return true;
}

bool npy_is_batch(const Shape& shape, const Shape& sample, const std::string& path) {
  if (dims_match(shape, sample)) return false;
  if (shape.size() == sample.size() + 1 && dims_match(Shape(shape.begin() + 1, shape.end()), sample)) {
    return true;
  }
  throw Error(path + ": array of shape " + to_string(shape) + " does not fit the model input " +
              to_string(sample) + " (one sample, or a batch of them)");
}

void check_idx_fits(const Shape& shape, const Shape& sample, const std::string& path) {
  if (shape.size() != 3 || sample.size() != 3 || sample[0] != 1 ||
      !dims_match({1, shape[1], shape[2]}, sample)) {
    throw Error(path + ": IDX images of shape " + to_string(shape) + " do not fit the model input " +
                to_string(sample));
  }
}

void check_image_fits(const Shape& sample, const std::string& path) {
  if (sample.size() != 3) throw Error(path + ": an image cannot feed the model input " + to_string(sample));
}

void check_finite(const float* values, int64_t count, const std::string& name) {
  for (int64_t i = 0; i < count; ++i) {
    if (!std::isfinite(values[i])) {
      throw Error(name + ": input contains " + std::string(std::isnan(values[i]) ? "NaN" : "Inf") +
                  " at element " + std::to_string(i));
    }
  }
}

}  // namespace detail

DataSlice parse_data_slice(const std::string& text) {
  DataSlice slice{text, 0, -1, false};
  if (text.empty() || text.back() != ']' || fs::exists(text)) return slice;
  const size_t open = text.rfind('[');
  if (open == std::string::npos) return slice;
  const std::string range = text.substr(open + 1, text.size() - open - 2);
  const size_t colon = range.find(':');
  auto number = [&](const std::string& part, int64_t fallback) {
    if (part.empty()) return fallback;
    const std::optional<int64_t> v = parse_integer(part);
    if (!v || *v < 0) throw Error(text + ": expected a range [a:b] of sample indices, e.g. [0:1000]");
    return *v;
  };
  if (colon == std::string::npos)
    throw Error(text + ": expected a range [a:b] of sample indices, e.g. [0:1000]");
  slice.path = text.substr(0, open);
  slice.begin = number(range.substr(0, colon), 0);
  slice.end = number(range.substr(colon + 1), -1);
  slice.sliced = true;
  if (slice.end >= 0 && slice.begin >= slice.end) throw Error(text + ": the range " + range + " is empty");
  return slice;
}

bool slices_overlap(const DataSlice& a, const DataSlice& b) {
  std::error_code ec_a, ec_b;
  const fs::path pa = fs::weakly_canonical(a.path, ec_a), pb = fs::weakly_canonical(b.path, ec_b);
  if ((ec_a ? fs::path(a.path) : pa) != (ec_b ? fs::path(b.path) : pb)) return false;
  const int64_t a_end = a.end < 0 ? INT64_MAX : a.end, b_end = b.end < 0 ? INT64_MAX : b.end;
  return a.begin < b_end && b.begin < a_end;
}

namespace {

// Splits rows [begin, end) of [N, ...] into samples [1, ...].
void add_batch(std::vector<NamedInput>& out, const std::string& name, const Tensor& batch, int64_t begin,
               int64_t end) {
  for (int64_t i = begin; i < end; ++i)
    out.push_back({name + "[" + std::to_string(i) + "]", batch_row(batch, i), name, i, {}});
}

void load_npy(std::vector<NamedInput>& out, const detail::InputFile& file, const Shape& sample) {
  const std::string& path = file.path;
  const Tensor t = read_npy(path);
  if (detail::npy_is_batch(t.shape(), sample, path)) {
    const auto [begin, end] = detail::slice_rows(file, t.dim(0), path);
    add_batch(out, path, t, begin, end);
    return;
  }
  detail::slice_rows(file, 1, path);
  Shape one{1};
  one.insert(one.end(), t.shape().begin(), t.shape().end());
  out.push_back({path, t.reshaped(one), path, -1, {}});
}

void load_idx(std::vector<NamedInput>& out, const detail::InputFile& file, const Preprocessing& p,
              const Shape& sample) {
  const std::string& path = file.path;
  Tensor t = read_idx(path);
  detail::check_idx_fits(t.shape(), sample, path);
  const auto [begin, end] = detail::slice_rows(file, t.dim(0), path);
  normalize_raw(t, p, 1);
  add_batch(out, path, t.reshaped({t.dim(0), 1, t.dim(1), t.dim(2)}), begin, end);
}

void load_image(std::vector<NamedInput>& out, const std::string& path, const Preprocessing& p,
                const Shape& sample, UnreadableFiles* unreadable) {
  detail::check_image_fits(sample, path);
  Image image;
  try {
    image = read_image(path);
  } catch (const Error&) {
    if (unreadable == nullptr || !unreadable->skip) throw;
    unreadable->skipped.push_back(path);
    return;
  }
  std::vector<std::string> warnings;
  Tensor t;
  try {
    t = image_to_tensor(image, p, sample[0], sample[1], sample[2], &warnings);
  } catch (const Error& e) {
    throw Error(path + ": " + e.what());
  }
  out.push_back({path, std::move(t), path, -1, std::move(warnings)});
}

}  // namespace

std::vector<NamedInput> load_inputs(const std::vector<std::string>& paths, const Preprocessing& p,
                                    const Shape& model_input_shape, UnreadableFiles* unreadable) {
  if (model_input_shape.empty()) throw Error("the model input has no declared shape");
  const Shape sample(model_input_shape.begin() + 1, model_input_shape.end());
  std::vector<NamedInput> out;
  for (const std::string& path : paths) {
    for (const detail::InputFile& file : detail::expand_input_path(path, unreadable)) {
      switch (file.kind) {
        case detail::InputKind::npy:
          load_npy(out, file, sample);
          break;
        case detail::InputKind::idx:
          load_idx(out, file, p, sample);
          break;
        case detail::InputKind::image:
          detail::slice_rows(file, 1, file.path);
          load_image(out, file.path, p, sample, unreadable);
          break;
      }
    }
  }
  for (const NamedInput& in : out) detail::check_finite(in.tensor.data(), in.tensor.size(), in.name);
  return out;
}

}  // namespace sieve
