#include "sieve/io/formats.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "support/test_files.hpp"

namespace fs = std::filesystem;
using namespace std::string_view_literals;

namespace sieve {
namespace {

TEST(DataFormats, LeadingBytesTellTheFormat) {
  EXPECT_EQ(format_of_bytes("\x93NUMPY\x01\x00"sv), DataFormat::npy);
  EXPECT_EQ(format_of_bytes("\x89PNG\r\n\x1a\n"sv), DataFormat::png);
  EXPECT_EQ(format_of_bytes("\xff\xd8\xff\xe0"sv), DataFormat::jpeg);
  EXPECT_EQ(format_of_bytes("\x00\x00\x08\x03"sv), DataFormat::idx);      // unsigned bytes, rank 3
  EXPECT_EQ(format_of_bytes("\x1f\x8b\x08\x00"sv), DataFormat::idx);      // gzip'ed IDX
  EXPECT_EQ(format_of_bytes("\x00\x00\x07\x03"sv), DataFormat::unknown);  // no IDX type 0x07
  EXPECT_EQ(format_of_bytes("\x00\x00\x08\x00"sv), DataFormat::unknown);  // rank 0
  EXPECT_EQ(format_of_bytes("\x89PN"sv), DataFormat::unknown);            // too short
  EXPECT_EQ(format_of_bytes("text"sv), DataFormat::unknown);
}

TEST(DataFormats, ContentComesBeforeTheExtension) {
  const fs::path dir = temp("formats");
  fs::create_directories(dir);
  auto write = [&](const std::string& name, std::string_view bytes) {
    std::ofstream(dir / name, std::ios::binary)
        .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    return (dir / name).string();
  };
  // A PNG named .npy is a PNG; a damaged .npy still goes to the .npy reader, which says what is wrong.
  EXPECT_EQ(format_of_file(write("image.npy", "\x89PNG\r\n\x1a\n...."sv)), DataFormat::png);
  EXPECT_EQ(format_of_file(write("broken.npy", "garbage"sv)), DataFormat::npy);
  EXPECT_EQ(format_of_content((dir / "broken.npy").string()), DataFormat::unknown);
  EXPECT_EQ(format_of_file(write("labels-idx1-ubyte", "xx"sv)), DataFormat::idx);
  EXPECT_EQ(format_of_file(write("photo.jpeg", ""sv)), DataFormat::jpeg);
  EXPECT_EQ(format_of_file(write("notes.txt", "hello"sv)), DataFormat::unknown);
  EXPECT_EQ(format_of_file((dir / "missing.bin").string()), DataFormat::unknown);
}

}  // namespace
}  // namespace sieve
