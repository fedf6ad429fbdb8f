// Region perturbation against the bare forward passes it needs, same run: N random inputs, random
// explanations, MoRF and the random baseline, `steps` steps, so N · (1 + 2 · steps) rows. Prints the
// time of region perturbation, of the same number of rows as plain batched forward passes, and of rows
// run one input at a time (a sample of them, scaled to all), and the two ratios. The three are measured
// in turn REPEATS times, so a machine whose load changes affects all three of a repetition alike; the
// ratios are given per repetition, then their smallest and largest.
// Usage: sieve_bench_evaluate MODEL.onnx [INPUTS=16] [STEPS=100] [SIZE=16] [BATCH=32] [SINGLE_ROWS=64]
//        [REPEATS=3]

#include <algorithm>
#include <iostream>
#include <string>

#include "random_input.hpp"
#include "sieve/evaluation.hpp"
#include "wall_clock.hpp"

using sieve::bench::seconds;

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: sieve_bench_evaluate MODEL.onnx [INPUTS=16] [STEPS=100] [SIZE=16] [BATCH=32] "
                 "[SINGLE_ROWS=64] [REPEATS=3]\n";
    return 2;
  }
  auto arg = [&](int i, int64_t fallback) { return argc > i ? std::stoll(argv[i]) : fallback; };
  try {
    const sieve::Model model = sieve::Model::load(argv[1]);
    const int64_t n = arg(2, 16), steps = arg(3, 100), size = arg(4, 16), batch = arg(5, 32),
                  single = arg(6, 64), repeats = arg(7, 3);
    const sieve::Tensor inputs = random_input(model.input_shapes().at(0), n);
    std::vector<sieve::Tensor> samples, explanations;
    for (int64_t i = 0; i < n; ++i) {
      samples.push_back(sieve::batch_row(inputs, i));
      // Another sample's values as its explanation: some order of the tiles.
      explanations.push_back(sieve::batch_row(inputs, (i + 1) % n));
    }
    sieve::RegionPerturbationOptions options;
    options.size = size;
    options.steps = steps;
    options.max_batch = batch;
    const std::vector<int64_t> targets(static_cast<size_t>(n), 0);
    const int64_t rows = n * (1 + 2 * steps);
    const sieve::Tensor full = random_input(model.input_shapes().at(0), batch);
    const sieve::Tensor one = random_input(model.input_shapes().at(0), 1);
    std::cout << rows << " rows (" << n << " inputs, " << steps << " steps, MoRF + random), batch " << batch
              << ", " << single << " rows one at a time\n";
    double fewest[2] = {1e300, 1e300}, most[2] = {0, 0};
    for (int64_t k = 0; k < repeats; ++k) {
      const double perturbation =
          seconds([&] { sieve::region_perturbation(model, samples, {explanations}, options, targets); });
      const double forward = seconds([&] {
        for (int64_t done = 0; done < rows; done += batch) {
          const int64_t count = std::min(batch, rows - done);
          model.run({count == batch ? full : sieve::leading_rows(full, count)});
        }
      });
      const double one_at_a_time = seconds([&] {
                                     for (int64_t r = 0; r < single; ++r) model.run({one});
                                   }) /
                                   static_cast<double>(single) * static_cast<double>(rows);
      const double ratios[2] = {perturbation / forward, one_at_a_time / perturbation};
      for (int r = 0; r < 2; ++r)
        fewest[r] = std::min(fewest[r], ratios[r]), most[r] = std::max(most[r], ratios[r]);
      std::cout << "repetition " << k + 1 << ": region perturbation " << perturbation << " s, bare forward "
                << forward << " s (ratio " << ratios[0] << "), one input at a time " << one_at_a_time
                << " s (" << ratios[1] << "x region perturbation)\n";
    }
    std::cout << "region perturbation / bare forward: " << fewest[0] << " to " << most[0]
              << "; one at a time / region perturbation: " << fewest[1] << " to " << most[1] << "\n";
  } catch (const std::exception& e) {
    std::cerr << e.what() << "\n";
    return 1;
  }
  return 0;
}
