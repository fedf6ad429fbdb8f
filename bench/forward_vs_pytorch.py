#!/usr/bin/python3
"""Forward time of VGG16- and ResNet-50-shaped models (torchvision architectures, random weights):
sieve against PyTorch on the same model, threads and machine, in the same run.

Usage: /usr/bin/python3 bench/forward_vs_pytorch.py [--threads 2] [--batches 1,16] [--build build/bench]
The models are exported to a temporary directory at benchmark time and not kept.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import torch
import torchvision


def torch_time(model, x, min_time=2.0):
    with torch.no_grad():
        for _ in range(2):
            model(x)
        times = []
        start = time.perf_counter()
        while time.perf_counter() - start < min_time or len(times) < 3:
            t0 = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - t0)
    times.sort()
    return times[len(times) // 2] * 1000.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batches", default="1,16")
    ap.add_argument("--build", default="build/bench")
    ap.add_argument("--models", default="vgg16,resnet50")
    args = ap.parse_args()
    batches = [int(b) for b in args.batches.split(",")]
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    binary = os.path.join(args.build, "bench", "sieve_bench_forward")
    if not os.path.exists(binary):
        sys.exit(f"{binary} not found: cmake --preset bench && cmake --build --preset bench")

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            model = getattr(torchvision.models, name)(weights=None).eval()
            path = os.path.join(tmp, f"{name}.onnx")
            torch.onnx.export(model, torch.randn(1, 3, 224, 224), path, opset_version=13,
                              input_names=["input"], output_names=["logits"],
                              dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
            env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
            out = subprocess.run([binary, f"{path}:{','.join(map(str, batches))}",
                                  "--benchmark_format=json"], check=True, capture_output=True, text=True, env=env)
            report = json.loads(out.stdout)
            for bench, batch in zip(report["benchmarks"], batches):
                sieve_ms = bench["real_time"]
                torch_ms = torch_time(model, torch.randn(batch, 3, 224, 224))
                rows.append((name, batch, sieve_ms, torch_ms))
                print(f"{name:10s} batch {batch:3d}: sieve {sieve_ms:9.1f} ms   PyTorch {torch_ms:9.1f} ms   "
                      f"ratio sieve/PyTorch {sieve_ms / torch_ms:5.2f}", flush=True)
    print(json.dumps([{"model": m, "batch": b, "sieve_ms": s, "pytorch_ms": t, "ratio": s / t} for m, b, s, t in rows]))


if __name__ == "__main__":
    main()
