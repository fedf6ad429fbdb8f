#include "sieve/io/safetensors.hpp"

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "sieve/error.hpp"

using nlohmann::json;

namespace sieve {
namespace {

static_assert(std::endian::native == std::endian::little, "safetensors values are copied as little-endian");

// The reference implementation's limit; anything larger is a corrupt length, not a header.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;
constexpr char kMetadataKey[] = "__metadata__";
// Values are converted through a buffer of this many bytes.
constexpr size_t kChunkBytes = size_t{1} << 20;

// One tensor's entry in the header.
struct Entry {
  std::string name;
  bool float64 = true;
  Shape shape;
  uint64_t begin = 0, end = 0;
};

std::string quoted(const std::string& name) {
  return "tensor '" + name + "'";
}

uint64_t unsigned_value(const json& j, const std::string& what, const std::string& path) {
  if (!j.is_number_unsigned() || j.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) {
    throw Error(path + ": " + what + " must be a non-negative integer, not " + j.dump());
  }
  return j.get<uint64_t>();
}

Entry parse_entry(const std::string& name, const json& info, uint64_t buffer_size, const std::string& path) {
  const std::string where = path + ": " + quoted(name);
  if (!info.is_object()) throw Error(where + ": expected an object with dtype, shape and data_offsets");
  const auto field = [&](const char* key) -> const json& {
    const auto it = info.find(key);
    if (it == info.end()) throw Error(where + " has no \"" + key + "\"");
    return *it;
  };
  Entry e;
  e.name = name;
  const json& dtype = field("dtype");
  if (!dtype.is_string()) throw Error(where + ": dtype must be a string, not " + dtype.dump());
  if (dtype == "F64") {
    e.float64 = true;
  } else if (dtype == "F32") {
    e.float64 = false;
  } else {
    throw Error(where + " has dtype " + dtype.dump() + "; only F32 and F64 are read");
  }
  const json& shape = field("shape");
  if (!shape.is_array()) throw Error(where + ": shape must be an array, not " + shape.dump());
  for (const json& d : shape)
    e.shape.push_back(static_cast<int64_t>(unsigned_value(d, quoted(name) + " dimension", path)));
  const json& offsets = field("data_offsets");
  if (!offsets.is_array() || offsets.size() != 2) {
    throw Error(where + ": data_offsets must be [begin, end], not " + offsets.dump());
  }
  e.begin = unsigned_value(offsets[0], quoted(name) + " data offset", path);
  e.end = unsigned_value(offsets[1], quoted(name) + " data offset", path);
  if (e.begin > e.end || e.end > buffer_size) {
    throw Error(where + ": data_offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) +
                "] lie outside the data buffer of " + std::to_string(buffer_size) +
                " bytes (truncated or corrupt file)");
  }
  // At most kMaxTensorElements elements of 8 bytes, so the product cannot overflow.
  const uint64_t bytes = static_cast<uint64_t>(checked_element_count(e.shape, where)) * (e.float64 ? 8 : 4);
  if (bytes != e.end - e.begin) {
    throw Error(where + ": shape " + to_string(e.shape) + " of " + dtype.get<std::string>() + " needs " +
                std::to_string(bytes) + " bytes, data_offsets give " + std::to_string(e.end - e.begin));
  }
  return e;
}

// Throws unless the tensors tile the buffer exactly: sorted by offset, each starts where the previous
// one ends, the first at 0 and the last at the end of the buffer.
void check_layout(std::vector<Entry>& entries, uint64_t buffer_size, const std::string& path) {
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t expected = 0;
  const Entry* previous = nullptr;
  for (const Entry& e : entries) {
    if (e.begin < expected) {
      throw Error(path + ": " + quoted(e.name) + " overlaps " + quoted(previous->name) +
                  " in the data buffer");
    }
    if (e.begin > expected) {
      throw Error(path + ": a gap of " + std::to_string(e.begin - expected) + " bytes before " +
                  quoted(e.name) + " in the data buffer (tensors must be contiguous)");
    }
    expected = e.end;
    previous = &e;
  }
  if (expected != buffer_size) {
    throw Error(path + ": the tensors cover " + std::to_string(expected) + " bytes of a data buffer of " +
                std::to_string(buffer_size));
  }
}

}  // namespace

void write_safetensors(const std::string& path, const SafetensorsFile& file) {
  // F64 before F32 keeps every tensor aligned to its value size (the header length is a multiple of 8).
  std::vector<std::pair<const std::string*, const StoredTensor*>> order;
  for (const bool float64 : {true, false}) {
    for (const auto& [name, t] : file.tensors) {
      if (t.float64 == float64) order.emplace_back(&name, &t);
    }
  }
  json header = json::object();
  uint64_t offset = 0;
  for (const auto& [name, t] : order) {
    const std::string where = path + ": " + quoted(*name);
    if (*name == kMetadataKey) throw Error(where + ": the name is reserved for the metadata");
    const int64_t count = checked_element_count(t->shape, where);
    if (static_cast<int64_t>(t->values.size()) != count) {
      throw Error(where + ": shape " + to_string(t->shape) + " needs " + std::to_string(count) +
                  " values, it has " + std::to_string(t->values.size()));
    }
    const uint64_t bytes = static_cast<uint64_t>(count) * (t->float64 ? 8 : 4);
    header[*name] = {{"dtype", t->float64 ? "F64" : "F32"},
                     {"shape", t->shape},
                     {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  if (!file.metadata.empty()) header[kMetadataKey] = file.metadata;
  std::string text;
  try {
    text = header.dump();
  } catch (const json::exception& e) {
    throw Error(path + ": cannot write the safetensors header: " + e.what());
  }
  text.append((8 - text.size() % 8) % 8, ' ');

  std::ofstream out(path, std::ios::binary);
  if (!out) throw Error(path + ": cannot create file");
  char length[8];
  for (int i = 0; i < 8; ++i)
    length[i] = static_cast<char>((static_cast<uint64_t>(text.size()) >> (8 * i)) & 0xff);
  out.write(length, 8);
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  std::vector<char> buffer;
  for (const auto& [name, t] : order) {
    const size_t size = t->float64 ? 8 : 4, per_chunk = kChunkBytes / size;
    for (size_t done = 0; done < t->values.size();) {
      const size_t n = std::min(per_chunk, t->values.size() - done);
      buffer.resize(n * size);
      if (t->float64) {
        std::memcpy(buffer.data(), t->values.data() + done, n * size);
      } else {
        for (size_t i = 0; i < n; ++i) {
          const float v = static_cast<float>(t->values[done + i]);
          std::memcpy(buffer.data() + i * size, &v, size);
        }
      }
      out.write(buffer.data(), static_cast<std::streamsize>(buffer.size()));
      done += n;
    }
  }
  out.close();
  if (!out) throw Error(path + ": write error");
}

namespace {

// The JSON header after the 8-byte length, every size checked against the file before reading.
json read_header(std::ifstream& in, uint64_t file_size, const std::string& path, uint64_t& header_size) {
  unsigned char length[8];
  if (file_size < 8 || !in.read(reinterpret_cast<char*>(length), 8)) {
    throw Error(path + ": truncated safetensors file: " + std::to_string(file_size) +
                " bytes, shorter than the 8-byte header length");
  }
  header_size = 0;
  for (int i = 8; i-- > 0;) header_size = (header_size << 8) | length[i];
  if (header_size > kMaxHeaderBytes) {
    throw Error(path + ": safetensors header length " + std::to_string(header_size) +
                " is over the limit of 100 MB (not a safetensors file, or a corrupt one)");
  }
  if (header_size > file_size - 8) {
    throw Error(path + ": truncated safetensors header: " + std::to_string(header_size) +
                " bytes announced, " + std::to_string(file_size - 8) + " in the file");
  }
  std::string text(static_cast<size_t>(header_size), '\0');
  if (!in.read(text.data(), static_cast<std::streamsize>(text.size()))) {
    throw Error(path + ": truncated safetensors header");
  }
  if (text.empty() || text[0] != '{') {
    throw Error(path + ": corrupt safetensors header: it must be a JSON object starting with '{'");
  }
  json header;
  try {
    header = json::parse(text);
  } catch (const json::exception& e) {
    throw Error(path + ": corrupt safetensors header: " + e.what());
  }
  if (!header.is_object()) throw Error(path + ": corrupt safetensors header: not a JSON object");
  return header;
}

std::map<std::string, std::string> read_metadata(const json& info, const std::string& path) {
  if (!info.is_object()) throw Error(path + ": __metadata__ must be an object of strings");
  std::map<std::string, std::string> metadata;
  for (const auto& [key, value] : info.items()) {
    if (!value.is_string()) {
      throw Error(path + ": __metadata__ value of '" + key + "' must be a string, not " + value.dump());
    }
    metadata[key] = value.get<std::string>();
  }
  return metadata;
}

// The values of one checked entry, read in chunks and widened to double.
void read_values(std::ifstream& in, uint64_t data_start, const Entry& e, const std::string& path,
                 StoredTensor& t) {
  t.shape = e.shape;
  t.float64 = e.float64;
  const uint64_t size = e.float64 ? 8 : 4, count = (e.end - e.begin) / size;
  t.values.resize(static_cast<size_t>(count));
  in.seekg(static_cast<std::streamoff>(data_start + e.begin));
  const uint64_t per_chunk = kChunkBytes / size;
  std::vector<char> buffer;
  for (uint64_t done = 0; done < count;) {
    const uint64_t n = std::min(per_chunk, count - done);
    buffer.resize(static_cast<size_t>(n * size));
    if (!in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()))) {
      throw Error(path + ": truncated data in " + quoted(e.name));
    }
    if (e.float64) {
      std::memcpy(t.values.data() + done, buffer.data(), buffer.size());
    } else {
      for (uint64_t i = 0; i < n; ++i) {
        float v;
        std::memcpy(&v, buffer.data() + i * size, sizeof v);
        t.values[static_cast<size_t>(done + i)] = v;
      }
    }
    done += n;
  }
}

}  // namespace

SafetensorsFile read_safetensors(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) throw Error(path + ": cannot open file");
  const auto end_position = in.tellg();
  if (end_position < 0) throw Error(path + ": cannot read file");
  const uint64_t file_size = static_cast<uint64_t>(end_position);
  in.seekg(0);
  uint64_t header_size = 0;
  const json header = read_header(in, file_size, path, header_size);

  const uint64_t data_start = 8 + header_size, buffer_size = file_size - data_start;
  SafetensorsFile file;
  std::vector<Entry> entries;
  for (const auto& [name, info] : header.items()) {
    if (name == kMetadataKey) {
      file.metadata = read_metadata(info, path);
    } else {
      entries.push_back(parse_entry(name, info, buffer_size, path));
    }
  }
  check_layout(entries, buffer_size, path);
  // Every byte range now lies inside the file, so the allocations are bounded by its size.
  for (const Entry& e : entries) read_values(in, data_start, e, path, file.tensors[e.name]);
  return file;
}

}  // namespace sieve
