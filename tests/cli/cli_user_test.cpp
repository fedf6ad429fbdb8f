// The command line as a new user meets it, on the bundled Fashion-MNIST model and images: outputs that
// never collide and a manifest that says what was explained, unreadable files, strict arguments.

#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "sieve/io/image.hpp"
#include "sieve/io/npy.hpp"
#include "support/test_files.hpp"

namespace fs = std::filesystem;

namespace sieve {
namespace {

const std::string kExamples = std::string(SIEVE_TEST_DATA) + "/../../examples/";
const std::string kModel = kExamples + "fashion_cnn.onnx";
const std::string kImages = kExamples + "images";

void expect_clear_error(const CliRun& r, const std::string& fragment) {
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_EQ(r.err.rfind("sieve: error: ", 0), 0u) << r.err;
  EXPECT_NE(r.err.find(fragment), std::string::npos) << "expected '" << fragment << "' in: " << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << "one line: " << r.err;
}

std::set<std::string> files_in(const fs::path& dir, const std::string& extension) {
  std::set<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() == extension) names.insert(e.path().filename().string());
  }
  return names;
}

size_t count_of(const std::string& text, const std::string& fragment) {
  size_t n = 0;
  for (size_t at = text.find(fragment); at != std::string::npos; at = text.find(fragment, at + 1)) ++n;
  return n;
}

fs::path fresh_dir(const std::string& name) {
  const fs::path d = temp(name);
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

// The issue's scenario: 7 images, 01_pullover.jpg and 01_pullover.png among them, three methods. Every
// explanation reported is a file of its own, and the manifest and stdout say what was explained.
TEST(CliOutputs, EveryExplanationGetsItsOwnFileAndAManifestRecord) {
  const fs::path out = temp("user_out");
  fs::remove_all(out);
  const CliRun r = sieve_cli("explain " + kModel + " " + kImages +
                             " -m gradient -m integrated_gradients:steps=4 -m lrp.epsilon_gamma_box --out " +
                             out.string());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("wrote 21 explanation(s) of 7 input(s) in 42 file(s)"), std::string::npos) << r.out;
  EXPECT_EQ(files_in(out, ".npy").size(), 21u);
  EXPECT_EQ(files_in(out, ".png").size(), 21u);
  EXPECT_TRUE(fs::exists(out / "01_pullover.jpg__gradient.npy"));
  EXPECT_TRUE(fs::exists(out / "01_pullover.png__gradient.npy"));
  EXPECT_TRUE(fs::exists(out / "01_pullover.jpg__integrated_gradients_steps_4.png"));
  EXPECT_NE(read_bytes(out / "01_pullover.jpg__gradient.npy"),
            read_bytes(out / "01_pullover.png__gradient.npy"));

  // One summary line per input naming the class explained, with logit and probability.
  EXPECT_NE(r.out.find(kImages + "/00_ankle_boot.png: class 9 (Ankle boot) logit 9.48"), std::string::npos)
      << r.out;
  EXPECT_EQ(count_of(r.out, "3 explanation(s) in 6 file(s)"), 7u) << r.out;

  const auto manifest = nlohmann::json::parse(read_bytes(out / "manifest.json"));
  EXPECT_EQ(manifest["model"], kModel);
  ASSERT_EQ(manifest["explanations"].size(), 21u);
  std::set<std::string> listed;
  for (const auto& e : manifest["explanations"]) {
    for (const auto& f : e["outputs"]) {
      EXPECT_TRUE(fs::exists(f.get<std::string>())) << f;
      listed.insert(f.get<std::string>());
    }
    const double p = e["probability"].get<double>();
    EXPECT_GT(p, 0.0);
    EXPECT_LE(p, 1.0);
  }
  EXPECT_EQ(listed.size(), 42u);
  const auto& first = manifest["explanations"][0];
  EXPECT_EQ(first["input"], kImages + "/00_ankle_boot.png");
  EXPECT_EQ(first["file"], kImages + "/00_ankle_boot.png");
  EXPECT_TRUE(first["index"].is_null());
  EXPECT_EQ(first["method"], "gradient");
  EXPECT_EQ(first["target"], 9);
  EXPECT_EQ(first["class_name"], "Ankle boot");
  EXPECT_NEAR(first["logit"].get<double>(), 9.4837, 1e-3);
  EXPECT_GT(first["probability"].get<double>(), 0.9);
  // Every parameter is recorded, the defaults included.
  const auto& ig = manifest["explanations"][1];
  EXPECT_EQ(ig["method_name"], "integrated_gradients");
  EXPECT_EQ(ig["parameters"]["steps"], "4");
  EXPECT_TRUE(ig["parameters"].contains("baseline")) << ig.dump();
}

