// Reading and writing inputs: .npy, PNG, JPEG, IDX, preprocessing, profiles and the input loader.

#include <gtest/gtest.h>
#include <turbojpeg.h>
#include <unistd.h>
#include <zlib.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "sieve/error.hpp"
#include "sieve/io/idx.hpp"
#include "sieve/io/image.hpp"
#include "sieve/io/inputs.hpp"
#include "sieve/io/npy.hpp"
#include "sieve/io/preprocess.hpp"
#include "sieve/io/profile.hpp"
#include "support/test_files.hpp"

namespace fs = std::filesystem;

namespace sieve {
namespace {

template <class T>
std::string raw(const std::vector<T>& values) {
  return std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(T));
}

void expect_error(const std::function<void()>& f, const std::string& fragment) {
  try {
    f();
    ADD_FAILURE() << "no error, expected '" << fragment << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}

TEST(Npy, RoundTripAndDtypes) {
  Tensor t(Shape{2, 3}, std::vector<float>{1, -2, 3.5f, 4, 5, 6});
  write_npy(temp("t.npy").string(), t);
  const Tensor back = read_npy(temp("t.npy").string());
  EXPECT_EQ(back.shape(), t.shape());
  for (int64_t i = 0; i < 6; ++i) EXPECT_EQ(back[i], t[i]);
  write_bytes(temp("f8.npy"),
              npy("{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }", raw<double>({1.5, -2, 3})));
  EXPECT_EQ(read_npy(temp("f8.npy").string())[1], -2.0f);
  write_bytes(temp("u1.npy"), npy("{'descr': '|u1', 'fortran_order': False, 'shape': (2, 2), }",
                                  std::string("\x00\x7f\x80\xff", 4)));
  EXPECT_EQ(read_npy(temp("u1.npy").string())[3], 255.0f);
  write_bytes(temp("i8.npy"),
              npy("{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }", raw<int64_t>({-7, 9})));
  EXPECT_EQ(read_npy(temp("i8.npy").string())[0], -7.0f);
  write_bytes(temp("scalar.npy"),
              npy("{'descr': '<f4', 'fortran_order': False, 'shape': (), }", raw<float>({2.5f})));
  EXPECT_EQ(read_npy(temp("scalar.npy").string()).rank(), 0);
}

TEST(Npy, CorruptFilesAreRefused) {
  const std::string path = temp("bad.npy").string();
  write_bytes(path, npy("{'descr': '<f4', 'fortran_order': False, 'shape': (16, 1, 28, 28), }",
                        std::string(100, '\0')));
  expect_error([&] { read_npy(path); }, "truncated data");
  write_bytes(path, npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1099511627776,), }", ""));
  expect_error([&] { read_npy(path); }, "elements");
  write_bytes(path, npy("{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }", raw<float>({1, 2})));
  expect_error([&] { read_npy(path); }, "Fortran");
  write_bytes(path, npy("{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }", std::string(8, '\0')));
  expect_error([&] { read_npy(path); }, "unsupported dtype '<c8'");
  write_bytes(path, "just some text");
  expect_error([&] { read_npy(path); }, "not a .npy file");
  expect_error([&] { read_npy(temp("missing.npy").string()); }, "cannot open");
}

Image gradient_image(int w, int h, int channels) {
  Image img{w, h, channels, {}};
  for (int i = 0; i < w * h * channels; ++i) img.pixels.push_back(static_cast<uint8_t>((i * 7) % 256));
  return img;
}

TEST(Images, PngRoundTripAndJpegDecoding) {
  const Image rgb = gradient_image(5, 4, 3);
  write_png(temp("rgb.png").string(), rgb);
  const Image back = read_image(temp("rgb.png").string());
  EXPECT_EQ(back.width, 5);
  EXPECT_EQ(back.channels, 3);
  EXPECT_EQ(back.pixels, rgb.pixels);

  const Image gray(Image{16, 8, 1, std::vector<uint8_t>(128, 200)});
  unsigned char* jpeg = nullptr;
  unsigned long size = 0;
  tjhandle tj = tjInitCompress();
  ASSERT_EQ(tjCompress2(tj, gray.pixels.data(), 16, 0, 8, TJPF_GRAY, &jpeg, &size, TJSAMP_GRAY, 95, 0), 0);
  write_bytes(temp("gray.jpg"), std::string(reinterpret_cast<char*>(jpeg), size));
  write_bytes(temp("truncated.jpg"), std::string(reinterpret_cast<char*>(jpeg), size / 2));
  tjFree(jpeg);
  tjDestroy(tj);
  const Image decoded = read_image(temp("gray.jpg").string());
  EXPECT_EQ(decoded.width, 16);
  EXPECT_EQ(decoded.channels, 1);
  // Not float rounding: JPEG quantizes the DCT coefficients (quality 95), so a flat block decodes to
  // within a couple of 8-bit levels.
  EXPECT_NEAR(decoded.pixels[40], 200, 2);
  expect_error([&] { read_image(temp("truncated.jpg").string()); }, "corrupt JPEG");
  const std::string png = std::string(
      std::istreambuf_iterator<char>(std::ifstream(temp("rgb.png"), std::ios::binary).rdbuf()), {});
  write_bytes(temp("cut.png"), png.substr(0, png.size() / 2));
  expect_error([&] { read_image(temp("cut.png").string()); }, "corrupt PNG");
}

TEST(Images, BilinearResize) {
  Image img{2, 1, 1, {0, 200}};
  const Image wide = resize_bilinear(img, 4, 1);
  EXPECT_EQ(wide.pixels, (std::vector<uint8_t>{0, 50, 150, 200}));
}

TEST(Preprocessing, NormalizesAndConvertsColors) {
  Preprocessing p;
  p.scale = 1.0f / 255.0f;
  p.mean = {0.5f, 0.25f, 0.0f};
  p.std = {0.5f, 0.25f, 1.0f};
  const Image img{1, 1, 3, {255, 0, 51}};
  const Tensor rgb = image_to_tensor(img, p, 3, 1, 1);
  // (v·scale − mean) / std: three float32 operations, each rounded by at most u = 2⁻²⁴ of its result,
  // within EXPECT_FLOAT_EQ's 4 ulps of the exact value (no cancellation: |result| ≥ |v·scale − mean|/std).
  EXPECT_FLOAT_EQ(rgb[0], 1.0f);
  EXPECT_FLOAT_EQ(rgb[1], -1.0f);
  EXPECT_FLOAT_EQ(rgb[2], 0.2f);
  p.color = ColorOrder::bgr;
  const Tensor bgr = image_to_tensor(img, p, 3, 1, 1);
  EXPECT_FLOAT_EQ(bgr[0], (51.0f / 255.0f - 0.5f) / 0.5f);
  Preprocessing g;
  g.color = ColorOrder::grayscale;
  // A weighted sum of three channels and a scaling in float32 on values ≤ 1: off by a few u ≈ 1e-7.
  EXPECT_NEAR(image_to_tensor(img, g, 1, 1, 1)[0], (0.299f * 255 + 0.114f * 51) / 255.0f, 1e-5);
  EXPECT_THROW(image_to_tensor(img, g, 3, 1, 1), Error);
  const InputRange range = input_range(p, 3);
  EXPECT_FLOAT_EQ(range.low[0], -1.0f);
  EXPECT_FLOAT_EQ(range.high[1], 3.0f);
}

void write_idx(const fs::path& p, const std::string& content, bool gzip) {
  if (!gzip) {
    write_bytes(p, content);
    return;
  }
  gzFile f = gzopen(p.string().c_str(), "wb");
  gzwrite(f, content.data(), static_cast<unsigned>(content.size()));
  gzclose(f);
}

TEST(Idx, PlainAndGzip) {
  std::string content("\x00\x00\x08\x03\x00\x00\x00\x02\x00\x00\x00\x02\x00\x00\x00\x03", 16);
  for (int i = 0; i < 12; ++i) content += static_cast<char>(i * 20);
  for (bool gzip : {false, true}) {
    const fs::path p = temp(gzip ? "images-ubyte.gz" : "images-ubyte");
    write_idx(p, content, gzip);
    const Tensor t = read_idx(p.string());
    EXPECT_EQ(t.shape(), (Shape{2, 2, 3}));
    EXPECT_EQ(t[11], 220.0f);
  }
  write_idx(temp("short-ubyte"), content.substr(0, 20), false);
  expect_error([&] { read_idx(temp("short-ubyte").string()); }, "truncated");
  write_idx(temp("bad-ubyte"), "PK\x03\x04 not idx", false);
  expect_error([&] { read_idx(temp("bad-ubyte").string()); }, "bad magic");
}

TEST(Profile, ReadsAndRejectsUnknownKeys) {
  write_bytes(temp("m.onnx.json"), R"({"description": "d", "class_names": ["a", "b"],
    "preprocessing": {"color": "grayscale", "scale": 0.5, "mean": [1], "std": [2], "raw_range": [0, 10]}})");
  const auto profile = find_profile(temp("m.onnx").string());
  ASSERT_TRUE(profile.has_value());
  EXPECT_EQ(profile->class_names.size(), 2u);
  EXPECT_EQ(profile->preprocessing->color, ColorOrder::grayscale);
  EXPECT_FLOAT_EQ(profile->preprocessing->raw_high, 10.0f);  // an integer read from JSON: exact
  write_bytes(temp("typo.json"), R"({"preprocesing": {}})");
  expect_error([&] { read_profile(temp("typo.json").string()); }, "unknown key 'preprocesing'");
  write_bytes(temp("type.json"), R"({"class_names": 3})");
  expect_error([&] { read_profile(temp("type.json").string()); }, "type.json");
  EXPECT_FALSE(find_profile(temp("none.onnx").string()).has_value());
}

