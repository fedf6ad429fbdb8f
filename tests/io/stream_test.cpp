// InputStream: the batches of every source, concatenated, equal load_inputs sample for sample.

#include "sieve/io/stream.hpp"

#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>

#include "sieve/error.hpp"
#include "sieve/io/image.hpp"
#include "sieve/io/inputs.hpp"
#include "sieve/io/npy.hpp"
#include "support/test_files.hpp"

namespace fs = std::filesystem;

namespace sieve {
namespace {

std::string npy_dict(const std::string& descr, const std::string& shape) {
  return "{'descr': '" + descr + "', 'fortran_order': False, 'shape': (" + shape + "), }";
}

template <class T>
std::string raw(const std::vector<T>& values) {
  return std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(T));
}

template <class T>
std::vector<T> sequence(size_t n, double step, double start) {
  std::vector<T> v;
  for (size_t i = 0; i < n; ++i) v.push_back(static_cast<T>(start + step * static_cast<double>(i)));
  return v;
}

// An IDX file of bytes [n, h, w], plain or gzip'ed.
void write_idx(const fs::path& p, int n, int h, int w, bool gzip) {
  std::string content("\x00\x00\x08\x03", 4);
  for (int d : {n, h, w}) {
    for (int shift : {24, 16, 8, 0}) content += static_cast<char>((d >> shift) & 0xff);
  }
  for (int i = 0; i < n * h * w; ++i) content += static_cast<char>((i * 37 + 11) % 256);
  if (!gzip) {
    write_bytes(p, content);
    return;
  }
  gzFile f = gzopen(p.string().c_str(), "wb");
  gzwrite(f, content.data(), static_cast<unsigned>(content.size()));
  gzclose(f);
}

Image test_image(int w, int h, int channels, int seed) {
  Image img{w, h, channels, {}};
  for (int i = 0; i < w * h * channels; ++i)
    img.pixels.push_back(static_cast<uint8_t>((i * 29 + seed * 53) % 256));
  return img;
}

void expect_error(const std::function<void()>& f, const std::vector<std::string>& fragments) {
  try {
    f();
    ADD_FAILURE() << "no error, expected '" << fragments.front() << "'";
  } catch (const Error& e) {
    for (const std::string& fragment : fragments) {
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos)
          << e.what() << "\n  lacks: " << fragment;
    }
  }
}

// Streams `paths` in batches of at most `max_rows` and checks the batches against load_inputs: the same
// samples in the same order with bitwise equal values, every batch full but the last.
void expect_stream_equals_load_inputs(const std::vector<std::string>& paths, const Preprocessing& p,
                                      const Shape& model_shape, int64_t max_rows) {
  SCOPED_TRACE("max_rows " + std::to_string(max_rows));
  const std::vector<NamedInput> loaded = load_inputs(paths, p, model_shape);
  InputStream stream(paths, p, model_shape);
  EXPECT_EQ(stream.size_hint(), static_cast<int64_t>(loaded.size()));
  EXPECT_EQ(stream.samples_read(), 0);
  size_t i = 0;
  Tensor batch;
  while (stream.next(max_rows, batch)) {
    ASSERT_GE(batch.rank(), 1);
    const int64_t rows = batch.dim(0);
    ASSERT_GE(rows, 1);
    ASSERT_LE(i + static_cast<size_t>(rows), loaded.size());
    EXPECT_EQ(rows, std::min<int64_t>(max_rows, static_cast<int64_t>(loaded.size() - i)));
    const int64_t per = batch.size() / rows;
    for (int64_t r = 0; r < rows; ++r, ++i) {
      const Tensor& expected = loaded[i].tensor;
      Shape one = batch.shape();
      one[0] = 1;
      ASSERT_EQ(expected.shape(), one) << loaded[i].name;
      EXPECT_EQ(
          std::memcmp(expected.data(), batch.data() + r * per, static_cast<size_t>(per) * sizeof(float)), 0)
          << loaded[i].name;
    }
    EXPECT_EQ(stream.samples_read(), static_cast<int64_t>(i));
  }
  EXPECT_EQ(i, loaded.size());
  EXPECT_TRUE(batch.empty());
  EXPECT_FALSE(stream.next(max_rows, batch));
  EXPECT_EQ(stream.samples_read(), static_cast<int64_t>(loaded.size()));
}

