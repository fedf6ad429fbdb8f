#pragma once

// Turning explanations into pictures (METHODS.md §5.1). Every function takes one explanation [C, H, W]
// (or [1, C, H, W]) and returns an 8-bit image of H×W. Scaling is per image.

#include <string>
#include <vector>

#include "sieve/io/image.hpp"
#include "sieve/tensor.hpp"

namespace sieve {

enum class Visualization { heatmap, graymap, projection, scale_input, blend };
// "heatmap", "graymap", "projection", "scale_input" or "blend"; throws sieve::Error for anything else.
Visualization parse_visualization(const std::string& name);

// Signed attributions: channels summed, t/max|t|, blue (−) – white (0) – red (+).
Image heatmap(const Tensor& explanation);
// Absolute attributions: Σ_c |e| / max, black to white.
Image graymap(const Tensor& explanation);
// Signal methods: every value x/(2·max|x|) + ½, in the input's own channels (gray or RGB).
Image projection(const Tensor& explanation);
// The input image multiplied by Σ_c |e| / max.
Image scale_input(const Tensor& explanation, const Image& input);
// Σ_c |e|, Gaussian blur σ = 3, min–max to [0,1], jet colors blended over the input: (1−t)·x + t·jet(t).
Image blend(const Tensor& explanation, const Image& input);
Image visualize(Visualization kind, const Tensor& explanation, const Image& input);

// A displayable image of a preprocessed input [C, H, W]: min–max scaled to 0–255 per image.
Image input_image(const Tensor& input);
// Cells laid out row by row with `gap` white pixels between them; every cell is converted to RGB and
// enlarged by an integer factor (nearest neighbour) until it is at least `min_cell` pixels high.
Image grid(const std::vector<std::vector<Image>>& rows, int gap = 4, int min_cell = 112);

}  // namespace sieve