TEST(Inputs, SplitsBatchesReadsDirectoriesAndRejectsNaN) {
  write_npy(temp("batch.npy").string(), Tensor(Shape{3, 1, 2, 2}, 0.5f));
  write_npy(temp("one.npy").string(), Tensor(Shape{1, 2, 2}, 0.25f));
  const auto loaded = load_inputs({temp("batch.npy").string(), temp("one.npy").string()}, {}, {-1, 1, 2, 2});
  ASSERT_EQ(loaded.size(), 4u);
  EXPECT_EQ(loaded[1].name, temp("batch.npy").string() + "[1]");
  EXPECT_EQ(loaded[3].tensor.shape(), (Shape{1, 1, 2, 2}));
  expect_error(
      [&] {
        load_inputs({temp("batch.npy").string()}, {}, {1, 3, 2, 2});
      },
      "does not fit the model input");

  const fs::path dir = temp("images");
  fs::create_directories(dir);
  write_png((dir / "b.png").string(), gradient_image(4, 4, 3));
  write_png((dir / "a.png").string(), gradient_image(8, 8, 3));
  write_bytes(dir / "notes.txt", "not an image");
  // A file that is not an image is an error naming it, unless unreadable files are skipped.
  expect_error([&] { load_inputs({dir.string()}, {}, {1, 3, 4, 4}); }, (dir / "notes.txt").string());
  UnreadableFiles unreadable;
  unreadable.skip = true;
  const auto images = load_inputs({dir.string()}, {}, {1, 3, 4, 4}, &unreadable);
  EXPECT_EQ(unreadable.skipped, std::vector<std::string>{(dir / "notes.txt").string()});
  ASSERT_EQ(images.size(), 2u);
  EXPECT_EQ(fs::path(images[0].name).filename(), "a.png");
  EXPECT_EQ(images[0].tensor.shape(), (Shape{1, 3, 4, 4}));

  Tensor bad(Shape{1, 2, 2}, 0.0f);
  bad[3] = std::nanf("");
  write_npy(temp("nan.npy").string(), bad);
  expect_error([&] { load_inputs({temp("nan.npy").string()}, {}, {1, 1, 2, 2}); }, "NaN at element 3");
}

}  // namespace
}  // namespace sieve