TEST(InputStream, NpyFilesOfEveryDtypeMatchLoadInputs) {
  write_npy(temp("f4.npy").string(), Tensor(Shape{7, 1, 3, 4}, sequence<float>(84, 0.37, -5)));
  write_npy(temp("one.npy").string(), Tensor(Shape{1, 3, 4}, sequence<float>(12, -0.5, 2)));
  write_bytes(temp("f8.npy"), npy(npy_dict("<f8", "5, 1, 3, 4"), raw(sequence<double>(60, 0.1, -3))));
  write_bytes(temp("u1.npy"), npy(npy_dict("|u1", "4, 1, 3, 4"), raw(sequence<uint8_t>(48, 5, 0))));
  write_bytes(temp("i4.npy"), npy(npy_dict("<i4", "2, 1, 3, 4"), raw(sequence<int32_t>(24, -3, 40))));
  write_bytes(temp("i8.npy"), npy(npy_dict("<i8", "3, 1, 3, 4"), raw(sequence<int64_t>(36, 7, -100))));
  write_bytes(temp("empty.npy"), npy(npy_dict("<f4", "0, 1, 3, 4"), ""));
  const std::vector<std::string> paths = {
      temp("f4.npy").string(), temp("one.npy").string(), temp("f8.npy").string(), temp("empty.npy").string(),
      temp("u1.npy").string(), temp("i4.npy").string(),  temp("i8.npy").string()};
  for (int64_t max_rows : {1, 3, 7, 100})
    expect_stream_equals_load_inputs(paths, {}, {-1, 1, 3, 4}, max_rows);
}

TEST(InputStream, LargeRowsAreReadInChunks) {
  // 10 rows of 40000 float64 values: a batch of 7 is 2.2 MB of raw bytes, converted in several pieces.
  write_bytes(temp("large.npy"),
              npy(npy_dict("<f8", "10, 1, 200, 200"), raw(sequence<double>(400000, 1e-3, -7))));
  for (int64_t max_rows : {1, 3, 7, 11}) {
    expect_stream_equals_load_inputs({temp("large.npy").string()}, {}, {-1, 1, 200, 200}, max_rows);
  }
}

TEST(InputStream, IdxFilesMatchLoadInputs) {
  write_idx(temp("images-ubyte"), 5, 3, 4, false);
  write_idx(temp("images-ubyte.gz"), 4, 3, 4, true);
  Preprocessing p;
  p.mean = {0.5f};
  p.std = {0.25f};
  const std::vector<std::string> paths = {temp("images-ubyte").string(), temp("images-ubyte.gz").string()};
  for (int64_t max_rows : {1, 3, 5, 100}) expect_stream_equals_load_inputs(paths, p, {-1, 1, 3, 4}, max_rows);
}

TEST(InputStream, DirectoriesOfImagesMatchLoadInputs) {
  const fs::path dir = temp("pngs");
  fs::create_directories(dir);
  // Created out of name order, of different sizes (resized to the model's 5×6).
  const std::vector<std::string> names = {"d.png", "a.png", "e.png", "c.png", "b.png"};
  for (size_t i = 0; i < names.size(); ++i) {
    write_png((dir / names[i]).string(),
              test_image(4 + static_cast<int>(i), 3 + static_cast<int>(i) * 2, 3, static_cast<int>(i)));
  }
  Preprocessing p;
  p.mean = {0.485f, 0.456f, 0.406f};
  p.std = {0.229f, 0.224f, 0.225f};
  p.color = ColorOrder::bgr;
  for (int64_t max_rows : {1, 3, 5, 64})
    expect_stream_equals_load_inputs({dir.string()}, p, {-1, 3, 5, 6}, max_rows);
}

TEST(InputStream, MixedSourcesMatchLoadInputs) {
  const fs::path dir = temp("gray_pngs");
  fs::create_directories(dir);
  write_png((dir / "x.png").string(), test_image(4, 3, 1, 1));
  write_png((dir / "y.png").string(), test_image(8, 6, 3, 2));
  write_png(temp("single.png").string(), test_image(2, 2, 1, 3));
  write_idx(temp("mixed-ubyte.gz"), 3, 3, 4, true);
  write_npy(temp("mixed.npy").string(), Tensor(Shape{4, 1, 3, 4}, sequence<float>(48, 0.25, -1)));
  Preprocessing p;
  p.color = ColorOrder::grayscale;
  p.mean = {0.1f};
  const std::vector<std::string> paths = {temp("mixed.npy").string(), dir.string(),
                                          temp("mixed-ubyte.gz").string(), temp("single.png").string(),
                                          temp("mixed.npy").string()};
  for (int64_t max_rows : {1, 2, 3, 6, 1000})
    expect_stream_equals_load_inputs(paths, p, {-1, 1, 3, 4}, max_rows);
}

