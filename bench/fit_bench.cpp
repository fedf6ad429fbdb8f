// Pattern fitting against the forward pass of the same model and batch: images per second of each,
// and the resident memory before and after fitting several batches (it must not grow with the number
// of images). Usage: sieve_bench_fit MODEL.onnx BATCH [BATCHES]

#include <fstream>
#include <iostream>
#include <string>

#include "random_input.hpp"
#include "sieve/patterns.hpp"
#include "wall_clock.hpp"

namespace {

double resident_mib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
  }
  return 0.0;
}

}  // namespace

using sieve::bench::seconds;

int main(int argc, char** argv) {
  if (argc < 3) {
    std::cerr << "usage: sieve_bench_fit MODEL.onnx BATCH [BATCHES]\n";
    return 2;
  }
  try {
    const sieve::Model model = sieve::Model::load(argv[1]);
    const int64_t batch = std::stoll(argv[2]), batches = argc > 3 ? std::stoll(argv[3]) : 4;
    const sieve::Tensor input = random_input(model.input_shapes().at(0), batch);
    model.run({input});  // warm-up: primitive creation
    double forward = 1e30;
    for (int i = 0; i < 3; ++i) forward = std::min(forward, seconds([&] { model.run({input}); }));
    sieve::PatternStatistics stats(model);
    stats.accumulate(model, input);  // warm-up
    const double before = resident_mib();
    double fit = 1e30;
    for (int64_t i = 0; i < batches; ++i)
      fit = std::min(fit, seconds([&] { stats.accumulate(model, input); }));
    const double after = resident_mib();
    std::cout << argv[1] << " batch " << batch << ": forward " << batch / forward << " images/s, fitting "
              << batch / fit << " images/s, fitting = " << fit / forward << "x forward; resident " << before
              << " MiB before " << batches << " batches, " << after << " MiB after\n";
  } catch (const std::exception& e) {
    std::cerr << e.what() << "\n";
    return 1;
  }
  return 0;
}
