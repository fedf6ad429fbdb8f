// Occlusion and LIME against the bare forward passes they need, same run, on one input: occlusion with
// a 16×16 window at stride 8 (729 windows on 224×224) and LIME with n on/off states of the image's
// superpixels, each against its rows (plus the explained input's own pass) as plain batched forward
// passes at the batch size that runs them fastest, which both methods then use. Each is measured REPEATS
// times in turn; the ratios are printed per repetition and as their smallest and largest.
// Usage: sieve_bench_perturbation MODEL.onnx [LIME_N=1000] [REPEATS=3] [BATCHES=8,16,32,64]

#include <algorithm>
#include <iostream>
#include <sstream>
#include <string>

#include "random_input.hpp"
#include "sieve/analyzer.hpp"
#include "sieve/methods.hpp"
#include "wall_clock.hpp"

using sieve::bench::seconds;

namespace {

// `rows` rows through the model in batches of `batch`, plus one pass of one row with a trace, as the
// explained input's own forward pass is.
double bare_forward(const sieve::Model& model, const sieve::Tensor& full, const sieve::Tensor& one,
                    int64_t rows, int64_t batch) {
  return seconds([&] {
    const sieve::ForwardPass pass(model, one);
    for (int64_t done = 0; done < rows; done += batch) {
      const int64_t count = std::min(batch, rows - done);
      model.run({count == batch ? full : sieve::leading_rows(full, count)});
    }
  });
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr
        << "usage: sieve_bench_perturbation MODEL.onnx [LIME_N=1000] [REPEATS=3] [BATCHES=8,16,32,64]\n";
    return 2;
  }
  try {
    const sieve::Model model = sieve::Model::load(argv[1]);
    const int64_t lime_n = argc > 2 ? std::stoll(argv[2]) : 1000,
                  repeats = argc > 3 ? std::stoll(argv[3]) : 3;
    std::vector<int64_t> batches;
    std::stringstream list(argc > 4 ? argv[4] : "8,16,32,64");
    for (std::string item; std::getline(list, item, ',');) batches.push_back(std::stoll(item));
    const sieve::Shape& shape = model.input_shapes().at(0);
    const int64_t windows = ((shape.at(2) - 16) / 8 + 1) * ((shape.at(3) - 16) / 8 + 1);
    const sieve::Tensor one = random_input(shape, 1);
    // Rows scored: the windows of occlusion, n states of LIME.
    const int64_t largest = *std::max_element(batches.begin(), batches.end());
    const sieve::Tensor full = random_input(shape, largest);
    int64_t best = batches.front();
    double fastest = 1e300;
    for (int64_t b : batches) {
      const double t = bare_forward(model, sieve::leading_rows(full, b), one, windows, b);
      std::cout << "bare forward of " << windows << " rows at batch " << b << ": " << t << " s\n";
      if (t < fastest) fastest = t, best = b;
    }
    std::cout << "batch " << best << "\n";
    const sieve::Tensor batch_rows = sieve::leading_rows(full, best);
    struct Case {
      std::string method;
      int64_t rows;
      double fewest = 1e300, most = 0;
    };
    std::vector<Case> cases{{"occlusion:window=16,stride=8", windows},
                            {"lime:n=" + std::to_string(lime_n), lime_n}};
    sieve::AnalyzerContext context;
    context.max_batch = best;
    for (int64_t k = 0; k < repeats; ++k) {
      for (Case& c : cases) {
        const auto analyzer = sieve::create_analyzer(sieve::MethodSpec::parse(c.method), context);
        analyzer->prepare(model);
        const double method = seconds([&] {
          const sieve::ForwardPass pass(model, one, analyzer->trace_values(model));
          analyzer->explain(pass, std::vector<int64_t>{0});
        });
        const double forward = bare_forward(model, batch_rows, one, c.rows, best);
        const double ratio = method / forward;
        c.fewest = std::min(c.fewest, ratio);
        c.most = std::max(c.most, ratio);
        std::cout << "repetition " << k + 1 << ": " << c.method << " " << method << " s, bare forward of "
                  << c.rows << " rows " << forward << " s, ratio " << ratio << "\n";
      }
    }
    for (const Case& c : cases)
      std::cout << c.method << " / bare forward: " << c.fewest << " to " << c.most << "\n";
  } catch (const std::exception& e) {
    std::cerr << e.what() << "\n";
    return 1;
  }
  return 0;
}
