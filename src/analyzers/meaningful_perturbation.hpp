#pragma once

// Meaningful perturbation (Fong & Vedaldi; METHODS.md "Meaningful perturbation", BK ch.8 §8.3): a smooth
// mask over a coarse grid, learnt by Adam so that perturbing the masked-out part of the input changes
// the target's score most for the least area. The linear maps between the grid and the perturbed input
// are exposed with their adjoints, which the mask's gradient runs through.

#include <memory>
#include <vector>

#include "sieve/analyzer.hpp"
#include "sieve/params.hpp"

namespace sieve::analyzers {

// Bilinear upsampling of `count` grids rows × cols to height × width with half-pixel centres and the
// edge cells held beyond the border (PyTorch's align_corners=False), and its transpose.
std::vector<double> upsample_bilinear(const std::vector<double>& grids, int64_t count, int64_t rows,
                                      int64_t cols, int64_t height, int64_t width);
std::vector<double> upsample_bilinear_adjoint(const std::vector<double>& images, int64_t count, int64_t rows,
                                              int64_t cols, int64_t height, int64_t width);

// Φ = M ⊙ x + (1 − M) ⊙ b over x, b [N, channels, positions] with masks [N, positions] (one value per
// position, shared by the channels), and the transpose of Φ's derivative in M: Σ_c g ⊙ (x − b).
std::vector<float> blend(const std::vector<double>& masks, const std::vector<float>& x,
                         const std::vector<float>& b, int64_t channels, int64_t positions);
std::vector<double> blend_mask_adjoint(const std::vector<float>& g, const std::vector<float>& x,
                                       const std::vector<float>& b, int64_t channels, int64_t positions);

struct MaskOptions {
  enum class Mode { deletion, preservation } mode = Mode::deletion;
  enum class Perturbation { blur, constant, noise } perturbation = Perturbation::blur;
  enum class Score { probability, logit } score = Score::probability;
  int64_t iterations = 300;
  double learning_rate = 0.1;
  double lambda1 = 1e-4, lambda2 = 1e-2, beta = 3.0;
  int64_t upsample = 4;      // input elements per mask cell along each spatial axis
  double mask_sigma = 2.5;   // σ_m of the smoothing of the upsampled mask, in input elements
  double blur_sigma = 10.0;  // σ0 of the blur perturbation, in input elements
  double noise_level = 0.2;  // σ of the noise perturbation relative to the sample's value range
  int64_t jitter = 2;        // the input is shifted by τ ∈ {0..jitter} along each spatial axis per step
  uint64_t seed = 0;
  int64_t max_batch = 32;  // perturbed inputs per forward pass
};

// The learnt masks of a batch and what the objective's terms were at the last step.
struct LearnedMasks {
  int64_t rows = 0, cols = 0;  // the grid
  std::vector<double> masks;   // [N, rows, cols], 1 keeps the input
  std::vector<double> area;    // per sample: Σ(1 − m) for deletion, Σ m for preservation
  std::vector<double> tv;      // per sample: Σ_u ‖∇m(u)‖_β^β over the grid
  std::vector<double> score;   // per sample: the target's score on the last perturbed input
  Tensor saliency;             // shaped like the input: 1 − M for deletion, M for preservation
};

LearnedMasks learn_masks(const ForwardPass& pass, const Target& target, const MaskOptions& options);

MaskOptions read_mask_options(Params& p, int64_t max_batch);
std::unique_ptr<Analyzer> make_meaningful_perturbation(Params& p, int64_t max_batch);

}  // namespace sieve::analyzers
