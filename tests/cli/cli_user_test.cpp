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

// The scenario: 7 images, 01_pullover.jpg and 01_pullover.png among them, three methods. Every
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

}  // namespace
}  // namespace sieve
