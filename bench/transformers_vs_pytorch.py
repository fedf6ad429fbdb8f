#!/usr/bin/python3
"""Transformers: forward time of a ViT-B/16 (torchvision's architecture) and a BERT-base-shaped encoder
classifier (12 post-norm blocks, width 768, 12 heads, 3072 hidden, 128 tokens), random weights, sieve
against PyTorch on the same model, threads and machine, in the same run; and lrp.epsilon (CP-LRP
attention, the LN rule, the identity rule on GELU) as a multiple of sieve's own forward.

Usage: /usr/bin/python3 bench/transformers_vs_pytorch.py [--threads 2] [--batch 8] [--build build/bench]
The models are exported to a temporary directory at benchmark time and not kept.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import torch
import torchvision

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from forward_vs_pytorch import torch_time  # noqa: E402
from make_transformer_models import BertTiny  # noqa: E402

TARGETS = {"forward vs PyTorch": 1.0, "lrp.epsilon vs forward": 3.0}


def models(tmp):
    vit = torchvision.models.vit_b_16(weights=None).eval()
    bert = BertTiny(vocab=30522, length=128, dim=768, heads=12, hidden=3072, blocks=12, classes=2).eval()
    specs = [("vit_b_16", vit, torch.randn(1, 3, 224, 224), "input"),
             ("bert_base", bert, torch.zeros(1, 128, dtype=torch.int64), "input_ids")]
    for name, model, example, input_name in specs:
        path = os.path.join(tmp, name + ".onnx")
        torch.onnx.export(model, example, path, opset_version=13, input_names=[input_name],
                          output_names=["logits"],
                          dynamic_axes={input_name: {0: "batch"}, "logits": {0: "batch"}})
        yield name, model, path, example


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--build", default="build/bench")
    args = ap.parse_args()
    binary = os.path.join(args.build, "bench", "sieve_bench_explain")
    if not os.path.exists(binary):
        sys.exit(f"{binary} not found: cmake --preset bench && cmake --build --preset bench")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, model, path, example in models(tmp):
            out = subprocess.run([binary, f"{path}:{args.batch}", "--method", "lrp.epsilon",
                                  "--benchmark_format=json"], check=True, capture_output=True, text=True, env=env)
            times = {b["name"].split("/batch:")[1].split("/")[1].split(":")[0]: b["real_time"]
                     for b in json.loads(out.stdout)["benchmarks"]}
            if example.dtype == torch.int64:
                x = torch.randint(0, 1000, (args.batch,) + tuple(example.shape[1:]))
            else:
                x = torch.randn((args.batch,) + tuple(example.shape[1:]))
            torch_ms = torch_time(model, x)
            forward, lrp = times["forward"], times["lrp.epsilon"]
            row = {"model": name, "batch": args.batch, "sieve_forward_ms": forward, "pytorch_forward_ms": torch_ms,
                   "forward_ratio": forward / torch_ms, "lrp_epsilon_ms": lrp, "lrp_x_forward": lrp / forward}
            rows.append(row)
            print(f"{name:9s} batch {args.batch}: forward sieve {forward:8.1f} ms, PyTorch {torch_ms:8.1f} ms, "
                  f"ratio {row['forward_ratio']:4.2f} (target <= {TARGETS['forward vs PyTorch']}); "
                  f"lrp.epsilon {lrp:8.1f} ms = {row['lrp_x_forward']:4.2f}x forward "
                  f"(target <= {TARGETS['lrp.epsilon vs forward']})", flush=True)
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
