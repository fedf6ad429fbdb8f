#!/bin/sh
# PatternNet Fig. 4 on a trained VGG-shaped CNN (tools/make_vgg_fashion.py: three conv-conv-pool
# blocks and a dense head on Fashion-MNIST upsampled to 56×56): patterns (`relu`, S_a+-) fitted on the
# model's 1500 training images, region perturbation (4×4 tiles, 100 of the 196 steps, patch means,
# softmax of the predicted class, MoRF and LeRF) on the 500 held-out images (LAST=128 for the first 128
# only, about four times faster), for the gradient, input × gradient, guided backprop, lrp.epsilon_plus, pattern.net,
# pattern.attribution and the random order. Trains the model first when the directory does not hold
# it. Writes fig4.json, fig4.csv and fig4.svg into the directory given (default out/vgg_fashion). Run
# from the repository root.
set -eu
sieve=${SIEVE:-build/release/sieve}
out=${1:-out/vgg_fashion}
[ -f "$out/vgg_fashion.onnx" ] || /usr/bin/python3 tools/make_vgg_fashion.py "$out"
[ -f "$out/patterns.safetensors" ] ||
  "$sieve" fit-patterns "$out/vgg_fashion.onnx" --data "$out/train.npy" --out "$out/patterns.safetensors"
"$sieve" evaluate "$out/vgg_fashion.onnx" "$out/heldout.npy[0:${LAST:-500}]" --batch 128 \
  -m gradient -m input_x_gradient -m guided_backprop -m lrp.epsilon_plus -m pattern.net -m pattern.attribution \
  --patterns "$out/patterns.safetensors" \
  --metric region_perturbation:size=8,steps=49,order=morf+lerf \
  --json "$out/fig4.json" --csv "$out/fig4.csv" --svg "$out/fig4.svg"
