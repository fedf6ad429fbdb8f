#include "sieve/io/npy.hpp"

#include <bit>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>

#include "io/npy_header.hpp"
#include "sieve/error.hpp"

namespace sieve {
namespace {

constexpr char kMagic[] = "\x93NUMPY";

// The dtype of a descr, or nothing for the ones not read.
std::optional<detail::NpyDtype> npy_dtype(const std::string& descr) {
  if (descr == "<f4") return detail::NpyDtype::f4;
  if (descr == "<f8") return detail::NpyDtype::f8;
  if (descr == "<i4") return detail::NpyDtype::i4;
  if (descr == "<i8") return detail::NpyDtype::i8;
  if (descr == "|u1" || descr == "<u1") return detail::NpyDtype::u1;
  return std::nullopt;
}

int64_t item_size(detail::NpyDtype dtype) {
  switch (dtype) {
    case detail::NpyDtype::u1:
      return 1;
    case detail::NpyDtype::f4:
    case detail::NpyDtype::i4:
      return 4;
    default:
      return 8;
  }
}

template <class T>
void convert(const char* raw, int64_t count, float* out) {
  for (int64_t i = 0; i < count; ++i) {
    T v;
    std::memcpy(&v, raw + i * static_cast<int64_t>(sizeof(T)), sizeof(T));
    out[i] = static_cast<float>(v);
  }
}

// The value of `key` in the header's Python dict literal: a quoted string without its quotes, a
// parenthesized tuple without its parentheses, or a bare word.
std::string header_value(const std::string& header, const std::string& key, const std::string& path) {
  size_t pos = header.find("'" + key + "'");
  if (pos == std::string::npos) throw Error(path + ": .npy header without '" + key + "'");
  pos = header.find(':', pos);
  if (pos == std::string::npos) throw Error(path + ": corrupt .npy header");
  pos = header.find_first_not_of(" \t", pos + 1);
  if (pos == std::string::npos) throw Error(path + ": corrupt .npy header");
  const char open = header[pos];
  if (open == '\'' || open == '(') {
    const size_t end = header.find(open == '(' ? ')' : '\'', pos + 1);
    if (end == std::string::npos) throw Error(path + ": corrupt .npy header");
    return header.substr(pos + 1, end - pos - 1);
  }
  const size_t end = header.find_first_of(",} \t", pos);
  return header.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
}

}  // namespace

namespace detail {

NpyHeader read_npy_header(std::istream& in, int64_t file_size, const std::string& path) {
  char magic[8];
  if (file_size < 10 || !in.read(magic, 8) || std::memcmp(magic, kMagic, 6) != 0) {
    throw Error(path + ": not a .npy file (bad magic)");
  }
  const int major = static_cast<unsigned char>(magic[6]);
  if (major < 1 || major > 3)
    throw Error(path + ": unsupported .npy format version " + std::to_string(major));
  uint32_t header_len = 0;
  unsigned char len_bytes[4] = {0, 0, 0, 0};
  const int len_size = major == 1 ? 2 : 4;
  if (!in.read(reinterpret_cast<char*>(len_bytes), len_size)) throw Error(path + ": truncated .npy header");
  for (int i = len_size; i-- > 0;) header_len = header_len * 256 + len_bytes[i];
  NpyHeader h;
  h.data_offset = 8 + len_size + static_cast<int64_t>(header_len);
  if (header_len > 65536 || h.data_offset > file_size)
    throw Error(path + ": truncated or corrupt .npy header");
  std::string header(header_len, '\0');
  if (!in.read(header.data(), header_len)) throw Error(path + ": truncated or corrupt .npy header");

  const std::string descr = header_value(header, "descr", path);
  const std::optional<NpyDtype> dtype = npy_dtype(descr);
  if (!dtype) {
    throw Error(path + ": unsupported dtype '" + descr +
                "' (float32, float64, uint8, int32, int64 are read)");
  }
  h.dtype = *dtype;
  h.item_size = item_size(h.dtype);
  const std::string order = header_value(header, "fortran_order", path);
  if (order == "True") throw Error(path + ": Fortran-ordered arrays are not supported (save with C order)");
  if (order != "False") throw Error(path + ": bad fortran_order '" + order + "' in the .npy header");
  std::stringstream dims(header_value(header, "shape", path));
  std::string item;
  while (std::getline(dims, item, ',')) {
    item.erase(0, item.find_first_not_of(" \t"));
    item.erase(item.find_last_not_of(" \tL") + 1);
    if (item.empty()) continue;
    if (item.find_first_not_of("0123456789") != std::string::npos || item.size() > 18) {
      throw Error(path + ": bad dimension '" + item + "' in the .npy header");
    }
    h.shape.push_back(std::stoll(item));
  }
  h.count = checked_element_count(h.shape, path);
  if (file_size - h.data_offset < h.count * h.item_size) {
    throw Error(path + ": truncated data: shape " + to_string(h.shape) + " needs " +
                std::to_string(h.count * h.item_size) + " bytes, the file has " +
                std::to_string(file_size - h.data_offset));
  }
  return h;
}

void npy_to_float(NpyDtype dtype, const char* raw, int64_t count, float* out) {
  static_assert(std::endian::native == std::endian::little, ".npy values are read as little-endian");
  switch (dtype) {
    case NpyDtype::f4:
      return convert<float>(raw, count, out);
    case NpyDtype::f8:
      return convert<double>(raw, count, out);
    case NpyDtype::u1:
      return convert<uint8_t>(raw, count, out);
    case NpyDtype::i4:
      return convert<int32_t>(raw, count, out);
    case NpyDtype::i8:
      return convert<int64_t>(raw, count, out);
  }
}

}  // namespace detail

Tensor read_npy(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) throw Error(path + ": cannot open file");
  const int64_t file_size = static_cast<int64_t>(in.tellg());
  in.seekg(0);
  const detail::NpyHeader h = detail::read_npy_header(in, file_size, path);
  std::string raw(static_cast<size_t>(h.count * h.item_size), '\0');
  if (!in.read(raw.data(), static_cast<std::streamsize>(raw.size()))) throw Error(path + ": truncated data");
  Tensor t = Tensor::uninitialized(h.shape);
  detail::npy_to_float(h.dtype, raw.data(), h.count, t.data());
  return t;
}

void write_npy(const std::string& path, const Tensor& tensor) {
  std::string dims;
  for (int64_t d : tensor.shape()) dims += std::to_string(d) + ", ";
  if (tensor.rank() > 1)
    dims.erase(dims.size() - 2);
  else if (tensor.rank() == 1)
    dims.erase(dims.size() - 1);
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + dims + "), }";
  // Pad so the data starts on a 64-byte boundary, ending the header with a newline as numpy does.
  const size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header += '\n';
  std::ofstream out(path, std::ios::binary);
  if (!out) throw Error(path + ": cannot create file");
  out.write(kMagic, 6);
  out.put(1);
  out.put(0);
  const uint16_t len = static_cast<uint16_t>(header.size());
  out.put(static_cast<char>(len & 0xff));
  out.put(static_cast<char>(len >> 8));
  out << header;
  out.write(reinterpret_cast<const char*>(tensor.data()), static_cast<std::streamsize>(tensor.size() * 4));
  if (!out) throw Error(path + ": write error");
}

}  // namespace sieve
