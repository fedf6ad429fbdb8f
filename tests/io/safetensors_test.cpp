// safetensors: round trips, the byte layout of the Hugging Face spec, and one sieve::Error (never a
// crash) for every kind of broken file.

#include "sieve/io/safetensors.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <numbers>

#include "sieve/error.hpp"
#include "support/test_files.hpp"

namespace fs = std::filesystem;
using nlohmann::json;

namespace sieve {
namespace {

std::string le64(uint64_t v) {
  std::string s;
  for (int i = 0; i < 8; ++i) s += static_cast<char>((v >> (8 * i)) & 0xff);
  return s;
}

std::string bytes(std::initializer_list<unsigned char> b) {
  return std::string(b.begin(), b.end());
}

// A file from its header text and data buffer, as the spec lays it out.
std::string safetensors(const std::string& header, const std::string& data) {
  return le64(header.size()) + header + data;
}

void expect_error(const std::function<void()>& f, const std::string& fragment) {
  try {
    f();
    ADD_FAILURE() << "no error, expected '" << fragment << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}

// Reads `content` written to a file and expects a sieve::Error naming the file with `fragment`.
void expect_read_error(const std::string& content, const std::string& fragment) {
  const std::string path = temp("broken.safetensors").string();
  write_bytes(path, content);
  try {
    read_safetensors(path);
    ADD_FAILURE() << "no error, expected '" << fragment << "'";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_EQ(message.rfind(path + ": ", 0), 0u) << message;
    EXPECT_NE(message.find(fragment), std::string::npos) << message;
  }
}

TEST(Safetensors, RoundTrip) {
  SafetensorsFile file;
  file.tensors["weights"] = {{2, 3}, {1.0, -2.5, std::numbers::pi, 1e-300, -0.0, 1e300}, true};
  file.tensors["bias"] = {{3}, {0.1, -7.0, 65504.0}, false};
  file.tensors["scalar64"] = {{}, {std::exp(1.0)}, true};
  file.tensors["scalar32"] = {{}, {-0.75}, false};
  file.tensors["empty64"] = {{0, 4}, {}, true};
  file.tensors["empty32"] = {{3, 0}, {}, false};
  file.tensors["odd"] = {{1, 3}, {1, 2, 3}, false};  // 12 bytes: F64 tensors still come first, aligned
  file.metadata = {{"format", "sieve"}, {"größe", "naïve ✓"}, {"empty", ""}};
  const std::string path = temp("round.safetensors").string();
  write_safetensors(path, file);
  const SafetensorsFile back = read_safetensors(path);
  EXPECT_EQ(back.metadata, file.metadata);
  ASSERT_EQ(back.tensors.size(), file.tensors.size());
  for (const auto& [name, t] : file.tensors) {
    SCOPED_TRACE(name);
    ASSERT_EQ(back.tensors.count(name), 1u);
    const StoredTensor& b = back.tensors.at(name);
    EXPECT_EQ(b.shape, t.shape);
    EXPECT_EQ(b.float64, t.float64);
    ASSERT_EQ(b.values.size(), t.values.size());
    for (size_t i = 0; i < t.values.size(); ++i) {
      const double expected = t.float64 ? t.values[i] : static_cast<double>(static_cast<float>(t.values[i]));
      EXPECT_EQ(std::memcmp(&b.values[i], &expected, 8), 0) << i << ": " << b.values[i] << " vs " << expected;
    }
  }
  // No metadata: no "__metadata__" entry, and it reads back empty.
  write_safetensors(path, SafetensorsFile{{{"x", {{1}, {2.0}, true}}}, {}});
  EXPECT_EQ(read_bytes(path).find("__metadata__"), std::string::npos);
  EXPECT_TRUE(read_safetensors(path).metadata.empty());
  // Nothing at all: an empty header object.
  write_safetensors(path, {});
  EXPECT_TRUE(read_safetensors(path).tensors.empty());
}

TEST(Safetensors, WritesTheSpecLayout) {
  SafetensorsFile file;
  file.tensors["b"] = {{}, {0.5}, false};
  file.tensors["a"] = {{2}, {1.0, -2.0}, true};
  file.metadata["k"] = "v";
  const std::string path = temp("layout.safetensors").string();
  write_safetensors(path, file);
  const std::string content = read_bytes(path);
  ASSERT_GE(content.size(), 8u);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(content[static_cast<size_t>(i)]);
  EXPECT_EQ(n % 8, 0u);
  ASSERT_EQ(content.size(), 8 + n + 16 + 4);
  const std::string header = content.substr(8, n);
  EXPECT_EQ(header.front(), '{');
  const size_t close = header.find_last_of('}');
  EXPECT_EQ(header.find_first_not_of(' ', close + 1), std::string::npos) << "padding must be spaces";
  EXPECT_LT(header.size() - close - 1, 8u);
  const json j = json::parse(header);
  EXPECT_EQ(j.size(), 3u);
  EXPECT_EQ(j.at("a")["dtype"], "F64");
  EXPECT_EQ(j.at("a")["shape"], json::array({2}));
  EXPECT_EQ(j.at("a")["data_offsets"], json::array({0, 16}));
  EXPECT_EQ(j.at("b")["dtype"], "F32");
  EXPECT_EQ(j.at("b")["shape"], json::array());
  EXPECT_EQ(j.at("b")["data_offsets"], json::array({16, 20}));
  EXPECT_EQ(j.at("__metadata__"), json({{"k", "v"}}));
  // Little-endian IEEE 754: 1.0, -2.0 as doubles, then 0.5 as a float.
  EXPECT_EQ(content.substr(8 + n),
            bytes({0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0, 0, 0, 0, 0, 0, 0, 0xc0, 0, 0, 0, 0x3f}));
}

TEST(Safetensors, ReadsAFileBuiltByHandFromTheSpec) {
  // Offsets out of name order, a header without padding, metadata first.
  const std::string header =
      R"({"__metadata__":{"format":"pt"},"x":{"dtype":"F32","shape":[2,2],"data_offsets":[16,32]},)"
      R"("y":{"dtype":"F64","shape":[2],"data_offsets":[0,16]}})";
  const std::string data = bytes({0, 0, 0,    0,    0, 0, 0xf8, 0x3f,  // 1.5
                                  0, 0, 0,    0,    0, 0, 0xd0, 0xbf,  // -0.25
                                  0, 0, 0x80, 0x3f,                    // 1
                                  0, 0, 0,    0x40,                    // 2
                                  0, 0, 0x40, 0xc0,                    // -3
                                  0, 0, 0,    0x3e});                  // 0.125
  for (const std::string& padding : {std::string(), std::string(5, ' ')}) {
    const std::string path = temp("by_hand.safetensors").string();
    write_bytes(path, safetensors(header + padding, data));
    const SafetensorsFile f = read_safetensors(path);
    EXPECT_EQ(f.metadata, (std::map<std::string, std::string>{{"format", "pt"}}));
    ASSERT_EQ(f.tensors.size(), 2u);
    EXPECT_EQ(f.tensors.at("y").shape, (Shape{2}));
    EXPECT_TRUE(f.tensors.at("y").float64);
    EXPECT_EQ(f.tensors.at("y").values, (std::vector<double>{1.5, -0.25}));
    EXPECT_EQ(f.tensors.at("x").shape, (Shape{2, 2}));
    EXPECT_FALSE(f.tensors.at("x").float64);
    EXPECT_EQ(f.tensors.at("x").values, (std::vector<double>{1, 2, -3, 0.125}));
  }
}

TEST(Safetensors, BrokenFilesGiveAnErrorNamingTheFile) {
  const std::string f64x2 = std::string(16, '\0');
  const auto entry = [](const std::string& name, const std::string& dtype, const std::string& shape,
                        const std::string& offsets) {
    return "\"" + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape +
           ",\"data_offsets\":" + offsets + "}";
  };
  expect_error([] { read_safetensors(temp("missing.safetensors").string()); }, "cannot open");
  expect_read_error("", "truncated");
  expect_read_error(std::string("\x10\x00\x00", 3), "truncated");
  expect_read_error(le64(64) + "{\"a\":", "truncated safetensors header");
  expect_read_error(le64(uint64_t{200'000'000}) + "{}", "over the limit of 100 MB");
  expect_read_error(le64(~uint64_t{0}) + "{}", "over the limit of 100 MB");
  expect_read_error(safetensors("{\"a\": {\"dtype\": ", ""), "corrupt safetensors header");
  expect_read_error(safetensors("{}garbage", ""), "corrupt safetensors header");
  expect_read_error(safetensors("[1, 2]", ""), "corrupt safetensors header");
  expect_read_error(safetensors("  {}", ""), "corrupt safetensors header");
  expect_read_error(safetensors(std::string("{\"a\xff\": 1}"), ""), "corrupt safetensors header");
  expect_read_error(safetensors("", ""), "corrupt safetensors header");
  expect_read_error(safetensors("{" + entry("a", "F64", "[2]", "[0,16]") + "}", f64x2.substr(0, 12)),
                    "outside the data buffer");  // truncated data
  expect_read_error(safetensors("{" + entry("a", "F64", "[2]", "[0,1000]") + "}", f64x2),
                    "outside the data buffer");
  expect_read_error(safetensors("{" + entry("a", "F64", "[2]", "[16,0]") + "}", f64x2),
                    "outside the data buffer");
  expect_read_error(safetensors("{" + entry("a", "I8", "[16]", "[0,16]") + "}", f64x2), "dtype \"I8\"");
  expect_read_error(safetensors("{" + entry("a", "F16", "[8]", "[0,16]") + "}", f64x2), "only F32 and F64");
  expect_read_error(safetensors("{" + entry("a", "F64", "[3]", "[0,16]") + "}", f64x2), "needs 24 bytes");
  expect_read_error(safetensors("{" + entry("a", "F32", "[2]", "[0,16]") + "}", f64x2), "needs 8 bytes");
  expect_read_error(safetensors("{" + entry("a", "F64", "[-2]", "[0,16]") + "}", f64x2),
                    "non-negative integer");
  expect_read_error(safetensors("{" + entry("a", "F64", "[2.5]", "[0,16]") + "}", f64x2),
                    "non-negative integer");
  expect_read_error(safetensors("{" + entry("a", "F64", "2", "[0,16]") + "}", f64x2),
                    "shape must be an array");
  expect_read_error(safetensors("{" + entry("a", "F64", "[2]", "[0]") + "}", f64x2), "data_offsets");
  expect_read_error(safetensors("{" + entry("a", "F64", "[2]", "[0,-16]") + "}", f64x2),
                    "non-negative integer");
  expect_read_error(safetensors("{" + entry("a", "F64", "[4294967296,4294967296]", "[0,16]") + "}", f64x2),
                    "elements");
  expect_read_error(safetensors("{" + entry("a", "F64", "[18446744073709551615]", "[0,16]") + "}", f64x2),
                    "non-negative integer");
  expect_read_error(safetensors(R"({"a":{"dtype":"F64","data_offsets":[0,16]}})", f64x2), "no \"shape\"");
  expect_read_error(safetensors(R"({"a":[1,2]})", f64x2), "expected an object");
  expect_read_error(safetensors(R"({"__metadata__":{"k":1}})", ""), "must be a string");
  expect_read_error(safetensors(R"({"__metadata__":[]})", ""), "__metadata__ must be an object");
  // Offsets that do not tile the buffer: overlapping, a gap, bytes left over, a duplicate name.
  expect_read_error(
      safetensors("{" + entry("a", "F64", "[2]", "[0,16]") + "," + entry("b", "F64", "[2]", "[8,24]") + "}",
                  std::string(24, '\0')),
      "overlaps");
  expect_read_error(
      safetensors("{" + entry("a", "F64", "[1]", "[0,8]") + "," + entry("b", "F64", "[1]", "[16,24]") + "}",
                  std::string(24, '\0')),
      "gap of 8 bytes");
  expect_read_error(safetensors("{" + entry("a", "F64", "[2]", "[0,16]") + "}", std::string(20, '\0')),
                    "cover 16 bytes of a data buffer of 20");
  expect_read_error(
      safetensors("{" + entry("a", "F64", "[1]", "[0,8]") + "," + entry("a", "F64", "[1]", "[8,16]") + "}",
                  f64x2),
      "gap of 8 bytes");  // the last "a" wins, so nothing starts at 0
}

TEST(Safetensors, WriteRefusesInconsistentTensors) {
  const std::string path = temp("refused.safetensors").string();
  SafetensorsFile file;
  file.tensors["a"] = {{2, 2}, {1, 2, 3}, true};
  expect_error([&] { write_safetensors(path, file); }, "needs 4 values");
  file.tensors["a"] = {{-1}, {}, true};
  expect_error([&] { write_safetensors(path, file); }, "negative dimension");
  file.tensors.clear();
  file.tensors["__metadata__"] = {{}, {1}, true};
  expect_error([&] { write_safetensors(path, file); }, "reserved");
  expect_error([&] { write_safetensors((temp("no_such_dir") / "x.safetensors").string(), {}); },
               "cannot create");
}

TEST(Safetensors, EveryTruncationAndByteFlipIsAnErrorOrAValidRead) {
  SafetensorsFile file;
  file.tensors["w"] = {{2, 2}, {1, -2, 3, -4}, true};
  file.tensors["v"] = {{3}, {0.5, 0.25, 0.125}, false};
  file.metadata["note"] = "x";
  const std::string path = temp("fuzz.safetensors").string();
  write_safetensors(path, file);
  const std::string good = read_bytes(path);
  // Each variant goes to a new file: rewriting one file over and over makes ext4 flush it every time.
  int variant = 0;
  const auto read_variant = [&](const std::string& content) {
    const fs::path p = temp("fuzz_" + std::to_string(variant++) + ".safetensors");
    write_bytes(p, content);
    struct Remove {
      fs::path p;
      ~Remove() { fs::remove(p); }
    } remove{p};
    read_safetensors(p.string());
  };
  for (size_t size = 0; size < good.size(); ++size) {
    EXPECT_THROW(read_variant(good.substr(0, size)), Error) << "truncated to " << size;
  }
  for (size_t i = 0; i < good.size(); ++i) {
    for (unsigned char flip : {0x01, 0x20, 0x80, 0xff}) {
      std::string bad = good;
      bad[i] = static_cast<char>(bad[i] ^ flip);
      try {
        read_variant(bad);  // a flipped value byte still reads
      } catch (const Error&) {
      } catch (const std::exception& e) {
        ADD_FAILURE() << "byte " << i << " ^ " << int{flip} << ": not a sieve::Error: " << e.what();
      }
    }
  }
}

}  // namespace
}  // namespace sieve
