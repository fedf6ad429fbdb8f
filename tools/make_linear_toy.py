#!/usr/bin/python3
"""Builds examples/linear_toy/: the linear toy of the PatternNet paper (§2), x = a_s·y + a_d·ε with
a_s = (1, 0), a_d = (1, 1), y uniform in [−1, 1] and ε ~ N(0, 1) (decorrelated from y in the sample, so
the fitted pattern is a_s up to float rounding), and the filter that extracts y, w = (1, −1):
  model.onnx   one Gemm with weights w (transB: [1, 2]) and no bias, input [N, 2], output [N, 1];
  train.npy    10⁴ samples [10000, 2] (fitting and the signal-quality protocol's three splits);
  explain.npy  four samples [4, 2] to explain, with their y in explain_y.npy.
Run with Debian's interpreter: /usr/bin/python3 tools/make_linear_toy.py
"""
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples", "linear_toy")
A_S, A_D, W = np.array([1.0, 0.0]), np.array([1.0, 1.0]), np.array([1.0, -1.0])


def samples(rng, n):
    y = rng.uniform(-1.0, 1.0, n)
    eps = rng.normal(0.0, 1.0, n)
    yc = y - y.mean()
    eps -= yc * (yc @ (eps - eps.mean())) / (yc @ yc)  # sample covariance of y and ε exactly 0
    return (np.outer(y, A_S) + np.outer(eps, A_D)).astype(np.float32), y


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(0)
    train, _ = samples(rng, 10000)
    x, y = samples(rng, 4)
    np.save(os.path.join(OUT, "train.npy"), train)
    np.save(os.path.join(OUT, "explain.npy"), x)
    np.save(os.path.join(OUT, "explain_y.npy"), (x @ W).astype(np.float32))
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["x", "w"], ["y"], name="filter", transB=1)], "linear_toy",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 1])],
        [numpy_helper.from_array(W.reshape(1, 2).astype(np.float32), "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="make_linear_toy")
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, os.path.join(OUT, "model.onnx"))


if __name__ == "__main__":
    main()
