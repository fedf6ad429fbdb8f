// The report page: what it holds for the bundled Fashion-MNIST model and images, the true labels it
// reads, the escaping of every text, and the command line's errors.

#include "sieve/report.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "sieve/error.hpp"
#include "sieve/io/npy.hpp"
#include "sieve/io/profile.hpp"
#include "sieve/io/stream.hpp"
#include "sieve/patterns.hpp"
#include "support/errors.hpp"
#include "support/test_files.hpp"

namespace fs = std::filesystem;

namespace sieve {
namespace {

const std::string kExamples = std::string(SIEVE_TEST_DATA) + "/../../examples/";
const std::string kModel = kExamples + "fashion_cnn.onnx";
const std::string kImages = kExamples + "images";

// The call throws sieve::Error with `fragment` in its message.
#define EXPECT_ERROR(call, fragment)                                 \
  do {                                                               \
    const std::string message = error_of([&] { call; });             \
    EXPECT_NE(message.find(fragment), std::string::npos) << message; \
  } while (0)

size_t count_of(const std::string& text, const std::string& fragment) {
  size_t n = 0;
  for (size_t at = text.find(fragment); at != std::string::npos; at = text.find(fragment, at + 1)) ++n;
  return n;
}

struct Fixture {
  Model model = Model::load(kModel);
  ModelProfile profile = read_profile(kModel + ".json");
  std::vector<NamedInput> inputs =
      load_inputs({kImages}, model_preprocessing(profile, 1), model.input_shapes().at(0));
  ReportModel report_model() const {
    return {"fashion_cnn.onnx", &model, profile.class_names, profile.input_range};
  }
};

const Fixture& fixture() {
  static const Fixture f;
  return f;
}

TEST(Report, HoldsEveryPictureInlineAndEverySection) {
  const Fixture& f = fixture();
  ReportOptions o;
  o.methods = {"gradient", "lrp.epsilon"};
  o.metrics = {"region_perturbation:size=7,steps=4", "sparseness"};
  o.command_line = "sieve report <model> & more";
  const std::string html = report_html({f.report_model()}, f.inputs, o);
  // An input picture and one per method for each of the 7 inputs, all PNG data URIs; no other source.
  EXPECT_EQ(count_of(html, "<img "), 7u * 3u);
  EXPECT_EQ(count_of(html, "src=\"data:image/png;base64,"), 7u * 3u);
  EXPECT_EQ(count_of(html, "http://"), count_of(html, "xmlns=\"http://www.w3.org/2000/svg\""));
  EXPECT_EQ(html.find("https://"), std::string::npos);
  EXPECT_EQ(html.find("<script src"), std::string::npos);
  for (const char* section :
       {"id=\"model\"", "id=\"inputs\"", "id=\"methods\"", "id=\"evaluation\"", "id=\"provenance\""})
    EXPECT_NE(html.find(section), std::string::npos) << section;
  EXPECT_EQ(html.find("id=\"models\""), std::string::npos) << "one model: no comparison";
  // The rules and conservation tables of the relevance method, as --explain-rules prints them.
  EXPECT_NE(html.find("rules of lrp.epsilon:"), std::string::npos);
  EXPECT_NE(html.find("relevance per layer for lrp.epsilon"), std::string::npos);
  EXPECT_EQ(html.find("rules of gradient"), std::string::npos);
  // The degradation chart inline, without the XML declaration of a standalone file.
  EXPECT_EQ(count_of(html, "<svg"), 1u);
  EXPECT_EQ(html.find("<?xml"), std::string::npos);
  // Provenance: version, fingerprint, the command line escaped.
  EXPECT_NE(html.find(SIEVE_VERSION), std::string::npos);
  EXPECT_NE(html.find("sieve report &lt;model&gt; &amp; more"), std::string::npos);
  EXPECT_NE(html.find("Ankle boot (9)"), std::string::npos) << "classes by name";
}

TEST(Report, ListsMisclassifiedInputsFirst) {
  const Fixture& f = fixture();
  ReportOptions o;
  o.methods = {"gradient"};
  // The model's own predictions, with input 3 given a wrong label: it becomes the one misclassified.
  std::vector<int64_t> labels;
  for (const NamedInput& in : f.inputs) {
    const std::vector<Tensor> out = f.model.run({in.tensor});
    const auto v = out[0].values();
    labels.push_back(std::max_element(v.begin(), v.end()) - v.begin());
  }
  labels[3] = (labels[3] + 1) % 10;
  o.labels = labels;
  const std::string html = report_html({f.report_model()}, f.inputs, o);
  EXPECT_NE(html.find("1 of 7 input(s) misclassified"), std::string::npos);
  EXPECT_EQ(count_of(html, "<tr class=\"wrong\">"), 1u);
  const size_t body = html.find("<tbody>");
  const size_t first_row = html.find("<tr", body);
  EXPECT_EQ(html.find("<tr class=\"wrong\"><td class=\"num\" data-sort=\"3\">", body), first_row);
}

TEST(Report, ComparesTheFirstMethodAcrossModels) {
  const Fixture& f = fixture();
  ReportOptions o;
  o.methods = {"gradient", "lrp.epsilon"};
  ReportModel second = f.report_model();
  second.path = "second.onnx";
  const std::string html = report_html({f.report_model(), second}, f.inputs, o);
  EXPECT_NE(html.find("id=\"models\""), std::string::npos);
  // Inputs and methods in the first view, then the input and gradient of each model in the second.
  EXPECT_EQ(count_of(html, "<img "), 7u * 3u + 7u * 3u);
  EXPECT_NE(html.find("gradient by second.onnx of"), std::string::npos);
}

TEST(Report, PlotsTheSignalQualityOfThePatterns) {
  const Fixture& f = fixture();
  const std::string train = kExamples + "fashion_train_2000.idx.gz";
  InputStream fit_data({train + "[0:200]"}, model_preprocessing(f.profile, 1), f.model.input_shapes().at(0));
  const fs::path patterns = temp("report_patterns.safetensors");
  write_pattern_file(patterns.string(),
                     fit_pattern_file(f.model, fit_data, PatternType::relu, 64, train + "[0:200]"));
  ReportOptions o;
  o.methods = {"pattern.attribution"};
  o.patterns = patterns.string();
  o.preprocessing = model_preprocessing(f.profile, 1);
  o.quality = QualityRun{};
  o.quality->fit_data = {train + "[200:300]"};
  o.quality->eval_data = {train + "[300:400]"};
  const std::string html = report_html({f.report_model()}, f.inputs, o);
  EXPECT_NE(html.find("id=\"signal-quality\""), std::string::npos);
  EXPECT_NE(html.find("v on 100, evaluated on 100"), std::string::npos);
  EXPECT_EQ(count_of(html, "<svg"), 1u) << "the rho(S) chart";
  // The splits are checked as signal-quality checks them.
  o.quality->eval_data = {train + "[100:300]"};
  EXPECT_ERROR(report_html({f.report_model()}, f.inputs, o), "share");
  o.patterns.clear();
  EXPECT_ERROR(report_html({f.report_model()}, f.inputs, o), "give the pattern file");
}

TEST(Report, RefusesWhatItCannotShow) {
  const Fixture& f = fixture();
  ReportOptions o;
  EXPECT_ERROR(report_html({f.report_model()}, f.inputs, o), "at least one method");
  o.methods = {"gradient"};
  o.metrics = {"continuity"};
  EXPECT_ERROR(report_html({f.report_model()}, f.inputs, o), "evaluates region_perturbation and sparseness");
  o.metrics = {"sparseness:x=1"};
  EXPECT_ERROR(report_html({f.report_model()}, f.inputs, o), "has no parameter 'x'");
  o.metrics = {};
  o.methods = {"gradient", "gradient"};
  EXPECT_ERROR(report_html({f.report_model()}, f.inputs, o), "given more than once");
}

TEST(ReportLabels, ReadsListsNamesAndFiles) {
  const std::vector<std::string> names{"T-shirt/top", "Trouser", "Pullover"};
  EXPECT_EQ(read_labels("2,Trouser,0", 3, 3, names), (std::vector<int64_t>{2, 1, 0}));
  const fs::path file = temp("labels.npy");
  write_npy(file.string(), Tensor({4}, std::vector<float>{0, 2, 1, 2}));
  EXPECT_EQ(read_labels(file.string(), 4, 3, names), (std::vector<int64_t>{0, 2, 1, 2}));
  EXPECT_EQ(read_labels(file.string() + "[1:3]", 2, 3, names), (std::vector<int64_t>{2, 1}));
  EXPECT_ERROR(read_labels("2,Trouserr", 2, 3, names), "did you mean 'Trouser'");
  EXPECT_ERROR(read_labels("2,1", 3, 3, names), "2 label(s) for 3 input(s)");
  EXPECT_ERROR(read_labels("2,5", 2, 3, names), "label 1 is class 5, but the model has 3 classes");
  write_npy(file.string(), Tensor({2}, std::vector<float>{0.5f, 1}));
  EXPECT_ERROR(read_labels(file.string(), 2, 3, names), "label 0 is 0.5, not a class index");
}

TEST(ReportText, EscapesEveryCharacterHtmlGivesMeaning) {
  EXPECT_EQ(html_escape("<a href=\"x\">'&'</a>"), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
}

TEST(ReportCli, WritesThePageAndRefusesBadArguments) {
  const fs::path out = temp("cli_report.html");
  const CliRun ok = sieve_cli("report " + kModel + " " + kImages + " -m gradient --out " + out.string());
  ASSERT_EQ(ok.code, 0) << ok.err;
  const std::string html = read_bytes(out);
  EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_NE(html.find("report " + kModel), std::string::npos) << "the command line in the provenance";
  EXPECT_FALSE(fs::exists(out.string() + ".tmp-" + std::to_string(getpid())));

  auto expect_error = [](const CliRun& r, const std::string& fragment) {
    EXPECT_EQ(r.code, 1) << r.err;
    EXPECT_NE(r.err.find("sieve: error: "), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(fragment), std::string::npos) << "expected '" << fragment << "' in: " << r.err;
  };
  expect_error(sieve_cli("report " + kModel + " " + kImages + " -m gradient --out " + temp("r.txt").string()),
               "the report is an .html file");
  expect_error(sieve_cli("report " + kModel + " " + kImages + " -m gradient --quality-data " + kImages +
                         " --out " + out.string()),
               "--quality-data and --quality-eval go together");
  expect_error(
      sieve_cli("report " + kModel + " " + kImages + " -m gradient --labels 1,2 --out " + out.string()),
      "2 label(s) for 7 input(s)");
}

}  // namespace
}  // namespace sieve
