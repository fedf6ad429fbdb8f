#!/usr/bin/python3
"""Trains a small VGG-shaped CNN on the 2000 bundled Fashion-MNIST training images, upsampled 2× to
56×56 (so that tiles of 4×4 pixels cover 2×2 original pixels), and exports it for the PatternNet Fig. 4
run of tools/pattern_fig4_vgg.sh. Three blocks of conv 3×3 - ReLU - conv 3×3 - ReLU - max-pool 2×2
(16, 32, 64 channels: 56 → 28 → 14 → 7), then dense 3136 → 128 → ReLU → dropout → 10 (logits).

Images 0–1499 train the model (random shifts by up to 2 pixels and horizontal flips); images
1500–1999 are held out from training and are the ones evaluated. Writes into the directory given
(default out/vgg_fashion): vgg_fashion.onnx, train.npy (images 0–1499, 56×56, for fitting patterns)
and heldout.npy (images 1500–1999) with heldout_labels.npy. CPU only, fixed seeds, a few minutes.

Run from the repository root with Debian's interpreter:  /usr/bin/python3 tools/make_vgg_fashion.py [OUT]
"""
import os
import sys
import time

import numpy as np
import onnx
import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
SHARED = os.path.join(ROOT, "tests", "data", "shared", "models")
TRAINED = 1500
EPOCHS = 12


class VggFashion(nn.Module):
    def __init__(self):
        super().__init__()
        layers, cin = [], 1
        for cout in (16, 32, 64):
            layers += [nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(), nn.Conv2d(cout, cout, 3, padding=1), nn.ReLU(),
                       nn.MaxPool2d(2)]
            cin = cout
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Dropout(0.5), nn.Linear(128, 10))

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


def upsample(images):
    # Bilinear 2×: smooth 56×56 images, as an ImageNet photo is smooth at the scale of VGG's 3×3 kernels.
    return F.interpolate(images, scale_factor=2, mode="bilinear", align_corners=False)


def augment(batch, gen):
    # A shift by up to 2 pixels (edge pixels repeated) and a horizontal flip per image, on the 28×28 images.
    padded = F.pad(batch, (2, 2, 2, 2), mode="replicate")
    out = torch.empty_like(batch)
    shifts = torch.randint(0, 5, (len(batch), 2), generator=gen)
    flips = torch.rand(len(batch), generator=gen) < 0.5
    for i, (dy, dx) in enumerate(shifts.tolist()):
        image = padded[i, :, dy:dy + 28, dx:dx + 28]
        out[i] = image.flip(-1) if flips[i] else image
    return out


def accuracy(model, images, labels):
    model.eval()
    with torch.no_grad():
        predicted = torch.cat([model(upsample(images[i:i + 250])).argmax(1) for i in range(0, len(images), 250)])
    return (predicted == labels).float().mean().item()


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join("out", "vgg_fashion")
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    images = torch.from_numpy(np.load(os.path.join(SHARED, "fmnist_train2000.npy")))
    labels = torch.from_numpy(np.load(os.path.join(SHARED, "fmnist_train2000_labels.npy"))).long()
    train_x, train_y = images[:TRAINED], labels[:TRAINED]
    model = VggFashion()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, EPOCHS)
    start = time.time()
    for epoch in range(EPOCHS):
        model.train()
        order = torch.randperm(TRAINED, generator=gen)
        for i in range(0, TRAINED, 50):
            pick = order[i:i + 50]
            loss = F.cross_entropy(model(upsample(augment(train_x[pick], gen))), train_y[pick])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        schedule.step()
        print(f"epoch {epoch + 1:2d}  loss {loss.item():.3f}  held-out accuracy "
              f"{accuracy(model, images[TRAINED:], labels[TRAINED:]):.3f}  {time.time() - start:.0f} s", flush=True)
    model.eval()
    path = os.path.join(out, "vgg_fashion.onnx")
    torch.onnx.export(model, torch.zeros(1, 1, 56, 56), path, opset_version=13, input_names=["input"],
                      output_names=["logits"], dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    onnx.checker.check_model(onnx.load(path))
    with torch.no_grad():
        np.save(os.path.join(out, "train.npy"), upsample(train_x).numpy().astype(np.float32))
        np.save(os.path.join(out, "heldout.npy"), upsample(images[TRAINED:]).numpy().astype(np.float32))
    np.save(os.path.join(out, "heldout_labels.npy"), labels[TRAINED:].numpy())
    print(f"train accuracy {accuracy(model, train_x, train_y):.3f}, held-out accuracy "
          f"{accuracy(model, images[TRAINED:], labels[TRAINED:]):.3f}; wrote {path}")


if __name__ == "__main__":
    main()
