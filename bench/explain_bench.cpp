// Time of explanation methods against the forward pass of the same model and batch. Usage:
//   sieve_bench_explain MODEL.onnx:BATCH[,BATCH...] ... [--methods gradient,integrated_gradients]
//   [--method NAME:key=value,...]... [Google Benchmark flags]
// Each model/batch gets a "forward" benchmark and one per method (forward pass included).

#include <benchmark/benchmark.h>

#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "random_input.hpp"
#include "sieve/analyzer.hpp"
#include "sieve/methods.hpp"

namespace {

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> parts;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, sep)) parts.push_back(item);
  return parts;
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  std::vector<std::string> methods{"gradient", "integrated_gradients"};
  std::vector<std::string> specs;
  bool explicit_methods = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--methods" && i + 1 < argc) {
      methods = split(argv[++i], ',');
    } else if (arg == "--method" && i + 1 < argc) {
      if (!explicit_methods) methods.clear();
      explicit_methods = true;
      methods.push_back(argv[++i]);
    } else {
      specs.push_back(arg);
    }
  }
  std::vector<std::unique_ptr<sieve::Model>> models;
  std::vector<std::unique_ptr<sieve::Analyzer>> analyzers;
  try {
    for (const std::string& spec : specs) {
      const size_t colon = spec.rfind(':');
      const std::string path = spec.substr(0, colon);
      models.push_back(std::make_unique<sieve::Model>(sieve::Model::load(path)));
      const sieve::Model* model = models.back().get();
      // Analyzers are prepared per model: one set for each.
      const size_t first_analyzer = analyzers.size();
      for (const std::string& m : methods) {
        analyzers.push_back(sieve::create_analyzer(sieve::MethodSpec::parse(m)));
        analyzers.back()->prepare(*model);
      }
      for (const std::string& b : split(colon == std::string::npos ? "1" : spec.substr(colon + 1), ',')) {
        const int64_t batch = std::stoll(b);
        const sieve::Tensor input = random_input(*model, batch);
        const std::string prefix = path + "/batch:" + b + "/";
        benchmark::RegisterBenchmark((prefix + "forward").c_str(),
                                     [model, input](benchmark::State& state) {
                                       for (auto _ : state) benchmark::DoNotOptimize(model->run({input}));
                                     })
            ->Unit(benchmark::kMillisecond)
            ->MinTime(2.0)
            ->UseRealTime();
        for (size_t k = 0; k < methods.size(); ++k) {
          const sieve::Analyzer* analyzer = analyzers[first_analyzer + k].get();
          {  // warm-up: one-time work (pattern files, modified weights, primitives) stays out of the timing
            const sieve::ForwardPass pass(*model, input, analyzer->trace_values(*model));
            analyzer->explain(pass, sieve::TargetSelection().resolve(pass.output()).at(0));
          }
          benchmark::RegisterBenchmark(
              (prefix + methods[k]).c_str(),
              [model, input, analyzer](benchmark::State& state) {
                for (auto _ : state) {
                  const sieve::ForwardPass pass(*model, input, analyzer->trace_values(*model));
                  const std::vector<int64_t> targets = sieve::TargetSelection().resolve(pass.output()).at(0);
                  benchmark::DoNotOptimize(analyzer->explain(pass, targets));
                }
              })
              ->Unit(benchmark::kMillisecond)
              ->MinTime(2.0)
              ->UseRealTime();
        }
      }
    }
  } catch (const std::exception& e) {
    std::cerr << e.what() << "\n";
    return 1;
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