// --target 3,3 explains class 3 once, with a notice; so does a repeated method.
TEST(CliOutputs, RepeatedTargetsAndMethodsAreExplainedOnce) {
  const fs::path out = temp("user_dup");
  fs::remove_all(out);
  const CliRun r =
      sieve_cli("explain " + kModel + " " + kImages + "/02_trouser.png -m gradient -m gradient " +
                "--target 3,3 --save npy --out " + out.string());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("target 3 is given more than once"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("method gradient is given more than once"), std::string::npos) << r.err;
  EXPECT_NE(r.out.find("wrote 1 explanation(s) of 1 input(s) in 1 file(s)"), std::string::npos) << r.out;
  EXPECT_EQ(files_in(out, ".npy"), (std::set<std::string>{"02_trouser.png__gradient__class3.npy"}));
}

// The same file name in two directories, and batch files with zero-padded indices, never share a name.
TEST(CliOutputs, SameFileNamesInTwoDirectoriesStayApart) {
  const fs::path a = fresh_dir("user_a"), b = fresh_dir("user_b"), out = temp("user_two");
  fs::remove_all(out);
  fs::copy_file(kImages + "/02_trouser.png", a / "x.png");
  fs::copy_file(kImages + "/04_shirt.png", b / "x.png");
  Tensor batch(Shape{12, 1, 28, 28});
  write_npy((a / "batch.npy").string(), batch);
  const CliRun r =
      sieve_cli("explain " + kModel + " " + (a / "x.png").string() + " " + (b / "x.png").string() + " " +
                (a / "batch.npy").string() + " -m gradient --save npy --out " + out.string());
  ASSERT_EQ(r.code, 0) << r.err;
  const std::set<std::string> names = files_in(out, ".npy");
  EXPECT_EQ(names.size(), 14u);
  EXPECT_TRUE(names.count("x.png_0__gradient.npy")) << r.out;
  EXPECT_TRUE(names.count("x.png_1__gradient.npy"));
  EXPECT_TRUE(names.count("batch.npy_02__gradient.npy"));
  EXPECT_TRUE(names.count("batch.npy_11__gradient.npy"));
  const auto manifest = nlohmann::json::parse(read_bytes(out / "manifest.json"));
  EXPECT_EQ(manifest["explanations"][4]["file"], (a / "batch.npy").string());
  EXPECT_EQ(manifest["explanations"][4]["index"], 2);
}

// --out FILE.npy says what it wrote, and its manifest says where each explanation sits in the array.
TEST(CliOutputs, SingleArrayOutputPrintsAndRecordsPositions) {
  const fs::path dir = fresh_dir("user_single");
  const std::string out = (dir / "x.npy").string();
  const CliRun r = sieve_cli("explain " + kModel + " " + kImages + "/00_ankle_boot.png " + kImages +
                             "/04_shirt.png -m gradient --target 0,Shirt --out " + out);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("wrote 4 explanation(s) of 2 input(s) in 1 file(s) to " + out), std::string::npos)
      << r.out;
  EXPECT_EQ(count_of(r.out, "2 explanation(s) in 1 file(s)"), 2u) << r.out;
  EXPECT_EQ(read_npy(out).shape(), (Shape{2, 2, 1, 28, 28}));
  const auto manifest = nlohmann::json::parse(read_bytes(out + ".json"));
  ASSERT_EQ(manifest["explanations"].size(), 4u);
  EXPECT_EQ(manifest["explanations"][3]["position"], nlohmann::json({1, 1}));
  EXPECT_EQ(manifest["explanations"][3]["target"], 6);
  EXPECT_EQ(manifest["explanations"][3]["class_name"], "Shirt");
}

