#!/usr/bin/python3
"""Exports torchvision's VGG-16 with random weights (fixed seed) for bench/evaluate_bench.cpp, at
3×224×224 with a dynamic batch: out/bench/vgg16.onnx (528 MB, not committed), and with every layer's
width divided by WIDTH (e.g. 8: 64 → 8 channels in the first block, 512 → 64 in the last, 4096 → 512 in
the classifier) as out/bench/vgg16_width<WIDTH>.onnx, for runs where the full network is too slow.

Run from the repository root with Debian's interpreter:  /usr/bin/python3 tools/make_vgg16_bench.py [WIDTH]
"""
import os
import sys

import onnx
import torch
import torch.nn as nn
import torchvision

OUT = os.path.join("out", "bench")


def narrow_vgg16(width):
    # VGG-16's configuration "D" with every layer `width` times narrower.
    layers, cin = [], 3
    for v in [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]:
        if v == "M":
            layers.append(nn.MaxPool2d(2))
        else:
            layers += [nn.Conv2d(cin, v // width, 3, padding=1), nn.ReLU()]
            cin = v // width
    hidden = 4096 // width
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(cin * 7 * 7, hidden), nn.ReLU(), nn.Linear(hidden, hidden),
                         nn.ReLU(), nn.Linear(hidden, 1000))


def main():
    width = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(0)
    model = torchvision.models.vgg16() if width == 1 else narrow_vgg16(width)
    model.eval()
    path = os.path.join(OUT, "vgg16.onnx" if width == 1 else f"vgg16_width{width}.onnx")
    torch.onnx.export(model, torch.zeros(1, 3, 224, 224), path, opset_version=13, input_names=["input"],
                      output_names=["logits"], dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    onnx.checker.check_model(path)
    print(f"wrote {path} ({os.path.getsize(path) / 1e6:.0f} MB)")


if __name__ == "__main__":
    main()
