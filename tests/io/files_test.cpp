// PNG in memory and atomic file writes.

#include "sieve/io/files.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "sieve/error.hpp"
#include "sieve/io/image.hpp"
#include "support/test_files.hpp"

namespace fs = std::filesystem;

namespace sieve {
namespace {

TEST(EncodePng, DecodesToTheSamePixels) {
  for (int channels : {1, 3}) {
    Image image{5, 3, channels, {}};
    for (int i = 0; i < 5 * 3 * channels; ++i) image.pixels.push_back(static_cast<uint8_t>(i * 17));
    const std::string bytes = encode_png(image);
    EXPECT_EQ(bytes.substr(1, 3), "PNG");
    const fs::path file = temp("encoded_" + std::to_string(channels) + ".png");
    write_bytes(file, bytes);
    const Image back = read_image(file.string());
    EXPECT_EQ(back.width, 5);
    EXPECT_EQ(back.height, 3);
    EXPECT_EQ(back.channels, channels);
    EXPECT_EQ(back.pixels, image.pixels);
  }
  Image two_channels{1, 1, 2, {0, 0}};
  EXPECT_THROW(encode_png(two_channels), Error);
}

TEST(WriteFileAtomically, ReplacesTheFileAndLeavesNoTemporary) {
  const fs::path dir = temp("atomic");
  fs::create_directories(dir);
  const fs::path file = dir / "page.html";
  write_file_atomically(file.string(), "first");
  write_file_atomically(file.string(), "second");
  EXPECT_EQ(read_bytes(file), "second");
  EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator()), 1);
  try {
    write_file_atomically((dir / "missing" / "page.html").string(), "x");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("missing/page.html: cannot write file"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW(write_file_atomically(dir.string(), "x"), Error);
  EXPECT_EQ(read_bytes(file), "second");
}

}  // namespace
}  // namespace sieve
