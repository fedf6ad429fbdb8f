#!/usr/bin/python3
"""The adversarial models of the finite-numbers property test (tests/analyzers/finite_numbers_test.cpp):
one small CNN, input [N, 1, 8, 8] → Conv 1→4 (3×3, pad 1) → Relu → MaxPool 2 → Conv 4→4 (3×3, pad 1)
→ Relu → GlobalAveragePool → Flatten → Gemm to 3 classes, with weights made to break the divisions of
explanation rules:

- zero: every weight and bias zero (a constant model: dead layers, zero gradients, zero denominators);
- dead_relu: the first convolution's bias −1000, so no ReLU is ever active;
- huge: every weight scaled by 1e9 (logits near 1e19 on unit inputs, softmax saturated);
- tiny: every weight scaled by 1e-12 (pre-activations of 1e-24 to 1e-36, near float32's subnormals);
- negative: every weight of the convolutions negative, positive bias on the second (γ, αβ and z+ see
  only negative contributions);
- ties: every weight 1 and bias 0, so a constant input gives exact ties in every max-pool window;
- saturated: random weights with the head's first bias +1000 (one class's probability exactly 1).

Written to tests/data/models/adversarial/ (each file < 2 kB) with inputs.npy [3, 1, 8, 8]: a random
image in [0, 1], a constant image 0.5 and the zero image.

Run with Debian's interpreter:  /usr/bin/python3 tools/make_adversarial_models.py
"""
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "models", "adversarial")


def random_weights(rng):
    return {
        "w1": rng.uniform(-0.5, 0.5, (4, 1, 3, 3)), "b1": rng.uniform(-0.1, 0.1, 4),
        "w2": rng.uniform(-0.3, 0.3, (4, 4, 3, 3)), "b2": rng.uniform(-0.1, 0.1, 4),
        "w3": rng.uniform(-1.0, 1.0, (3, 4)), "b3": rng.uniform(-0.1, 0.1, 3),
    }


def variants(rng):
    base = random_weights(rng)
    zero = {k: np.zeros_like(v) for k, v in base.items()}
    dead = dict(base, b1=np.full(4, -1000.0))
    huge = {k: v * 1e9 for k, v in base.items()}
    tiny = {k: v * 1e-12 for k, v in base.items()}
    negative = dict(base, w1=-np.abs(base["w1"]), w2=-np.abs(base["w2"]), b2=np.abs(base["b2"]))
    ties = {k: (np.ones_like(v) if k.startswith("w") else np.zeros_like(v)) for k, v in base.items()}
    saturated = dict(base, b3=np.array([1000.0, 0.0, 0.0]))
    return {"zero": zero, "dead_relu": dead, "huge": huge, "tiny": tiny, "negative": negative,
            "ties": ties, "saturated": saturated}


def model(weights):
    inits = [numpy_helper.from_array(np.asarray(v, dtype=np.float32), name) for name, v in weights.items()]
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("MaxPool", ["r1"], ["p1"], name="pool1", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["p1", "w2", "b2"], ["c2"], name="conv2", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
        helper.make_node("GlobalAveragePool", ["r2"], ["g"], name="gap"),
        helper.make_node("Flatten", ["g"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "w3", "b3"], ["logits"], name="head", transB=1),
    ]
    graph = helper.make_graph(
        nodes, "adversarial",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 1, 8, 8])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 3])], inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.checker.check_model(m, full_check=True)
    return m


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(17)
    for name, weights in variants(rng).items():
        onnx.save(model(weights), os.path.join(OUT, name + ".onnx"))
    inputs = np.stack([rng.uniform(0.0, 1.0, (1, 8, 8)), np.full((1, 8, 8), 0.5), np.zeros((1, 8, 8))])
    np.save(os.path.join(OUT, "inputs.npy"), inputs.astype(np.float32))


if __name__ == "__main__":
    main()