// Output paths are checked before any work: a .png holds one picture, parents must exist.
TEST(CliOutputs, OutputPathsAreCheckedBeforeAnyWork) {
  const fs::path dir = fresh_dir("user_paths");
  const std::string run = "explain " + kModel + " " + kImages + " -m gradient ";
  expect_clear_error(sieve_cli(run + "--out " + (dir / "g.png").string()),
                     "one .png file holds one picture, but the run makes 7 explanations");
  EXPECT_FALSE(fs::exists(dir / "g.png"));
  expect_clear_error(sieve_cli(run + "--out " + (dir / "nodir/x.npy").string()),
                     (dir / "nodir").string() + " does not exist");
  expect_clear_error(
      sieve_cli(run + "--out " + (dir / "d").string() + " --grid " + (dir / "nodir/g.png").string()),
      "--grid " + (dir / "nodir/g.png").string());
  EXPECT_FALSE(fs::exists(dir / "d"));
  expect_clear_error(
      sieve_cli(run + "--out " + (dir / "x.npy").string() + " --grid " + (dir / "g.png").string()),
      "--grid goes with a directory --out");
  EXPECT_FALSE(fs::exists(dir / "x.npy"));
  expect_clear_error(sieve_cli(run + "--target Shrt --out " + (dir / "d").string()), "did you mean 'Shirt'");
  const CliRun one = sieve_cli("explain " + kModel + " " + kImages + "/04_shirt.png -m gradient --out " +
                               (dir / "one.png").string());
  ASSERT_EQ(one.code, 0) << one.err;
  EXPECT_EQ(read_image((dir / "one.png").string()).width, 28);
  EXPECT_TRUE(fs::exists(dir / "one.png.json"));
}

// A directory with two good images and one bad entry of each kind: a text file named .png, a corrupt
// JPEG, an .npy and a subdirectory.
fs::path directory_with_broken_files(const std::string& name) {
  const fs::path d = fresh_dir(name);
  fs::copy_file(kImages + "/00_ankle_boot.png", d / "a_good.png");
  fs::copy_file(kImages + "/01_pullover.jpg", d / "b_good.jpg");
  write_bytes(d / "bad.png", "hello, I am not an image\n");
  write_bytes(d / "corrupt.jpg", std::string("\xff\xd8\xff\xe0", 4) + std::string(200, '\x11'));
  write_npy((d / "data.npy").string(), Tensor(Shape{1, 1, 28, 28}));
  fs::create_directories(d / "sub");
  return d;
}

TEST(CliUnreadable, EveryUnreadableFileInADirectoryIsAnError) {
  const fs::path d = directory_with_broken_files("user_broken");
  // Each kind on its own, with the good images beside it.
  const std::vector<std::string> bad = {"bad.png", "corrupt.jpg", "data.npy", "sub"};
  for (const std::string& kind : bad) {
    const fs::path one = fresh_dir("user_broken_" + kind);
    fs::copy_file(d / "a_good.png", one / "a_good.png");
    fs::copy_file(d / "b_good.jpg", one / "b_good.jpg");
    if (fs::is_directory(d / kind)) {
      fs::create_directories(one / kind);
    } else {
      fs::copy_file(d / kind, one / kind);
    }
    const CliRun predict = sieve_cli("predict " + kModel + " " + one.string());
    expect_clear_error(predict, (one / kind).string());
    EXPECT_EQ(predict.out, "") << kind;
    const fs::path out = temp("user_broken_out");
    fs::remove_all(out);
    expect_clear_error(
        sieve_cli("explain " + kModel + " " + one.string() + " -m gradient --out " + out.string()),
        (one / kind).string());
    EXPECT_FALSE(fs::exists(out)) << kind;
  }
}

