#!/usr/bin/python3
"""Builds examples/: the bundled Fashion-MNIST CNN (tests/data/shared/models/cnn_dynbatch.onnx), its
sidecar profile, six test images reconstructed from the normalized inputs as 8-bit PNGs (one also
as JPEG), and the 2000 training images the patterns are fitted on as a gzip'ed IDX file. Run with Debian's interpreter: /usr/bin/python3 tools/make_examples.py
"""
import gzip
import json
import os
import shutil
import struct
import zlib

import numpy as np
import torch
import torchvision

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
SHARED = os.path.join(ROOT, "tests", "data", "shared", "models")
OUT = os.path.join(ROOT, "examples")
CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
MEAN, STD = 0.2860, 0.3530


def write_gray_png(path, pixels):
    h, w = pixels.shape
    raw = b"".join(b"\x00" + pixels[y].tobytes() for y in range(h))
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(png)


def main():
    os.makedirs(os.path.join(OUT, "images"), exist_ok=True)
    shutil.copy(os.path.join(SHARED, "cnn_dynbatch.onnx"), os.path.join(OUT, "fashion_cnn.onnx"))
    profile = {
        "description": "Fashion-MNIST CNN (28x28 grayscale), test accuracy 0.898",
        "preprocessing": {"color": "grayscale", "scale": 1 / 255, "mean": [MEAN], "std": [STD], "raw_range": [0, 255]},
        "input_range": {"low": [-0.810198], "high": [2.022663]},
        "class_names": CLASSES,
    }
    with open(os.path.join(OUT, "fashion_cnn.onnx.json"), "w") as f:
        json.dump(profile, f, indent=2)
        f.write("\n")
    inputs = np.load(os.path.join(SHARED, "cnn_inputs.npy"))
    labels = np.load(os.path.join(SHARED, "cnn_labels.npy"))
    for i in range(6):
        pixels = np.clip(np.round((inputs[i, 0] * STD + MEAN) * 255), 0, 255).astype(np.uint8)
        name = f"{i:02d}_{CLASSES[labels[i]].lower().replace('/', '_').replace(' ', '_')}"
        write_gray_png(os.path.join(OUT, "images", name + ".png"), pixels)
        if i == 1:
            jpeg = torchvision.io.encode_jpeg(torch.from_numpy(pixels)[None], quality=95)
            with open(os.path.join(OUT, "images", name + ".jpg"), "wb") as f:
                f.write(bytes(jpeg.numpy()))

    train = np.load(os.path.join(SHARED, "fmnist_train2000.npy"))
    pixels = np.clip(np.round((train[:, 0] * STD + MEAN) * 255), 0, 255).astype(np.uint8)
    header = struct.pack(">BBBB", 0, 0, 0x08, 3) + struct.pack(">III", *pixels.shape)
    with gzip.GzipFile(os.path.join(OUT, "fashion_train_2000.idx.gz"), "wb", mtime=0) as f:
        f.write(header + pixels.tobytes())


if __name__ == "__main__":
    main()
