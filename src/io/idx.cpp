#include "sieve/io/idx.hpp"

#include <zlib.h>

#include <cstring>
#include <memory>

#include "sieve/error.hpp"

namespace sieve {
namespace {

// Reads through zlib, which passes uncompressed files through unchanged.
class Reader {
 public:
  explicit Reader(const std::string& path) : path_(path), file_(gzopen(path.c_str(), "rb"), gzclose) {
    if (!file_) throw Error(path + ": cannot open file");
  }
  void read(void* into, size_t bytes) {
    auto* p = static_cast<char*>(into);
    while (bytes > 0) {
      const unsigned chunk = static_cast<unsigned>(std::min<size_t>(bytes, 1u << 30));
      const int got = gzread(file_.get(), p, chunk);
      if (got <= 0) {
        int code = 0;
        const char* message = gzerror(file_.get(), &code);
        throw Error(path_ + ": truncated or corrupt IDX file" +
                    (code < 0 ? std::string(" (") + message + ")" : ""));
      }
      p += got;
      bytes -= static_cast<size_t>(got);
    }
  }

 private:
  std::string path_;
  std::unique_ptr<gzFile_s, int (*)(gzFile)> file_;
};

uint32_t big_endian(const unsigned char* b) {
  return (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) | (uint32_t{b[2]} << 8) | b[3];
}

}  // namespace

Tensor read_idx(const std::string& path) {
  Reader in(path);
  unsigned char magic[4];
  in.read(magic, 4);
  const int type = magic[2], ndims = magic[3];
  size_t size = 0;
  switch (type) {
    case 0x08:
    case 0x09:
      size = 1;
      break;
    case 0x0B:
      size = 2;
      break;
    case 0x0C:
    case 0x0D:
      size = 4;
      break;
    case 0x0E:
      size = 8;
      break;
    default:
      break;
  }
  if (magic[0] != 0 || magic[1] != 0 || size == 0 || ndims < 1 || ndims > 8) {
    throw Error(path + ": not an IDX file (bad magic number)");
  }
  Shape shape;
  for (int i = 0; i < ndims; ++i) {
    unsigned char b[4];
    in.read(b, 4);
    shape.push_back(big_endian(b));
  }
  const int64_t count = checked_element_count(shape, path);
  std::vector<unsigned char> raw(static_cast<size_t>(count) * size);
  in.read(raw.data(), raw.size());
  Tensor t = Tensor::uninitialized(shape);
  for (int64_t i = 0; i < count; ++i) {
    const unsigned char* p = raw.data() + static_cast<size_t>(i) * size;
    switch (type) {
      case 0x08:
        t[i] = p[0];
        break;
      case 0x09:
        t[i] = static_cast<int8_t>(p[0]);
        break;
      case 0x0B:
        t[i] = static_cast<int16_t>((p[0] << 8) | p[1]);
        break;
      case 0x0C:
        t[i] = static_cast<float>(static_cast<int32_t>(big_endian(p)));
        break;
      case 0x0D: {
        const uint32_t bits = big_endian(p);
        float v;
        std::memcpy(&v, &bits, 4);
        t[i] = v;
        break;
      }
      default: {
        uint64_t bits = 0;
        for (int k = 0; k < 8; ++k) bits = (bits << 8) | p[k];
        double v;
        std::memcpy(&v, &bits, 8);
        t[i] = static_cast<float>(v);
      }
    }
  }
  return t;
}

}  // namespace sieve