TEST(CliUnreadable, SkipUnreadableCountsAndNamesTheSkippedFiles) {
  const fs::path d = directory_with_broken_files("user_skip");
  const CliRun r = sieve_cli("predict --json " + kModel + " " + d.string() + " --skip-unreadable");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("skipped 4 unreadable file(s)"), std::string::npos) << r.err;
  for (const char* name : {"bad.png", "corrupt.jpg", "data.npy", "sub"})
    EXPECT_NE(r.err.find((d / name).string()), std::string::npos) << name << ": " << r.err;
  const auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["predictions"].size(), 2u);
  EXPECT_EQ(j["predictions"][0]["input"], (d / "a_good.png").string());
  EXPECT_EQ(j["predictions"][1]["input"], (d / "b_good.jpg").string());
  // Nothing readable left is still an error.
  const fs::path empty = fresh_dir("user_skip_none");
  write_bytes(empty / "bad.png", "text");
  expect_clear_error(sieve_cli("predict " + kModel + " " + empty.string() + " --skip-unreadable"),
                     empty.string());
}

// -m and --rule take one value per flag, so inputs may come after them.
TEST(CliArguments, MethodAndRuleTakeOneValuePerFlag) {
  const fs::path dir = fresh_dir("user_args");
  CliRun r = sieve_cli("explain " + kModel + " -m gradient " + kImages + "/04_shirt.png --out " +
                       (dir / "e").string());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(fs::exists(dir / "e" / "04_shirt.png__gradient.npy"));
  r = sieve_cli("explain " + kModel + " " + kImages + "/04_shirt.png -m gradient " + kImages +
                "/02_trouser.png --rule first:flat -m lrp.epsilon --out " + (dir / "f").string());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("wrote 4 explanation(s) of 2 input(s)"), std::string::npos) << r.out;
}

// Every parser error is one "sieve: error:" line with exit code 1, with a suggestion for near misses.
TEST(CliArguments, ParserErrorsAreOneLineWithSuggestions) {
  const std::string run = "explain " + kModel + " " + kImages + "/04_shirt.png ";
  const std::string out = " --out " + temp("user_parse").string();
  expect_clear_error(sieve_cli(run + "-m gradient --tagret 3" + out), "did you mean '--target'?");
  expect_clear_error(sieve_cli(run + "-m gradinet" + out), "did you mean 'gradient'?");
  expect_clear_error(sieve_cli(run + "-m lrp.epsilon --rule Conv:gama" + out), "did you mean 'gamma'?");
  expect_clear_error(sieve_cli("explian " + kModel), "did you mean 'explain'?");
  expect_clear_error(sieve_cli(run + out), "--method is required");
  expect_clear_error(sieve_cli("predict"), "model is required");
  const CliRun top = sieve_cli("predict " + kModel + " " + kImages + "/04_shirt.png --top 0");
  expect_clear_error(top, "--top: must be at least 1, got 0");
  EXPECT_LT(top.err.size(), 120u) << top.err;
  expect_clear_error(sieve_cli("predict " + kModel + " " + kImages + "/04_shirt.png --batch x"),
                     "'x' is not a whole number");
  expect_clear_error(sieve_cli("predict " + kModel + " " + kImages + "/04_shirt.png --scale 1/0"),
                     "--scale '1/0'");
  expect_clear_error(sieve_cli("predict " + kModel + " " + kImages + "/04_shirt.png --scale abc"),
                     "--scale 'abc'");
}

TEST(CliArguments, VersionAndFractionScale) {
  const CliRun v = sieve_cli("--version");
  EXPECT_EQ(v.code, 0);
  EXPECT_EQ(v.out, std::string("sieve ") + SIEVE_VERSION + "\n");
  // --scale 1/255 equals its decimal value.
  const std::string run =
      "predict --json " + kModel + " " + kImages + "/04_shirt.png --mean 0.286 --std 0.353 ";
  const CliRun fraction = sieve_cli(run + "--scale 1/255"),
               decimal = sieve_cli(run + "--scale 0.00392156862745098");
  ASSERT_EQ(fraction.code, 0) << fraction.err;
  ASSERT_EQ(decimal.code, 0) << decimal.err;
  EXPECT_EQ(nlohmann::json::parse(fraction.out)["predictions"][0]["logits"],
            nlohmann::json::parse(decimal.out)["predictions"][0]["logits"]);
  const CliRun doubled = sieve_cli(run + "--scale 2/255");
  ASSERT_EQ(doubled.code, 0) << doubled.err;
  EXPECT_NE(nlohmann::json::parse(doubled.out)["predictions"][0]["logits"],
            nlohmann::json::parse(decimal.out)["predictions"][0]["logits"]);
}

