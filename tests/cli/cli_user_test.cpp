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

}  // namespace
}  // namespace sieve
