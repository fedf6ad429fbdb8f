#!/usr/bin/python3
"""LRP time as multiples of sieve's own forward time, in the same run: lrp.epsilon, lrp.epsilon_plus and
lrp.epsilon_gamma_box on VGG16- and ResNet-50-shaped models (torchvision architectures, random weights,
exported at benchmark time and not kept), batch 4, 2 threads. The explanation time includes its forward.

Usage: /usr/bin/python3 bench/lrp_vs_forward.py [--threads 2] [--batch 4] [--build build/bench]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import torch
import torchvision

TARGETS = {"lrp.epsilon": 2.5, "lrp.epsilon_plus": 3.0, "lrp.epsilon_gamma_box": 4.0}
# ImageNet normalisation of the raw range [0, 1]: the z^B bounds of the first layer (one per channel).
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--build", default="build/bench")
    ap.add_argument("--models", default="vgg16,resnet50")
    args = ap.parse_args()
    binary = os.path.join(args.build, "bench", "sieve_bench_explain")
    if not os.path.exists(binary):
        sys.exit(f"{binary} not found: cmake --preset bench && cmake --build --preset bench")
    torch.manual_seed(0)
    low = ";".join(f"{(0 - m) / s:.6f}" for m, s in zip(MEAN, STD))
    high = ";".join(f"{(1 - m) / s:.6f}" for m, s in zip(MEAN, STD))
    methods = ["lrp.epsilon", "lrp.epsilon_plus", f"lrp.epsilon_gamma_box:low={low},high={high}"]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            path = os.path.join(tmp, f"{name}.onnx")
            model = getattr(torchvision.models, name)(weights=None).eval()
            torch.onnx.export(model, torch.randn(1, 3, 224, 224), path, opset_version=13, input_names=["input"],
                              output_names=["logits"],
                              dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
            command = [binary, f"{path}:{args.batch}", "--benchmark_format=json"]
            for m in methods:
                command += ["--method", m]
            out = subprocess.run(command, check=True, capture_output=True, text=True, env=env)
            times = {}
            for b in json.loads(out.stdout)["benchmarks"]:
                method = b["name"].split("/batch:")[1].split("/")[1]
                times[method.split(":")[0]] = b["real_time"]
            for method, target in TARGETS.items():
                ratio = times[method] / times["forward"]
                rows.append({"model": name, "batch": args.batch, "method": method, "ms": times[method],
                             "forward_ms": times["forward"], "x_forward": ratio, "target": target})
                print(f"{name:9s} batch {args.batch} {method:24s} {times[method]:9.1f} ms = {ratio:5.2f}x forward "
                      f"({times['forward']:.1f} ms)   target <= {target}x: {'met' if ratio <= target else 'NOT met'}",
                      flush=True)
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
