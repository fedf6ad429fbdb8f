// Forward-pass time of ONNX models. Usage:
//   sieve_bench_forward MODEL.onnx[:BATCH,BATCH...] ... [Google Benchmark flags]
// Each model/batch pair is one benchmark; inputs are random normal values of the model's input shape.

#include <benchmark/benchmark.h>

#include <iostream>
#include <string>
#include <vector>

#include "random_input.hpp"
#include "sieve/model.hpp"

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  std::vector<std::unique_ptr<sieve::Model>> models;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    std::vector<int64_t> batches{1};
    if (auto colon = arg.rfind(':'); colon != std::string::npos) {
      batches.clear();
      std::string list = arg.substr(colon + 1);
      arg = arg.substr(0, colon);
      for (size_t pos = 0; pos <= list.size();) {
        const size_t comma = std::min(list.find(',', pos), list.size());
        batches.push_back(std::stoll(list.substr(pos, comma - pos)));
        pos = comma + 1;
      }
    }
    try {
      models.push_back(std::make_unique<sieve::Model>(sieve::Model::load(arg)));
    } catch (const std::exception& e) {
      std::cerr << e.what() << "\n";
      return 1;
    }
    const sieve::Model* model = models.back().get();
    for (int64_t batch : batches) {
      const sieve::Tensor input = random_input(*model, batch);
      benchmark::RegisterBenchmark((arg + "/batch:" + std::to_string(batch)).c_str(),
                                   [model, input](benchmark::State& state) {
                                     for (auto _ : state) benchmark::DoNotOptimize(model->run({input}));
                                   })
          ->Unit(benchmark::kMillisecond)
          ->MinTime(2.0)
          ->UseRealTime();
    }
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
