#pragma once

// The one Gaussian blur: heatmap blending, the blur fill of occlusion and of region perturbation, the
// masks and blur of meaningful perturbation and the blur between steps of activation maximization.

#include <vector>

#include "sieve/tensor.hpp"

namespace sieve {

// What the kernel sees beyond a border: the edge value repeated, or nothing (the kernel is cut there
// and its weights renormalised).
enum class BlurEdges { repeat, renormalize };

// A separable Gaussian blur of `values`, laid out in C order as `shape`, along every axis d with
// axes[d]: σ = `sigma` elements, the kernel cut at 3σ.
void gaussian_blur(std::vector<double>& values, const Shape& shape, const std::vector<bool>& axes,
                   double sigma, BlurEdges edges);
// The transpose of gaussian_blur with the same arguments (⟨blur(a), b⟩ = ⟨a, adjoint(b)⟩), for
// gradients through a blur.
void gaussian_blur_adjoint(std::vector<double>& values, const Shape& shape, const std::vector<bool>& axes,
                           double sigma, BlurEdges edges);

}  // namespace sieve
