#!/usr/bin/python3
"""Pattern fitting and PatternAttribution against sieve's own forward pass, same run: the Fashion-MNIST
CNN of tests/data/shared at batch 64 and a VGG16-shaped model (torchvision architecture, random weights,
exported at benchmark time and not kept) at batch 4, 2 threads. Prints fitting throughput (images/s)
against forward throughput, resident memory before and after fitting (it must not grow with the number
of images), and pattern.attribution time as a multiple of the forward pass.

Usage: /usr/bin/python3 bench/patterns_vs_forward.py [--threads 2] [--build build/bench]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torchvision

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--build", default="build/bench")
    args = ap.parse_args()
    bench = os.path.join(args.build, "bench")
    sieve = os.path.join(args.build, "sieve")
    for binary in ("sieve_bench_fit", "sieve_bench_explain"):
        if not os.path.exists(os.path.join(bench, binary)):
            sys.exit(f"{binary} not found: cmake --preset bench && cmake --build --preset bench")
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        cnn = os.path.join(ROOT, "tests", "data", "shared", "models", "cnn_dynbatch.onnx")
        vgg = os.path.join(tmp, "vgg16.onnx")
        torch.onnx.export(torchvision.models.vgg16(weights=None).eval(), torch.randn(1, 3, 224, 224), vgg,
                          opset_version=13, input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
        for name, path, shape, batch in [("cnn", cnn, (1, 28, 28), 64), ("vgg16", vgg, (3, 224, 224), 4)]:
            fit = subprocess.run([os.path.join(bench, "sieve_bench_fit"), path, str(batch), "3"], check=True,
                                 capture_output=True, text=True, env=env).stdout.strip()
            print(fit, flush=True)
            data = os.path.join(tmp, f"{name}_data.npy")
            np.save(data, np.random.default_rng(0).standard_normal((batch, *shape)).astype(np.float32))
            patterns = os.path.join(tmp, f"{name}.safetensors")
            subprocess.run([sieve, "fit-patterns", path, "--data", data, "--out", patterns], check=True,
                           capture_output=True, env=env)
            out = subprocess.run([os.path.join(bench, "sieve_bench_explain"), f"{path}:{batch}", "--method",
                                  f"pattern.attribution:patterns={patterns}", "--method",
                                  f"pattern.net:patterns={patterns}", "--benchmark_format=json"],
                                 check=True, capture_output=True, text=True, env=env)
            times = {b["name"].split("/batch:")[1].split("/")[1].split(":")[0]: b["real_time"]
                     for b in json.loads(out.stdout)["benchmarks"]}
            for method in ("pattern.attribution", "pattern.net"):
                ratio = times[method] / times["forward"]
                rows.append({"model": name, "batch": batch, "method": method, "ms": times[method],
                             "forward_ms": times["forward"], "x_forward": ratio, "fit": fit})
                print(f"{name:6s} batch {batch:3d} {method:20s} {times[method]:9.1f} ms = {ratio:5.2f}x forward "
                      f"({times['forward']:.1f} ms)", flush=True)
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