// Profiles and composites: a misspelt key is an error naming it with a suggestion; class names must
// match the model's outputs.
TEST(CliValidation, ProfilesAndCompositesAreChecked) {
  const fs::path dir = fresh_dir("user_profiles");
  const std::string run = "predict " + kModel + " " + kImages + "/04_shirt.png --profile ";
  write_bytes(dir / "typo.json", R"({"class_name": ["a"]})");
  expect_clear_error(sieve_cli(run + (dir / "typo.json").string()),
                     "unknown key 'class_name' (did you mean 'class_names'?)");
  write_bytes(dir / "two.json", R"({"preprocessing": {"color": "grayscale"}, "class_names": ["a", "b"]})");
  expect_clear_error(sieve_cli(run + (dir / "two.json").string()),
                     (dir / "two.json").string() + ": class_names has 2 names but the model has 10 outputs");
  write_bytes(dir / "composite.json",
              R"({"rules": [{"match": "Conv", "rule": "gamma", "param": {"gamma": 0.5}}]})");
  expect_clear_error(sieve_cli("explain " + kModel + " " + kImages + "/04_shirt.png -m lrp --composite " +
                               (dir / "composite.json").string() + " --out " + (dir / "o").string()),
                     "unknown key 'param' in rule");
  expect_clear_error(sieve_cli("explain " + kModel + " " + kImages + "/04_shirt.png -m lrp --composite " +
                               (dir / "composite.json").string() + " --out " + (dir / "o").string()),
                     "(did you mean 'params'?)");
  write_bytes(dir / "top.json", R"({"rule": []})");
  expect_clear_error(sieve_cli("explain " + kModel + " " + kImages + "/04_shirt.png -m lrp --composite " +
                               (dir / "top.json").string() + " --out " + (dir / "o").string()),
                     "unknown key 'rule' (did you mean 'rules'?)");
}

// A one-channel model without a profile reads images as grayscale; --scale/--mean/--std with an .npy
// input (used as it is) are an error.
TEST(CliValidation, NoProfileGrayscaleAndPreprocessingFlagsWithNpy) {
  const CliRun gray = sieve_cli("predict --json --no-profile " + kModel + " " + kImages + "/04_shirt.png");
  ASSERT_EQ(gray.code, 0) << gray.err;
  const CliRun with_profile =
      sieve_cli("predict --json " + kModel + " " + kImages + "/04_shirt.png --scale 1/255 --mean 0 --std 1");
  ASSERT_EQ(with_profile.code, 0) << with_profile.err;
  EXPECT_EQ(nlohmann::json::parse(gray.out)["predictions"][0]["logits"],
            nlohmann::json::parse(with_profile.out)["predictions"][0]["logits"]);
  const fs::path npy = temp("user_sample.npy");
  write_npy(npy.string(), Tensor(Shape{1, 1, 28, 28}));
  expect_clear_error(sieve_cli("predict " + kModel + " " + npy.string() + " --mean 0.5"),
                     npy.string() + ": --scale, --mean and --std apply to images and IDX files");
  expect_clear_error(sieve_cli("predict " + kModel + " '" + npy.string() + "[0:1]' --scale 2"),
                     npy.string() + "[0:1]: --scale, --mean and --std apply to images and IDX files");
  EXPECT_EQ(sieve_cli("predict " + kModel + " " + npy.string()).code, 0);
}

// A 60×40 RGB "photo" with a smooth pattern, and the 3-channel test model (input 32×32).
const std::string kRgbModel = std::string(SIEVE_TEST_DATA) + "/models/vgg_small.onnx";

fs::path photo(const std::string& name, int width, int height, int channels) {
  Image img{width, height, channels, {}};
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      for (int c = 0; c < channels; ++c)
        img.pixels.push_back(static_cast<uint8_t>((x * 7 + y * 3 + c * 50) % 256));
    }
  }
  const fs::path p = temp(name);
  write_png(p.string(), img);
  return p;
}