TEST(InputStream, SizeHintIsKnownBeforeReading) {
  write_npy(temp("hint.npy").string(), Tensor(Shape{6, 1, 3, 4}, 0.5f));
  write_idx(temp("hint-ubyte"), 9, 3, 4, false);
  InputStream stream({temp("hint.npy").string(), temp("hint-ubyte").string()}, {}, {-1, 1, 3, 4});
  EXPECT_EQ(stream.size_hint(), 15);
  Tensor batch;
  ASSERT_TRUE(stream.next(4, batch));
  EXPECT_EQ(batch.shape(), (Shape{4, 1, 3, 4}));
  EXPECT_EQ(stream.samples_read(), 4);
  ASSERT_TRUE(stream.next(4, batch));  // two rows of the .npy, two of the IDX file
  EXPECT_EQ(batch[0], 0.5f);
  EXPECT_FLOAT_EQ(batch[2 * 12], 11.0f / 255.0f);  // one float32 division of an IDX byte: within 1 ulp
  EXPECT_EQ(stream.size_hint(), 15);

  write_bytes(temp("none.npy"), npy(npy_dict("<f4", "0, 1, 3, 4"), ""));
  InputStream empty({temp("none.npy").string()}, {}, {-1, 1, 3, 4});
  EXPECT_EQ(empty.size_hint(), 0);
  EXPECT_FALSE(empty.next(8, batch));
  EXPECT_TRUE(batch.empty());
}

TEST(InputStream, ReusesABatchOnlyTheCallerHolds) {
  write_npy(temp("reuse.npy").string(), Tensor(Shape{9, 2}, sequence<float>(18, 1, 0)));
  InputStream stream({temp("reuse.npy").string()}, {}, {-1, 2});
  Tensor batch;
  ASSERT_TRUE(stream.next(3, batch));
  const float* first = batch.data();
  ASSERT_TRUE(stream.next(3, batch));
  EXPECT_EQ(batch.data(), first);  // same shape, sole owner: overwritten in place
  EXPECT_EQ(batch[0], 6.0f);
  const Tensor kept = batch;
  InputStream moved = std::move(stream);
  ASSERT_TRUE(moved.next(3, batch));
  EXPECT_EQ(batch.shape(), (Shape{3, 2}));
  EXPECT_NE(batch.data(), kept.data());
  EXPECT_EQ(batch[0], 12.0f);
  EXPECT_EQ(kept[0], 6.0f);  // a batch the caller kept is left alone
  EXPECT_FALSE(moved.next(3, batch));
}

TEST(InputStream, SamplesOfDifferentShapesNeverShareABatch) {
  write_npy(temp("small.npy").string(), Tensor(Shape{2, 1, 2, 2}, 1.0f));
  write_npy(temp("big.npy").string(), Tensor(Shape{1, 3, 3}, 2.0f));
  const std::vector<std::string> paths = {temp("small.npy").string(), temp("big.npy").string()};
  const Shape model{-1, 1, -1, -1};
  Tensor batch;
  {
    InputStream stream(paths, {}, model);
    std::vector<Shape> shapes;
    while (stream.next(1, batch)) shapes.push_back(batch.shape());
    EXPECT_EQ(shapes, (std::vector<Shape>{{1, 1, 2, 2}, {1, 1, 2, 2}, {1, 1, 3, 3}}));
  }
  {
    InputStream stream(paths, {}, model);  // batch boundaries that happen to separate the shapes
    ASSERT_TRUE(stream.next(2, batch));
    ASSERT_TRUE(stream.next(2, batch));
    EXPECT_EQ(batch.shape(), (Shape{1, 1, 3, 3}));
  }
  InputStream stream(paths, {}, model);
  expect_error([&] { stream.next(3, batch); },
               {temp("small.npy").string() + "[0]", temp("big.npy").string(), "[1,2,2]", "[1,3,3]"});
  expect_error([&] { stream.next(3, batch); }, {"earlier error", "big.npy"});

  const fs::path dir = temp("sizes");
  fs::create_directories(dir);
  write_png((dir / "a.png").string(), test_image(4, 4, 3, 0));
  write_png((dir / "b.png").string(), test_image(5, 4, 3, 0));
  InputStream images({dir.string()}, {}, {-1, 3, -1, -1});
  expect_error([&] { images.next(2, batch); }, {(dir / "a.png").string(), (dir / "b.png").string()});
}

