#!/usr/bin/python3
"""Gradient and Integrated Gradients (32 steps) time as multiples of sieve's own forward time, and
against PyTorch autograd on the same model and threads, in the same run: the Fashion-MNIST CNN of
tests/data/shared at batch 64 and a VGG16-shaped model (torchvision, random weights) at batch 4.

Usage: /usr/bin/python3 bench/explain_vs_pytorch.py [--threads 2] [--build build/bench]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import onnx
import onnx.numpy_helper
import torch
import torchvision

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def median_ms(fn, min_time=2.0):
    fn()
    times, start = [], time.perf_counter()
    while time.perf_counter() - start < min_time or len(times) < 3:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    times.sort()
    return times[len(times) // 2] * 1000.0


def torch_times(model, x, steps=32):
    def forward():
        with torch.no_grad():
            model(x)

    def gradient():
        xi = x.clone().requires_grad_(True)
        out = model(xi)
        out.gather(1, out.argmax(1, keepdim=True)).sum().backward()

    def integrated_gradients():  # path points batched 32 at a time, as sieve's default
        with torch.no_grad():
            target = model(x).argmax(1)
        alphas = (torch.arange(steps, dtype=x.dtype) + 0.5) / steps
        path = (alphas.view(-1, 1, 1, 1, 1) * x.unsqueeze(0)).reshape(-1, *x.shape[1:])
        targets = target.repeat(steps)
        grads = []
        for begin in range(0, path.shape[0], 32):
            p = path[begin:begin + 32].clone().requires_grad_(True)
            out = model(p)
            out.gather(1, targets[begin:begin + 32].view(-1, 1)).sum().backward()
            grads.append(p.grad)
        (torch.cat(grads).view(steps, *x.shape).mean(0) * x).sum()

    return {"forward": median_ms(forward), "gradient": median_ms(gradient),
            "integrated_gradients": median_ms(integrated_gradients)}


def cnn_from_onnx(path):
    """The shared Fashion-MNIST CNN rebuilt in PyTorch with the ONNX file's weights."""
    w = {t.name: torch.from_numpy(onnx.numpy_helper.to_array(t).copy()) for t in onnx.load(path).graph.initializer}
    convs = [n for n in onnx.load(path).graph.node if n.op_type in ("Conv", "Gemm")]
    layers = []
    for n in convs:
        weight, bias = w[n.input[1]], w[n.input[2]]
        if n.op_type == "Conv":
            m = torch.nn.Conv2d(weight.shape[1], weight.shape[0], weight.shape[2], padding=1)
        else:
            m = torch.nn.Linear(weight.shape[1], weight.shape[0])
        m.weight.data.copy_(weight)
        m.bias.data.copy_(bias)
        layers.append(m)
    c1, c2, c3, f1, f2 = layers
    relu, pool = torch.nn.ReLU(), torch.nn.MaxPool2d(2)
    return torch.nn.Sequential(c1, relu, c2, relu, pool, c3, relu, pool, torch.nn.Flatten(), f1, relu, f2).eval()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--build", default="build/bench")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    binary = os.path.join(args.build, "bench", "sieve_bench_explain")
    if not os.path.exists(binary):
        sys.exit(f"{binary} not found: cmake --preset bench && cmake --build --preset bench")
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        cnn_path = os.path.join(ROOT, "tests", "data", "shared", "models", "cnn_dynbatch.onnx")
        vgg_path = os.path.join(tmp, "vgg16.onnx")
        vgg = torchvision.models.vgg16(weights=None).eval()
        torch.onnx.export(vgg, torch.randn(1, 3, 224, 224), vgg_path, opset_version=13, input_names=["input"],
                          output_names=["logits"], dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
        for name, path, model, shape, batch in [("cnn", cnn_path, cnn_from_onnx(cnn_path), (1, 28, 28), 64),
                                                ("vgg16", vgg_path, vgg, (3, 224, 224), 4)]:
            out = subprocess.run([binary, f"{path}:{batch}", "--benchmark_format=json"], check=True,
                                 capture_output=True, text=True, env=env)
            # Names are PATH/batch:B/METHOD/min_time:…/real_time.
            sieve = {b["name"].split("/batch:")[1].split("/")[1]: b["real_time"]
                     for b in json.loads(out.stdout)["benchmarks"]}
            pt = torch_times(model, torch.randn(batch, *shape))
            for method in ("gradient", "integrated_gradients"):
                rows.append({"model": name, "batch": batch, "method": method, "sieve_ms": sieve[method],
                             "sieve_forward_ms": sieve["forward"], "x_forward": sieve[method] / sieve["forward"],
                             "pytorch_ms": pt[method], "pytorch_forward_ms": pt["forward"],
                             "sieve_vs_pytorch": sieve[method] / pt[method]})
                r = rows[-1]
                print(f"{name:6s} batch {batch:3d} {method:22s} sieve {r['sieve_ms']:9.1f} ms = {r['x_forward']:5.2f}x "
                      f"its forward ({r['sieve_forward_ms']:.1f} ms)   PyTorch {r['pytorch_ms']:9.1f} ms   "
                      f"sieve/PyTorch {r['sieve_vs_pytorch']:5.2f}", flush=True)
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
