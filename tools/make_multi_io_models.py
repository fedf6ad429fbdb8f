#!/usr/bin/python3
"""Writes two small models with several inputs or outputs to tests/data/models, with their inputs and
PyTorch float64 autograd references:

- multi_input.onnx: float inputs x [N, 4] and h [N, 3], token ids [N, 5] (int64) looked up in an
  embedding table, and an int64 offset [N, 1] that feeds no lookup; output logits [N, 3].
- two_outputs.onnx: image [N, 2, 6, 6]; outputs score [N, 2] and seg [N, 3, 6, 6] (a conv segmentation
  head).

Run with Debian's interpreter:  /usr/bin/python3 tools/make_multi_io_models.py
"""
import os

import numpy as np
import onnx
import torch
import torch.nn as nn
import torch.nn.functional as F

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "models")
IG_STEPS = 8  # Integrated Gradients references: midpoints (k + 1/2) / IG_STEPS, baseline 0


class MultiInput(nn.Module):
    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(10, 3)
        self.fx, self.fh, self.fe = nn.Linear(4, 6), nn.Linear(3, 6, bias=False), nn.Linear(15, 6, bias=False)
        self.out = nn.Linear(6, 3)

    def embed(self, ids):
        return self.embedding(ids)

    def head(self, x, h, e, offset):
        z = torch.tanh(self.fx(x) + self.fh(h * torch.sigmoid(h)) + self.fe(torch.flatten(e, 1)))
        return self.out(z) + offset.to(z.dtype)

    def forward(self, x, h, ids, offset):
        return self.head(x, h, self.embed(ids), offset)


class TwoOutputs(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(2, 4, 3, padding=1), nn.Conv2d(4, 3, 1)
        self.fc = nn.Linear(4, 2)

    def forward(self, image):
        features = torch.tanh(self.conv1(image))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(features, 1), 1)), self.conv2(features)


def save(name, array):
    np.save(os.path.join(OUT, name), np.ascontiguousarray(array))


def grad(f, wrt):
    wrt = wrt.detach().clone().requires_grad_(True)
    f(wrt).backward()
    return wrt.grad.detach()


def integrated_gradients(f, x):
    total = torch.zeros_like(x)
    for k in range(IG_STEPS):
        total += grad(f, (k + 0.5) / IG_STEPS * x)
    return x * total / IG_STEPS


def multi_input(gen):
    model = MultiInput().double()
    for p in model.parameters():
        p.data.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float64) * 0.6)
    x = torch.randn(3, 4, generator=gen, dtype=torch.float64)
    h = torch.randn(3, 3, generator=gen, dtype=torch.float64)
    ids = torch.randint(0, 10, (3, 5), generator=gen)
    offset = torch.randint(-2, 3, (3, 1), generator=gen)
    # Inputs are rounded to float32 first, so the references see the values sieve sees.
    x, h = x.float().double(), h.float().double()
    target = 2
    e = model.embed(ids).detach()

    def of_x(v):
        return model.head(v, h, e, offset)[:, target].sum()

    def of_h(v):
        return model.head(x, v, e, offset)[:, target].sum()

    def of_e(v):
        return model.head(x, h, v, offset)[:, target].sum()

    save("multi_input_x.npy", x.float().numpy())
    save("multi_input_h.npy", h.float().numpy())
    save("multi_input_ids.npy", ids.numpy())
    save("multi_input_offset.npy", offset.numpy())
    save("multi_input_logits.npy", model(x, h, ids, offset).detach().numpy())
    gx, gh, ge = grad(of_x, x), grad(of_h, h), grad(of_e, e)
    save("multi_input_gradient_x.npy", gx.numpy())
    save("multi_input_gradient_h.npy", gh.numpy())
    save("multi_input_gradient_embedding.npy", ge.numpy())
    save("multi_input_input_x_gradient_ids.npy", (e * ge).sum(-1).numpy())
    save("multi_input_ig_h.npy", integrated_gradients(of_h, h).numpy())
    save("multi_input_ig_ids.npy", integrated_gradients(of_e, e).sum(-1).numpy())

    model = model.float()
    torch.onnx.export(model, (x.float(), h.float(), ids, offset), os.path.join(OUT, "multi_input.onnx"),
                      input_names=["x", "h", "ids", "offset"], output_names=["logits"],
                      dynamic_axes={n: {0: "batch"} for n in ["x", "h", "ids", "offset", "logits"]},
                      opset_version=13)


def two_outputs(gen):
    model = TwoOutputs().double()
    for p in model.parameters():
        p.data.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float64) * 0.5)
    image = torch.randn(2, 2, 6, 6, generator=gen, dtype=torch.float64).float().double()
    mask_sample = torch.rand(1, 3, 6, 6, generator=gen, dtype=torch.float64).float().double()
    mask_batch = torch.rand(2, 3, 6, 6, generator=gen, dtype=torch.float64).float().double()
    flat_index = 40  # channel 1, row 0, column 4 of each sample's seg map

    def seg(v):
        return model(v)[1]

    save("two_outputs_image.npy", image.float().numpy())
    save("two_outputs_mask_sample.npy", mask_sample.float().numpy())
    save("two_outputs_mask_batch.npy", mask_batch.float().numpy())
    save("two_outputs_gradient_score_1.npy", grad(lambda v: model(v)[0][:, 1].sum(), image).numpy())
    save("two_outputs_gradient_seg_flat40.npy",
         grad(lambda v: seg(v).flatten(1)[:, flat_index].sum(), image).numpy())
    save("two_outputs_gradient_seg_sum.npy", grad(lambda v: seg(v).sum(), image).numpy())
    save("two_outputs_gradient_seg_mask_sample.npy", grad(lambda v: (seg(v) * mask_sample).sum(), image).numpy())
    save("two_outputs_gradient_seg_mask_batch.npy", grad(lambda v: (seg(v) * mask_batch).sum(), image).numpy())
    save("two_outputs_input_x_gradient_seg_sum.npy", (image * grad(lambda v: seg(v).sum(), image)).numpy())

    model = model.float()
    torch.onnx.export(model, (image.float(),), os.path.join(OUT, "two_outputs.onnx"),
                      input_names=["image"], output_names=["score", "seg"],
                      dynamic_axes={n: {0: "batch"} for n in ["image", "score", "seg"]}, opset_version=13)


def main():
    gen = torch.Generator().manual_seed(10)
    multi_input(gen)
    two_outputs(gen)
    for name in ["multi_input.onnx", "two_outputs.onnx"]:
        onnx.checker.check_model(onnx.load(os.path.join(OUT, name)))


if __name__ == "__main__":
    main()
