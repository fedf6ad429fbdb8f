#!/usr/bin/env bash
# Set up, build and run the main job: describe the bundled Fashion-MNIST model, classify the bundled
# sample images, learn PatternNet patterns from the bundled training images, and explain the sample
# images with several methods into out/ with a grid picture out/grid.png, and write the HTML report
# out/report.html of the same methods with region-perturbation curves.
# Usage: bash scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc)" --target sieve_cli sieve_python
sieve=./build/release/sieve
$sieve info examples/fashion_cnn.onnx
$sieve predict examples/fashion_cnn.onnx examples/images --top 3
mkdir -p out
$sieve fit-patterns examples/fashion_cnn.onnx --data examples/fashion_train_2000.idx.gz --out out/patterns.safetensors
$sieve explain examples/fashion_cnn.onnx examples/images \
  -m gradient -m input_x_gradient -m integrated_gradients -m smoothgrad:noise_level=0.15 -m guided_backprop \
  -m lrp.epsilon_gamma_box -m deep_taylor.bounded -m pattern.net -m pattern.attribution \
  -m deeplift -m occlusion:window=4,stride=4 -m lime:mask=examples/blocks_4x4.npy -m grad_cam \
  --patterns out/patterns.safetensors --out out --grid out/grid.png
echo "grid picture (rows: inputs; columns: input, gradient, input×gradient, integrated gradients, SmoothGrad, guided backprop, LRP ε-γ-box composite, Deep Taylor, PatternNet, PatternAttribution, DeepLIFT, occlusion, LIME, Grad-CAM): out/grid.png"
$sieve report examples/fashion_cnn.onnx examples/images \
  -m gradient -m input_x_gradient -m integrated_gradients -m smoothgrad:noise_level=0.15 -m guided_backprop \
  -m lrp.epsilon_gamma_box -m deep_taylor.bounded -m pattern.net -m pattern.attribution \
  -m deeplift -m occlusion:window=4,stride=4 -m lime:mask=examples/blocks_4x4.npy -m grad_cam \
  --patterns out/patterns.safetensors --labels 'Ankle boot,Pullover,Pullover,Trouser,Trouser,Shirt,Trouser' \
  --evaluate region_perturbation:size=4,steps=20 --evaluate sparseness --out out/report.html
echo "report (open in a browser): out/report.html"
