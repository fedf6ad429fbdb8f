#include "sieve/io/npy.hpp"

#include <cstring>
#include <fstream>
#include <sstream>

#include "sieve/error.hpp"

namespace sieve {
namespace {

constexpr char kMagic[] = "\x93NUMPY";

size_t item_size(const std::string& descr) {
  if (descr == "<f4" || descr == "<i4") return 4;
  if (descr == "<f8" || descr == "<i8") return 8;
  if (descr == "|u1" || descr == "<u1") return 1;
  return 0;
}

float convert(const std::string& descr, const char* p) {
  if (descr == "<f4") {
    float v;
    std::memcpy(&v, p, 4);
    return v;
  }
  if (descr == "<f8") {
    double v;
    std::memcpy(&v, p, 8);
    return static_cast<float>(v);
  }
  if (descr == "<i4") {
    int32_t v;
    std::memcpy(&v, p, 4);
    return static_cast<float>(v);
  }
  if (descr == "<i8") {
    int64_t v;
    std::memcpy(&v, p, 8);
    return static_cast<float>(v);
  }
  return static_cast<float>(static_cast<uint8_t>(*p));
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

Tensor read_npy(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) throw Error(path + ": cannot open file");
  const int64_t file_size = static_cast<int64_t>(in.tellg());
  in.seekg(0);
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
  const int64_t data_start = 8 + len_size + static_cast<int64_t>(header_len);
  if (header_len > 65536 || data_start > file_size) throw Error(path + ": truncated or corrupt .npy header");
  std::string header(header_len, '\0');
  in.read(header.data(), header_len);

  const std::string descr = header_value(header, "descr", path);
  const size_t size = item_size(descr);
  if (size == 0) {
    throw Error(path + ": unsupported dtype '" + descr + "' (float32, float64, uint8, int32, int64 are read)");
  }
  const std::string order = header_value(header, "fortran_order", path);
  if (order == "True") throw Error(path + ": Fortran-ordered arrays are not supported (save with C order)");
  if (order != "False") throw Error(path + ": bad fortran_order '" + order + "' in the .npy header");
  Shape shape;
  std::stringstream dims(header_value(header, "shape", path));
  std::string item;
  while (std::getline(dims, item, ',')) {
    item.erase(0, item.find_first_not_of(" \t"));
    item.erase(item.find_last_not_of(" \tL") + 1);
    if (item.empty()) continue;
    if (item.find_first_not_of("0123456789") != std::string::npos || item.size() > 18) {
      throw Error(path + ": bad dimension '" + item + "' in the .npy header");
    }
    shape.push_back(std::stoll(item));
  }
  const int64_t count = checked_element_count(shape, path);
  if (file_size - data_start < count * static_cast<int64_t>(size)) {
    throw Error(path + ": truncated data: shape " + to_string(shape) + " needs " +
                std::to_string(count * static_cast<int64_t>(size)) + " bytes, the file has " +
                std::to_string(file_size - data_start));
  }
  std::string raw(static_cast<size_t>(count) * size, '\0');
  in.read(raw.data(), static_cast<std::streamsize>(raw.size()));
  Tensor t = Tensor::uninitialized(shape);
  for (int64_t i = 0; i < count; ++i) t[i] = convert(descr, raw.data() + static_cast<size_t>(i) * size);
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
