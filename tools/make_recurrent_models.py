#!/usr/bin/python3
"""Exports the recurrent test models of tests/data/models (random weights, fixed seeds) with an input
batch [N, T, F], PyTorch's float64 logits on it, and float64 autograd references of logit TARGET:

- lstm_classifier: nn.LSTM (batch_first) whose last hidden state feeds a linear layer, opset 13 (an ONNX
  LSTM node between Transposes);
- bigru_classifier: a bidirectional nn.GRU whose two final hidden states feed a linear layer, opset 13;
- rnn_classifier: a two-layer tanh nn.RNN, the last step of its output sequence into a linear layer,
  opset 14.

For each: <name>.onnx, <name>_input.npy (float32), <name>_logits.npy, <name>_gradient.npy,
<name>_input_x_gradient.npy and <name>_ig.npy (Integrated Gradients, midpoints (k + 1/2)/IG_STEPS,
baseline 0). The script prints how far PyTorch's own float32 gradients are from the float64 ones.

Run with Debian's interpreter:  /usr/bin/python3 tools/make_recurrent_models.py
"""
import os

import numpy as np
import onnx
import torch
import torch.nn as nn

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "models")
IG_STEPS = 8
TARGET = 1
STEPS, FEATURES, BATCH = 5, 3, 4


class LstmClassifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(FEATURES, 4, batch_first=True)
        self.out = nn.Linear(4, 3)

    def forward(self, x):
        _, (h, _) = self.lstm(x)
        return self.out(h[-1])


class BiGruClassifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(FEATURES, 4, batch_first=True, bidirectional=True)
        self.out = nn.Linear(8, 3)

    def forward(self, x):
        _, h = self.gru(x)
        return self.out(torch.cat([h[0], h[1]], dim=1))


class RnnClassifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.RNN(FEATURES, 4, num_layers=2, batch_first=True)
        self.out = nn.Linear(4, 3)

    def forward(self, x):
        y, _ = self.rnn(x)
        return self.out(y[:, -1])


def save(name, array):
    np.save(os.path.join(OUT, name), np.ascontiguousarray(array))


def gradient(model, x):
    x = x.detach().clone().requires_grad_(True)
    model(x)[:, TARGET].sum().backward()
    return x.grad.detach()


def integrated_gradients(model, x):
    total = torch.zeros_like(x)
    for k in range(IG_STEPS):
        total += gradient(model, (k + 0.5) / IG_STEPS * x)
    return x * total / IG_STEPS


def export(name, model, opset, gen):
    model.eval()
    for p in model.parameters():
        p.data.copy_(torch.randn(p.shape, generator=gen) * 0.5)
    x = torch.randn(BATCH, STEPS, FEATURES, generator=gen)
    path = os.path.join(OUT, name + ".onnx")
    torch.onnx.export(model, x, path, opset_version=opset, input_names=["input"], output_names=["output"],
                      dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}})
    onnx.checker.check_model(onnx.load(path))
    save(name + "_input.npy", x.numpy())
    g32 = gradient(model, x)
    m64, x64 = model.double(), x.double()
    with torch.no_grad():
        save(name + "_logits.npy", m64(x64).numpy())
    g64 = gradient(m64, x64)
    save(name + "_gradient.npy", g64.numpy())
    save(name + "_input_x_gradient.npy", (x64 * g64).numpy())
    save(name + "_ig.npy", integrated_gradients(m64, x64).numpy())
    model.float()
    spread = ((g32.double() - g64).abs().max() / g64.abs().max()).item()
    nodes = onnx.load(path).graph.node
    ops = {}
    for n in nodes:
        ops[n.op_type] = ops.get(n.op_type, 0) + 1
    layouts = [a.i for n in nodes for a in n.attribute if a.name == "layout"]
    print(f"{name:18s} {os.path.getsize(path):6d} bytes  opset {opset}  {dict(sorted(ops.items()))}  "
          f"layout attributes {layouts}  torch float32 gradient spread {spread:.2e} of max")


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(11)
    gen = torch.Generator().manual_seed(12)
    export("lstm_classifier", LstmClassifier(), 13, gen)
    export("bigru_classifier", BiGruClassifier(), 13, gen)
    export("rnn_classifier", RnnClassifier(), 14, gen)


if __name__ == "__main__":
    main()
