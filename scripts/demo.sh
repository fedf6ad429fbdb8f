#!/usr/bin/env bash
# Set up, build and run the main job on the bundled Fashion-MNIST model and sample images.
# Usage: bash scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc)" --target sieve_cli
./build/release/sieve info examples/fashion_cnn.onnx
./build/release/sieve predict examples/fashion_cnn.onnx examples/images --top 3
