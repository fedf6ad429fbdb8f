#!/usr/bin/python3
"""Writes tests/data/models/mlp_batch4.onnx: tests/data/models/mlp.onnx with its batch dimension fixed
to 4 (same weights), for the batch runner's padded last batch.

Run with Debian's interpreter:  /usr/bin/python3 tools/make_fixed_batch_model.py
"""
import os

import onnx

MODELS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "models")


def main():
    model = onnx.load(os.path.join(MODELS, "mlp.onnx"))
    for value in list(model.graph.input) + list(model.graph.output):
        dim = value.type.tensor_type.shape.dim[0]
        dim.Clear()
        dim.dim_value = 4
    del model.graph.value_info[:]
    model = onnx.shape_inference.infer_shapes(model)
    onnx.checker.check_model(model)
    onnx.save(model, os.path.join(MODELS, "mlp_batch4.onnx"))


if __name__ == "__main__":
    main()
