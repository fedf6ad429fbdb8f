#!/bin/bash
# The activation-maximization pictures of docs/methods.md: the ten Fashion-MNIST classes of the bundled
# model, from a random start (l2, jitter, blur) and from the data mean with the Gaussian data prior.
# Run from the repository root after building: bash tools/make_neuron_pictures.sh
set -euo pipefail
sieve=${SIEVE:-build/release/sieve}
model=examples/fashion_cnn.onnx
targets=()
for c in 0 1 2 3 4 5 6 7 8 9; do targets+=(--target "$c"); done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$sieve" visualize-neuron "$model" "${targets[@]}" --steps 200 --lr 0.5 --l2 0.01 --jitter 1 --blur-every 4 \
  --out "$work/random"
"$sieve" visualize-neuron "$model" "${targets[@]}" --steps 200 --lr 0.1 --start mean --prior-weight 0.1 \
  --data examples/fashion_train_2000.idx.gz --out "$work/prior"
mkdir -p docs/images
cp "$work/random/grid.png" docs/images/activation_maximization_fashion_random.png
cp "$work/prior/grid.png" docs/images/activation_maximization_fashion_prior.png
