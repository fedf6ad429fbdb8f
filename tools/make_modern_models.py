#!/usr/bin/python3
"""Exports the test models of tests/data/models that use the ops of recent architectures (random
weights, fixed seeds), with an input batch and PyTorch's float64 outputs on it:

- mobilenet_v3: torchvision's MobileNetV3-small (width 0.15, reduced tail, 10 classes) on 64×64, opset 13
  (HardSigmoid, HardSwish, squeeze-excitation Mul, GlobalAveragePool);
- vit_tiny / vit_tiny_opset17: a one-block Vision Transformer (patch Conv, class token, positional
  embedding, LayerNorm, softmax attention as MatMul of two activations, exact GELU) at opset 13, where
  LayerNorm and GELU are spelled out (ReduceMean, Sub, Pow, Sqrt, Div, Erf), and at opset 17
  (LayerNormalization);
- unet_tiny: an encoder–decoder with MaxPool, nearest and bilinear Resize, ConvTranspose and Concat, opset 13;
- ops_modern: Softplus, PReLU, SELU, SiLU (x·Sigmoid(x)), Abs/Exp/Log/Sin/Cos/Reciprocal, Max/Min, comparisons with Where,
  Tile, Split, ReduceMax/ReduceMin/ReduceSum/L2 norm, InstanceNormalization, opset 13;
- cnn_constants_opset9: a Conv + BatchNormalization + Upsample net at opset 9 with every weight held in a
  Constant node instead of an initializer (as other exporters write them).

Run with Debian's interpreter:  /usr/bin/python3 tools/make_modern_models.py
"""
import math
import os

import numpy as np
import onnx
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

from make_test_models import OUT, export, randomize_batchnorm


class Block(nn.Module):
    """Pre-norm transformer encoder block with explicit attention."""

    def __init__(self, dim, heads, hidden):
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.fc1, self.fc2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)

    def forward(self, x):
        n, t, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).reshape(n, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        attention = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(d // self.heads), dim=-1)
        x = x + self.proj((attention @ v).transpose(1, 2).reshape(n, t, d))
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x))))


