// Loads a model, classifies images and explains each prediction with two methods, writing one .npy
// array per method (every image's explanation, [N, ...] like the inputs).
//
// Usage: explain_images MODEL.onnx IMAGE|DIRECTORY... OUT_DIR

#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sieve/analyzer.hpp"
#include "sieve/error.hpp"
#include "sieve/io/inputs.hpp"
#include "sieve/io/npy.hpp"
#include "sieve/io/profile.hpp"
#include "sieve/methods.hpp"
#include "sieve/model.hpp"
#include "sieve/predict.hpp"

int main(int argc, char** argv) {
  if (argc < 4) {
    std::cerr << "usage: explain_images MODEL.onnx IMAGE|DIRECTORY... OUT_DIR\n";
    return 2;
  }
  try {
    const std::string model_path = argv[1];
    const std::vector<std::string> paths(argv + 2, argv + argc - 1);
    const std::filesystem::path out_dir = argv[argc - 1];

    const sieve::Model model = sieve::Model::load(model_path);
    // The profile next to the model (MODEL.onnx.json), if any, says how images become inputs and
    // names the classes.
    const std::optional<sieve::ModelProfile> profile = sieve::find_profile(model_path);
    const sieve::Shape& input_shape = model.input_shapes().at(0);
    const sieve::Preprocessing preprocessing = sieve::model_preprocessing(profile, input_shape.at(1));
    std::vector<sieve::Tensor> samples;
    std::vector<std::string> names;
    for (const sieve::NamedInput& in : sieve::load_inputs(paths, preprocessing, input_shape)) {
      samples.push_back(in.tensor);
      names.push_back(in.name);
    }

    const std::vector<sieve::Prediction> predictions = sieve::predict(model, samples, 1);
    for (size_t i = 0; i < samples.size(); ++i) {
      const int64_t predicted = predictions[i].top.at(0).first;
      std::cout << names[i] << ": class " << predicted;
      if (profile && static_cast<size_t>(predicted) < profile->class_names.size())
        std::cout << " (" << profile->class_names[static_cast<size_t>(predicted)] << ")";
      std::cout << ", logit " << predictions[i].top[0].second << "\n";
    }

    // Both methods share each batch's forward pass; the default target is the predicted class.
    const std::vector<std::string> methods{"gradient", "lrp.epsilon_plus"};
    std::vector<std::unique_ptr<sieve::Analyzer>> analyzers;
    std::vector<const sieve::Analyzer*> run;
    for (const std::string& method : methods) {
      analyzers.push_back(sieve::create_analyzer(sieve::MethodSpec::parse(method)));
      analyzers.back()->prepare(model);
      run.push_back(analyzers.back().get());
    }
    const std::vector<sieve::Explanation> explanations =
        sieve::explain_samples(model, samples, run, sieve::TargetSelection{});

    std::filesystem::create_directories(out_dir);
    sieve::Shape batch_shape = samples.at(0).shape();
    batch_shape[0] = static_cast<int64_t>(samples.size());
    for (size_t m = 0; m < methods.size(); ++m) {
      sieve::Tensor all(batch_shape);
      for (const sieve::Explanation& e : explanations) {
        if (e.method != m) continue;
        std::copy(e.values.values().begin(), e.values.values().end(),
                  all.data() + static_cast<int64_t>(e.sample) * e.values.size());
      }
      const std::filesystem::path file = out_dir / (methods[m] + ".npy");
      sieve::write_npy(file.string(), all);
      std::cout << "wrote " << file.string() << "\n";
    }
  } catch (const sieve::Error& e) {
    std::cerr << "explain_images: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
