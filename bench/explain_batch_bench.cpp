// One explain call from C++ as the Python module makes it: the method created and prepared for the
// model, then every sample of a batch explained for its predicted class. Prints the fastest and the
// median of the repeats in seconds, as JSON. Usage: sieve_bench_explain_batch MODEL.onnx INPUTS.npy METHOD
// [REPEATS]

#include <algorithm>
#include <iostream>
#include <string>
#include <vector>

#include "sieve/analyzer.hpp"
#include "sieve/error.hpp"
#include "sieve/io/npy.hpp"
#include "sieve/methods.hpp"
#include "wall_clock.hpp"

int main(int argc, char** argv) {
  if (argc < 4) {
    std::cerr << "usage: sieve_bench_explain_batch MODEL.onnx INPUTS.npy METHOD [REPEATS]\n";
    return 2;
  }
  try {
    const sieve::Model model = sieve::Model::load(argv[1]);
    const sieve::Tensor batch = sieve::read_npy(argv[2]);
    const std::string method = argv[3];
    const int repeats = argc > 4 ? std::stoi(argv[4]) : 20;
    std::vector<sieve::Tensor> samples;
    for (int64_t i = 0; i < batch.dim(0); ++i) samples.push_back(sieve::batch_row(batch, i));
    const auto explain = [&] {
      const auto analyzer = sieve::create_analyzer(sieve::MethodSpec::parse(method));
      analyzer->prepare(model);
      return sieve::explain_samples(model, samples, {analyzer.get()}, sieve::TargetSelection{});
    };
    explain();  // warm-up: primitive creation
    std::vector<double> times;
    for (int r = 0; r < repeats; ++r) times.push_back(sieve::bench::seconds(explain));
    std::sort(times.begin(), times.end());
    std::cout << "{\"samples\": " << samples.size() << ", \"min\": " << times.front()
              << ", \"median\": " << times[times.size() / 2] << "}\n";
  } catch (const sieve::Error& e) {
    std::cerr << "sieve_bench_explain_batch: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