class VitTiny(nn.Module):
    def __init__(self, dim=16, patch=4, size=16, classes=5):
        super().__init__()
        self.embed = nn.Conv2d(3, dim, patch, patch)
        self.cls = nn.Parameter(torch.randn(1, 1, dim) * 0.5)
        self.pos = nn.Parameter(torch.randn(1, (size // patch) ** 2 + 1, dim) * 0.5)
        self.block = Block(dim, 2, 32)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, classes)
        for norm in (self.block.norm1, self.block.norm2, self.norm):
            norm.weight.data.uniform_(0.5, 1.5)
            norm.bias.data.normal_(0.0, 0.2)

    def forward(self, x):
        x = self.embed(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1) + self.pos
        return self.head(self.norm(self.block(x))[:, 0])


class UNetTiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.enc1, self.enc2 = nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(8, 16, 3, padding=1)
        self.bottom = nn.Conv2d(16, 16, 3, padding=1)
        self.up2 = nn.ConvTranspose2d(16, 8, 2, stride=2)
        self.dec2 = nn.Conv2d(16 + 8, 8, 3, padding=1)
        self.dec1 = nn.Conv2d(8 + 8, 2, 3, padding=1)

    def forward(self, x):
        e1 = F.relu(self.enc1(x))
        e2 = F.relu(self.enc2(F.max_pool2d(e1, 2)))
        b = F.relu(self.bottom(F.max_pool2d(e2, 2)))
        d2 = F.relu(self.dec2(torch.cat([F.interpolate(b, scale_factor=2, mode="nearest"), self.up2(b)], 1)))
        up = F.interpolate(d2, scale_factor=2, mode="bilinear", align_corners=False)
        return self.dec1(torch.cat([up, e1], 1))


class OpsModern(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 3, padding=1)
        self.prelu = nn.PReLU(6, init=0.2)
        self.inorm = nn.InstanceNorm2d(6, affine=True)
        self.fc = nn.Linear(4 * 4 + 6 + 8, 4)
        self.inorm.weight.data.uniform_(0.5, 1.5)
        self.inorm.bias.data.normal_(0.0, 0.2)

    def forward(self, x):
        h = self.inorm(self.prelu(self.conv(x)))
        a, b = torch.split(h, [2, 4], dim=1)
        a = F.softplus(a) + F.selu(a) + torch.sin(a) * torch.cos(a) + torch.exp(-torch.abs(a)) + F.silu(a)
        b = torch.log(torch.abs(b) + 1.0) + torch.reciprocal(b * b + 1.0)
        m = torch.maximum(a.repeat(1, 2, 1, 1), b) - torch.minimum(a.repeat(1, 2, 1, 1), b)
        masked = torch.where(m > 0.5, m, torch.zeros_like(m))
        pooled = torch.cat([masked.amax(dim=(2, 3)), masked.amin(dim=(2, 3)), masked.sum(dim=(2, 3)) / 64.0,
                            torch.linalg.vector_norm(m, dim=(2, 3))], 1)
        y = torch.cat([pooled, h.mean(dim=(2, 3)), torch.tanh(h[:, :2].amax(dim=(2, 3))).repeat(1, 4)], 1)
        return self.fc(y)


class CnnBn(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4)
        self.conv2, self.bn2 = nn.Conv2d(4, 4, 3), nn.BatchNorm2d(4)
        self.fc = nn.Linear(4 * 9 * 9, 3)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        x = F.max_pool2d(F.relu(self.bn2(self.conv2(x))), 2)
        return self.fc(torch.flatten(x, 1))


def weights_to_constants(name):
    """Moves every initializer of <name>.onnx into a Constant node at the front of the graph."""
    path = os.path.join(OUT, name + ".onnx")
    model = onnx.load(path)
    graph = model.graph
    names = {init.name for init in graph.initializer}
    constants = [onnx.helper.make_node("Constant", [], [init.name], value=init) for init in graph.initializer]
    kept_inputs = [i for i in graph.input if i.name not in names]
    del graph.initializer[:]
    del graph.input[:]
    graph.input.extend(kept_inputs)
    nodes = list(graph.node)
    del graph.node[:]
    graph.node.extend(constants + nodes)
    onnx.checker.check_model(model)
    onnx.save(model, path)
    print(f"{name:16s} {os.path.getsize(path):7d} bytes  {len(constants)} Constant nodes hold the weights")


def gradient_references(name, model, classes_axis=1, steps=32):
    """The gradient family of the model's predicted class on the exported input batch, in float64:
    <name>_gradient.npy, _input_x_gradient.npy and _integrated_gradients.npy (zero baseline, the midpoints
    (k + 1/2)/steps, as sieve's default). Reads no random numbers, so the exports stay as they were."""
    x = torch.tensor(np.load(os.path.join(OUT, name + "_input.npy"))).double()
    m64 = model.double().eval()
    with torch.no_grad():
        targets = m64(x).argmax(classes_axis)

    def gradient_at(points):
        points = points.clone().requires_grad_(True)
        out = m64(points)
        (g,) = torch.autograd.grad(out[torch.arange(len(targets)), targets].sum(), points)
        return g

    g = gradient_at(x)
    ig = sum(gradient_at(x * (k + 0.5) / steps) for k in range(steps)) / steps
    for method, values in {"gradient": g, "input_x_gradient": x * g, "integrated_gradients": x * ig}.items():
        np.save(os.path.join(OUT, f"{name}_{method}.npy"), values.numpy().astype(np.float32))
    np.save(os.path.join(OUT, f"{name}_targets.npy"), targets.numpy())
    model.float()


def main():
    torch.manual_seed(3)
    gen = torch.Generator().manual_seed(4)
    mobilenet = torchvision.models.mobilenet_v3_small(weights=None, width_mult=0.15, reduced_tail=True,
                                                      num_classes=10)
    randomize_batchnorm(mobilenet, gen)
    export("mobilenet_v3", mobilenet, (3, 64, 64), 13, gen=gen, batch=2)
    gradient_references("mobilenet_v3", mobilenet)
    vit = VitTiny()
    export("vit_tiny", vit, (3, 16, 16), 13, gen=gen)
    gradient_references("vit_tiny", vit)
    export("vit_tiny_opset17", vit, (3, 16, 16), 17, gen=torch.Generator().manual_seed(4))
    gradient_references("vit_tiny_opset17", vit)
    export("unet_tiny", UNetTiny(), (3, 16, 16), 13, gen=gen)
    export("ops_modern", OpsModern(), (3, 8, 8), 13, gen=gen)
    cnn = CnnBn()
    randomize_batchnorm(cnn, gen)
    export("cnn_constants_opset9", cnn, (1, 12, 12), 9, gen=gen)
    weights_to_constants("cnn_constants_opset9")


if __name__ == "__main__":
    main()
