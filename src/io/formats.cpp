#include "sieve/io/formats.hpp"

#include <fstream>

namespace sieve {
namespace {

bool starts_with(std::string_view head, std::string_view magic) {
  return head.substr(0, magic.size()) == magic;
}

bool is_idx_header(std::string_view head) {
  if (head.size() < 4 || head[0] != 0 || head[1] != 0) return false;
  const auto type = static_cast<unsigned char>(head[2]), rank = static_cast<unsigned char>(head[3]);
  const bool known_type = type == 0x08 || type == 0x09 || (type >= 0x0B && type <= 0x0E);
  return known_type && rank >= 1 && rank <= 8;
}

DataFormat format_of_name(const std::string& path) {
  if (path.ends_with(".npy")) return DataFormat::npy;
  if (path.ends_with("-ubyte") || path.ends_with(".idx") || path.ends_with(".gz")) return DataFormat::idx;
  if (path.ends_with(".png")) return DataFormat::png;
  if (path.ends_with(".jpg") || path.ends_with(".jpeg")) return DataFormat::jpeg;
  return DataFormat::unknown;
}

}  // namespace

DataFormat format_of_bytes(std::string_view head) {
  using namespace std::string_view_literals;
  if (starts_with(head, "\x93NUMPY"sv)) return DataFormat::npy;
  if (starts_with(head, "\x89PNG\r\n\x1a\n"sv)) return DataFormat::png;
  if (starts_with(head, "\xff\xd8\xff"sv)) return DataFormat::jpeg;
  if (starts_with(head, "\x1f\x8b"sv) || is_idx_header(head)) return DataFormat::idx;
  return DataFormat::unknown;
}

DataFormat format_of_content(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char head[8] = {};
  in.read(head, sizeof head);
  return format_of_bytes(std::string_view(head, static_cast<size_t>(in.gcount())));
}

DataFormat format_of_file(const std::string& path) {
  const DataFormat by_content = format_of_content(path);
  return by_content != DataFormat::unknown ? by_content : format_of_name(path);
}

bool is_image_format(DataFormat format) {
  return format == DataFormat::png || format == DataFormat::jpeg;
}

}  // namespace sieve
