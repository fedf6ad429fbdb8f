#!/bin/sh
# PatternNet Fig. 4 on the bundled Fashion-MNIST CNN: patterns fitted on the first 1000 bundled
# training images, region perturbation (4×4 tiles, 49 steps, patch means, softmax) on the next 250
# (LAST=2000 for all the other 1000), for the gradient, input × gradient, guided backprop,
# lrp.epsilon_plus, pattern.net, pattern.attribution and the random order. Writes fig4.json, fig4.csv
# and fig4.svg into the directory given (default out/fig4). Run from the repository root.
set -eu
sieve=${SIEVE:-build/release/sieve}
out=${1:-out/fig4}
mkdir -p "$out"
data=examples/fashion_train_2000.idx.gz
[ -f "$out/patterns.safetensors" ] || "$sieve" fit-patterns examples/fashion_cnn.onnx --data "$data[0:1000]" --out "$out/patterns.safetensors"
"$sieve" evaluate examples/fashion_cnn.onnx "$data[1000:${LAST:-1250}]" --batch 256 \
  -m gradient -m input_x_gradient -m guided_backprop -m lrp.epsilon_plus -m pattern.net -m pattern.attribution \
  --patterns "$out/patterns.safetensors" \
  --metric region_perturbation:size=4,steps=49,order=morf+lerf \
  --json "$out/fig4.json" --csv "$out/fig4.csv" --svg "$out/fig4.svg"