nlohmann::json logits_of(const CliRun& r) {
  EXPECT_EQ(r.code, 0) << r.err;
  return r.code == 0 ? nlohmann::json::parse(r.out)["predictions"][0]["logits"] : nlohmann::json();
}

// --resize N keeps the aspect ratio and --crop takes the centre: the same logits as the image resized
// and cropped beforehand; an implicit resize that stretches the image is a warning.
TEST(CliPreprocessing, ResizeAndCropLikeThePreparedImage) {
  const fs::path wide = photo("user_photo.png", 60, 40, 3);
  const CliRun stretched = sieve_cli("predict --json " + kRgbModel + " " + wide.string());
  ASSERT_EQ(stretched.code, 0) << stretched.err;
  EXPECT_NE(stretched.err.find("sieve: warning: " + wide.string() +
                               ": resized from 60x40 to the model's 32x32, which changes its aspect ratio"),
            std::string::npos)
      << stretched.err;
  const CliRun fitted =
      sieve_cli("predict --json " + kRgbModel + " " + wide.string() + " --resize 32 --crop 32x32");
  EXPECT_EQ(fitted.err, "");
  const Image prepared = center_crop(resize_bilinear(read_image(wide.string()), 48, 32), 32, 32);
  write_png(temp("user_prepared.png").string(), prepared);
  const CliRun reference =
      sieve_cli("predict --json " + kRgbModel + " " + temp("user_prepared.png").string());
  EXPECT_EQ(logits_of(fitted), logits_of(reference));
  EXPECT_NE(logits_of(fitted), logits_of(stretched));

  // The same through the profile, and nearest-neighbour sampling differs from bilinear.
  const fs::path profile = temp("user_rgb_profile.json");
  write_bytes(profile, R"({"preprocessing": {"resize": 32, "crop": "32x32", "interpolation": "nearest"}})");
  const CliRun nearest_profile =
      sieve_cli("predict --json " + kRgbModel + " " + wide.string() + " --profile " + profile.string());
  const CliRun nearest_flags = sieve_cli("predict --json " + kRgbModel + " " + wide.string() +
                                         " --resize 32 --crop 32 --interpolation nearest");
  EXPECT_EQ(logits_of(nearest_profile), logits_of(nearest_flags));
  EXPECT_NE(logits_of(nearest_flags), logits_of(fitted));
  // Exact WxH resize.
  const CliRun exact = sieve_cli("predict --json " + kRgbModel + " " + wide.string() + " --resize 32x32");
  EXPECT_EQ(exact.err, "");
  EXPECT_EQ(logits_of(exact), logits_of(stretched));

  expect_clear_error(sieve_cli("predict " + kRgbModel + " " + wide.string() + " --resize 16x16 --crop 32"),
                     wide.string() + ": cannot crop 32x32 from an image of 16x16");
  expect_clear_error(sieve_cli("predict " + kRgbModel + " " + wide.string() + " --resize 0"), "--resize '0'");
  expect_clear_error(sieve_cli("predict " + kRgbModel + " " + wide.string() + " --crop 3y3"), "--crop '3y3'");
  expect_clear_error(sieve_cli("predict " + kRgbModel + " " + wide.string() + " --interpolation cubic"),
                     "--interpolation 'cubic'");
}

// Channel changes nobody asked for are warnings: RGB to the 1-channel model, gray to the 3-channel one.
TEST(CliPreprocessing, ImplicitChannelChangesAreWarnings) {
  const fs::path rgb = photo("user_rgb28.png", 28, 28, 3), gray = photo("user_gray32.png", 32, 32, 1);
  const CliRun to_gray = sieve_cli("predict " + kModel + " " + rgb.string());
  ASSERT_EQ(to_gray.code, 0) << to_gray.err;
  EXPECT_NE(to_gray.err.find(rgb.string() + ": RGB image converted to grayscale for the 1-channel model"),
            std::string::npos)
      << to_gray.err;
  const CliRun to_rgb = sieve_cli("predict " + kRgbModel + " " + gray.string());
  ASSERT_EQ(to_rgb.code, 0) << to_rgb.err;
  EXPECT_NE(to_rgb.err.find(gray.string() + ": grayscale image replicated to the 3 channels of the model"),
            std::string::npos)
      << to_rgb.err;
  EXPECT_EQ(sieve_cli("predict " + kModel + " " + kImages + "/04_shirt.png").err, "");
  expect_clear_error(sieve_cli("predict " + kRgbModel + " " + gray.string() + " --color grayscale"),
                     "the model expects 3 channels but the color order is grayscale");
}

