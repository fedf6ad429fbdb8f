#!/usr/bin/python3
"""The Python module's overhead: explaining 64 Fashion-MNIST training images with lrp.epsilon_plus by
sieve.explain against the same call from C++ (sieve_bench_explain_batch: create, prepare,
explain_samples), same model, inputs, threads and repeats. The target is at most 1.05x.

Usage: /usr/bin/python3 bench/python_vs_cpp.py [--threads 2] [--repeats 20] [--build build/bench]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--method", default="lrp.epsilon_plus")
    ap.add_argument("--build", default="build/bench")
    args = ap.parse_args()
    binary = os.path.join(args.build, "bench", "sieve_bench_explain_batch")
    if not os.path.exists(binary):
        sys.exit("sieve_bench_explain_batch not found: cmake --preset bench && cmake --build --preset bench")
    # The threads are fixed before the module (and its OpenMP runtime) is loaded.
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    sys.path.insert(0, os.path.join(args.build, "python"))
    import numpy as np

    import sieve

    model_path = os.path.join(ROOT, "examples", "fashion_cnn.onnx")
    model = sieve.Model(model_path)
    x = sieve.load_inputs(model, [os.path.join(ROOT, "examples", "fashion_train_2000.idx.gz[0:64]")])
    sieve.explain(model, x, args.method)  # warm-up: primitive creation
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        sieve.explain(model, x, args.method)
        times.append(time.perf_counter() - start)
    times.sort()
    with tempfile.TemporaryDirectory() as tmp:
        inputs = os.path.join(tmp, "inputs.npy")
        np.save(inputs, x)
        done = subprocess.run([binary, model_path, inputs, args.method, str(args.repeats)], capture_output=True,
                              text=True, check=True)
    cpp = json.loads(done.stdout)
    python = {"min": times[0], "median": times[len(times) // 2]}
    print(f"{args.method} on {len(x)} images, {args.threads} thread(s), {args.repeats} repeats (seconds):")
    print(f"  {'':8}{'min':>10}{'median':>10}")
    print(f"  {'C++':8}{cpp['min']:10.4f}{cpp['median']:10.4f}")
    print(f"  {'Python':8}{python['min']:10.4f}{python['median']:10.4f}")
    ratio = python["median"] / cpp["median"]
    print(f"  Python / C++ (median): {ratio:.3f} (target <= 1.05); (min): {python['min'] / cpp['min']:.3f}")


if __name__ == "__main__":
    main()