TEST(InputStream, ErrorsNameTheFile) {
  Tensor batch;
  write_npy(temp("fine.npy").string(), Tensor(Shape{2, 1, 3, 4}, 0.0f));
  expect_error(
      [&] {
        InputStream({temp("missing.npy").string()}, {}, {-1, 1, 3, 4});
      },
      {temp("missing.npy").string(), "no such file"});
  write_bytes(temp("corrupt.npy"), "not a numpy file at all");
  expect_error(
      [&] {
        InputStream({temp("corrupt.npy").string()}, {}, {-1, 1, 3, 4});
      },
      {temp("corrupt.npy").string(), "not a .npy file"});
  write_bytes(temp("short.npy"), npy(npy_dict("<f4", "3, 1, 3, 4"), std::string(100, '\0')));
  expect_error(
      [&] {
        InputStream({temp("short.npy").string()}, {}, {-1, 1, 3, 4});
      },
      {temp("short.npy").string(), "truncated data"});
  write_bytes(temp("c8.npy"), npy(npy_dict("<c8", "1, 1"), std::string(8, '\0')));
  expect_error(
      [&] {
        InputStream({temp("c8.npy").string()}, {}, {-1, 1});
      },
      {temp("c8.npy").string(), "<c8"});
  write_npy(temp("wrong.npy").string(), Tensor(Shape{2, 5}, 0.0f));
  expect_error(
      [&] {
        InputStream({temp("wrong.npy").string()}, {}, {-1, 1, 3, 4});
      },
      {temp("wrong.npy").string(), "does not fit the model input"});
  write_idx(temp("wrong-ubyte"), 2, 5, 5, false);
  expect_error(
      [&] {
        InputStream({temp("wrong-ubyte").string()}, {}, {-1, 1, 3, 4});
      },
      {temp("wrong-ubyte").string(), "do not fit the model input"});
  write_bytes(temp("bad-ubyte"), "PK\x03\x04 not idx");
  expect_error(
      [&] {
        InputStream({temp("bad-ubyte").string()}, {}, {-1, 1, 3, 4});
      },
      {temp("bad-ubyte").string(), "bad magic"});
  const fs::path with_text = temp("images_and_text");
  fs::create_directories(with_text);
  write_png((with_text / "a.png").string(), test_image(4, 4, 3, 0));
  write_bytes(with_text / "readme.txt", "not an image");
  expect_error([&] { InputStream({with_text.string()}, {}, {-1, 3, 4, 4}); },
               {(with_text / "readme.txt").string(), "not a PNG or JPEG image"});
  const fs::path empty_dir = temp("no_images");
  fs::create_directories(empty_dir);
  expect_error([&] { InputStream({empty_dir.string()}, {}, {-1, 3, 4, 4}); }, {"without PNG or JPEG"});
  expect_error([&] { InputStream({temp("fine.npy").string()}, {}, {}); }, {"no declared shape"});

  // Errors found while reading: an undecodable image, a truncated IDX body, NaN.
  const fs::path dir = temp("broken_pngs");
  fs::create_directories(dir);
  write_png((dir / "a.png").string(), test_image(4, 4, 3, 0));
  std::ifstream png_in(dir / "a.png", std::ios::binary);
  const std::string png((std::istreambuf_iterator<char>(png_in)), {});
  write_bytes(dir / "b.png", png.substr(0, png.size() / 2));
  InputStream images({dir.string()}, {}, {-1, 3, 4, 4});
  EXPECT_EQ(images.size_hint(), 2);
  ASSERT_TRUE(images.next(1, batch));
  expect_error([&] { images.next(1, batch); }, {(dir / "b.png").string(), "corrupt PNG"});

  write_idx(temp("cut-ubyte"), 5, 3, 4, false);
  fs::resize_file(temp("cut-ubyte"), 16 + 30);
  InputStream cut({temp("cut-ubyte").string()}, {}, {-1, 1, 3, 4});
  EXPECT_EQ(cut.size_hint(), 5);
  expect_error([&] { cut.next(2, batch); }, {temp("cut-ubyte").string(), "truncated"});

  Tensor bad(Shape{3, 1, 2}, 0.0f);
  bad[3] = std::nanf("");
  write_npy(temp("nan.npy").string(), bad);
  InputStream nan({temp("nan.npy").string()}, {}, {-1, 1, 2});
  expect_error([&] { nan.next(8, batch); },
               {temp("nan.npy").string() + "[1]: input contains NaN at element 1"});

  InputStream ok({temp("fine.npy").string()}, {}, {-1, 1, 3, 4});
  expect_error([&] { ok.next(0, batch); }, {"max_rows must be at least 1"});
}

}  // namespace
}  // namespace sieve