// predict --json carries probabilities and class names; explain, methods, --explain-rules and
// --conservation print JSON too.
TEST(CliJson, EveryTableHasAJsonForm) {
  const CliRun p = sieve_cli("predict --json --top 2 " + kModel + " " + kImages + "/04_shirt.png");
  ASSERT_EQ(p.code, 0) << p.err;
  const auto pj = nlohmann::json::parse(p.out);
  EXPECT_EQ(pj["class_names"].size(), 10u);
  const auto& first = pj["predictions"][0];
  double sum = 0.0;
  for (const auto& v : first["probabilities"]) sum += v.get<double>();
  EXPECT_NEAR(sum, 1.0, 1e-9);
  EXPECT_EQ(first["top_classes"][0]["class"], 6);
  EXPECT_EQ(first["top_classes"][0]["name"], "Shirt");
  EXPECT_NEAR(first["top_classes"][0]["probability"].get<double>(), 0.4402, 1e-4);
  EXPECT_EQ(first["top_classes"][1]["name"], "T-shirt/top");
  const CliRun text = sieve_cli("predict --top 1 " + kModel + " " + kImages + "/04_shirt.png");
  EXPECT_NE(text.out.find("6      5.1556   0.4402  Shirt"), std::string::npos) << text.out;

  const fs::path out = temp("user_json");
  fs::remove_all(out);
  const CliRun e = sieve_cli("explain --json " + kModel + " " + kImages + "/04_shirt.png -m lrp.epsilon " +
                             "--explain-rules --conservation --out " + out.string());
  ASSERT_EQ(e.code, 0) << e.err;
  const auto ej = nlohmann::json::parse(e.out);
  const auto manifest = nlohmann::json::parse(read_bytes(out / "manifest.json"));
  EXPECT_EQ(ej["explanations"], manifest["explanations"]);
  EXPECT_EQ(ej["manifest"], (out / "manifest.json").string());
  EXPECT_EQ(ej["rules"][0]["method"], "lrp.epsilon");
  EXPECT_EQ(ej["rules"][0]["nodes"][0]["op_type"], "Conv");
  EXPECT_EQ(ej["conservation"][0]["explanations"], 1);
  EXPECT_FALSE(ej["conservation"][0]["layers"].empty());

  const CliRun m = sieve_cli("methods --json");
  ASSERT_EQ(m.code, 0) << m.err;
  bool found = false;
  const auto methods = nlohmann::json::parse(m.out);
  for (const auto& method : methods["methods"]) {
    if (method["name"] != "integrated_gradients") continue;
    found = true;
    EXPECT_EQ(method["parameters"][0]["name"], "steps");
    EXPECT_EQ(method["parameters"][0]["default"], "32");
  }
  EXPECT_TRUE(found);
}

const std::string kTrain = kExamples + "fashion_train_2000.idx.gz";

