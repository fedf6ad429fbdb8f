#!/usr/bin/python3
"""Exports the small test models of tests/data/models with torch.onnx.export (random weights, fixed
seeds), with an input batch and PyTorch's float64 outputs on it.

Run with Debian's interpreter:  /usr/bin/python3 tools/make_test_models.py
"""
import os

import numpy as np
import onnx
import torch
import torch.nn as nn
import torch.nn.functional as F

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "models")


def randomize_batchnorm(model, gen):
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=gen) * 0.2)
            m.running_var.copy_(torch.rand(n, generator=gen) * 0.8 + 0.4)
            m.weight.data.copy_(torch.rand(n, generator=gen) * 0.8 + 0.6)
            m.bias.data.copy_(torch.randn(n, generator=gen) * 0.2)


class Mlp(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.fc3 = nn.Linear(144, 32), nn.Linear(32, 16), nn.Linear(16, 5)

    def forward(self, x):
        x = torch.flatten(x, 1)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


class VggSmall(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.classifier = nn.Sequential(nn.Linear(16 * 8 * 8, 32), nn.ReLU(), nn.Dropout(0.5), nn.Linear(32, 10))

    def forward(self, x):
        return torch.softmax(self.classifier(torch.flatten(self.features(x), 1)), dim=1)

    def logits(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout)
        self.conv2, self.bn2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(y + (x if self.down is None else self.down(x)))


class ResNetSmall(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, 1, 1, bias=False), nn.BatchNorm2d(8), nn.ReLU())
        self.block1, self.block2 = BasicBlock(8, 8, 1), BasicBlock(8, 16, 2)
        self.pool, self.fc = nn.AvgPool2d(2), nn.Linear(16, 10)

    def forward(self, x):
        x = self.pool(self.block2(self.block1(self.stem(x))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class Conv1dNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1, self.c2 = nn.Conv1d(2, 6, 5, padding=2), nn.Conv1d(6, 8, 3, stride=2, dilation=2)
        self.fc = nn.Linear(8 * 15, 4)

    def forward(self, x):
        x = F.max_pool1d(F.relu(self.c2(F.relu(self.c1(x)))), 2)
        return self.fc(torch.flatten(x, 1))


def separable(cin, cout, stride):
    return nn.Sequential(
        nn.Conv2d(cin, cin, 3, stride, 1, groups=cin, bias=False), nn.BatchNorm2d(cin), nn.ReLU6(),
        nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU6())


class InvertedResidual(nn.Module):
    def __init__(self, c, expand):
        super().__init__()
        h = c * expand
        self.body = nn.Sequential(
            nn.Conv2d(c, h, 1, bias=False), nn.BatchNorm2d(h), nn.ReLU6(),
            nn.Conv2d(h, h, 3, 1, 1, groups=h, bias=False), nn.BatchNorm2d(h), nn.ReLU6(),
            nn.Conv2d(h, c, 1, bias=False), nn.BatchNorm2d(c))

    def forward(self, x):
        return x + self.body(x)


class MobileNetSmall(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1, bias=False), nn.BatchNorm2d(8), nn.ReLU6())
        self.blocks = nn.Sequential(separable(8, 16, 1), separable(16, 24, 2), InvertedResidual(24, 2))
        self.fc = nn.Linear(24, 10)

    def forward(self, x):
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(self.blocks(self.stem(x)), 1), 1))


class OpsMix(nn.Module):
    """Exercises the rest of the importer: ConvTranspose, activations, pools, Concat, Pad, shape chains."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.up = nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2)
        self.weight = nn.Parameter(torch.randn(96, 5) * 0.1)
        self.scale = nn.Parameter(torch.rand(1, 6, 1, 1) + 0.5)

    def logits(self, x):
        y = self.conv(F.pad(x, (1, 1, 1, 1)))                      # Pad merged into the Conv
        y = F.leaky_relu(self.up(y), 0.1)                           # ConvTranspose, LeakyRelu
        a = F.elu(F.avg_pool2d(y, 3, 2, padding=1, ceil_mode=True, count_include_pad=False))
        b = torch.sigmoid(F.max_pool2d(y, 3, 2, padding=1, ceil_mode=True)) * self.scale - torch.tanh(a) / 2.0
        z = torch.cat([a, b], dim=1)                                # Concat
        z = F.avg_pool2d(z, 4).permute(0, 2, 3, 1).unsqueeze(1).squeeze(1)  # Transpose, (Un)squeeze
        z = z.reshape(z.size(0), -1)                                # Shape/Gather/Concat → Reshape
        return torch.matmul(z[:, :96], self.weight)                 # Slice, MatMul

    def forward(self, x):
        return torch.log_softmax(self.logits(x), dim=1)


def export(name, model, shape, opset, dynamic=True, logits=None, extra=None, gen=None, batch=4):
    model.eval()
    x = torch.randn((batch,) + shape, generator=gen)
    path = os.path.join(OUT, name + ".onnx")
    torch.onnx.export(model, torch.randn((1,) + shape), path, opset_version=opset, input_names=["input"],
                      output_names=["output"], training=torch.onnx.TrainingMode.PRESERVE,
                      dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}} if dynamic else None)
    onnx.checker.check_model(onnx.load(path))
    np.save(os.path.join(OUT, name + "_input.npy"), x.numpy().astype(np.float32))
    with torch.no_grad():
        m64, x64 = model.double(), x.double()
        out = (logits or m64)(x64)
        np.save(os.path.join(OUT, name + "_logits.npy"), out.numpy())
        if extra:
            np.save(os.path.join(OUT, name + "_" + extra + ".npy"), m64(x64).numpy())
    model.float()
    ops = {}
    for n in onnx.load(path).graph.node:
        ops[n.op_type] = ops.get(n.op_type, 0) + 1
    print(f"{name:16s} {os.path.getsize(path):7d} bytes  opset {opset}  {dict(sorted(ops.items()))}")


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1)
    mlp = Mlp()
    export("mlp", mlp, (1, 12, 12), 13, gen=gen)
    export("mlp_opset9", mlp, (1, 12, 12), 9, gen=torch.Generator().manual_seed(1))
    vgg = VggSmall()
    export("vgg_small", vgg, (3, 32, 32), 11, logits=lambda x: vgg.logits(x), extra="probs", gen=gen)
    resnet = ResNetSmall()
    randomize_batchnorm(resnet, gen)
    export("resnet_small", resnet, (3, 32, 32), 13, dynamic=False, gen=gen)
    export("conv1d", Conv1dNet(), (2, 64), 13, gen=gen)
    mobile = MobileNetSmall()
    randomize_batchnorm(mobile, gen)
    export("mobilenet_small", mobile, (3, 32, 32), 13, gen=gen)
    ops = OpsMix()
    export("ops_mix", ops, (3, 16, 16), 13, logits=lambda x: ops.logits(x), extra="output", gen=gen)


if __name__ == "__main__":
    main()