// FILE[a:b] takes a slice of a batch file, an IDX file or a directory; names from IDX files are
// zero-padded so that they sort.
TEST(CliSlices, EveryDataArgumentTakesASlice) {
  const std::string npy = std::string(SIEVE_TEST_DATA) + "/shared/models/cnn_inputs.npy";
  const std::string cnn = std::string(SIEVE_TEST_DATA) + "/shared/models/cnn_dynbatch.onnx";
  // Each sample runs alone (--batch 1), so its float32 logits are the same in both runs, bit for bit.
  const CliRun all = sieve_cli("predict --json --batch 1 " + cnn + " " + npy);
  const CliRun part = sieve_cli("predict --json --batch 1 " + cnn + " '" + npy + "[3:5]'");
  ASSERT_EQ(all.code, 0) << all.err;
  ASSERT_EQ(part.code, 0) << part.err;
  const auto a = nlohmann::json::parse(all.out), p = nlohmann::json::parse(part.out);
  ASSERT_EQ(p["predictions"].size(), 2u);
  EXPECT_EQ(p["predictions"][0]["input"], npy + "[3]");
  EXPECT_EQ(p["predictions"][1]["logits"], a["predictions"][4]["logits"]);

  const CliRun dir = sieve_cli("predict --json " + kModel + " '" + kImages + "[1:3]'");
  ASSERT_EQ(dir.code, 0) << dir.err;
  const auto d = nlohmann::json::parse(dir.out);
  ASSERT_EQ(d["predictions"].size(), 2u);
  EXPECT_EQ(d["predictions"][0]["input"], kImages + "/01_pullover.jpg");
  EXPECT_EQ(d["predictions"][1]["input"], kImages + "/01_pullover.png");

  const fs::path out = temp("user_slices");
  fs::remove_all(out);
  const CliRun idx = sieve_cli("explain " + kModel + " '" + kTrain +
                               "[98:102]' -m gradient --save npy --out " + out.string());
  ASSERT_EQ(idx.code, 0) << idx.err;
  EXPECT_EQ(files_in(out, ".npy"), (std::set<std::string>{"fashion_train_2000.idx.gz_098__gradient.npy",
                                                          "fashion_train_2000.idx.gz_099__gradient.npy",
                                                          "fashion_train_2000.idx.gz_100__gradient.npy",
                                                          "fashion_train_2000.idx.gz_101__gradient.npy"}));

  const CliRun fit = sieve_cli("fit-patterns " + kModel + " --data '" + kTrain + "[0:50]' --out " +
                               temp("user_slice.safetensors").string());
  ASSERT_EQ(fit.code, 0) << fit.err;
  EXPECT_NE(fit.out.find("on 50 input(s)"), std::string::npos) << fit.out;

  expect_clear_error(sieve_cli("predict " + cnn + " '" + npy + "[5:3]'"), "[5:3]: the range 5:3 is empty");
  expect_clear_error(sieve_cli("predict " + cnn + " '" + npy + "[10:40]'"),
                     "the range 10:40 is outside its 16");
  expect_clear_error(sieve_cli("predict " + cnn + " '" + npy + "[x:2]'"), "expected a range [a:b]");
}

// signal-quality refuses splits that share samples, unless --allow-overlap.
TEST(CliSlices, SignalQualityRefusesOverlappingSplits) {
  const std::string patterns = temp("user_sq.safetensors").string();
  ASSERT_EQ(sieve_cli("fit-patterns " + kModel + " --data '" + kTrain + "[0:40]' --out " + patterns).code, 0);
  const std::string run = "signal-quality " + kModel + " --patterns " + patterns + " ";
  expect_clear_error(
      sieve_cli(run + "--data '" + kTrain + "[30:60]' --eval '" + kTrain + "[60:90]'"),
      "the patterns' data " + kTrain + "[0:40] and --data " + kTrain + "[30:60] share samples");
  expect_clear_error(sieve_cli(run + "--data '" + kTrain + "[40:70]' --eval '" + kTrain + "[60:100]'"),
                     "--data " + kTrain + "[40:70] and --eval " + kTrain + "[60:100] share samples");
  expect_clear_error(sieve_cli(run + "--data '" + kTrain + "[40:70]' --eval " + kTrain),
                     "the patterns' data " + kTrain + "[0:40] and --eval " + kTrain + " share samples");
  const CliRun disjoint = sieve_cli(run + "--data '" + kTrain + "[40:70]' --eval '" + kTrain + "[70:100]'");
  ASSERT_EQ(disjoint.code, 0) << disjoint.err;
  EXPECT_NE(disjoint.out.find("v on 30, evaluated on 30"), std::string::npos) << disjoint.out;
  const CliRun allowed =
      sieve_cli(run + "--data '" + kTrain + "[40:70]' --eval '" + kTrain + "[60:100]' --allow-overlap");
  EXPECT_EQ(allowed.code, 0) << allowed.err;
}

}  // namespace
}  // namespace sieve
