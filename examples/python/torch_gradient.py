"""Explains a small PyTorch model with sieve and checks sieve's gradient against torch.autograd.

The model is exported to ONNX, loaded by sieve, and both compute the gradient of each sample's
predicted-class logit with respect to the input on the same batch. Also shows LRP on the same model.

Usage: /usr/bin/python3 examples/python/torch_gradient.py [OUT_DIR]
(after bash scripts/demo.sh, which builds the module and makes `import sieve` find it)
"""

import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

import sieve


def small_cnn():
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 8, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(8, 16, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.Flatten(),
        torch.nn.Linear(16 * 7 * 7, 10),
    ).eval()


def main(out_dir):
    net = small_cnn()
    path = Path(out_dir) / "small_cnn.onnx"
    torch.onnx.export(net, torch.zeros(1, 1, 14, 14), str(path), input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}}, opset_version=13)

    x = np.random.default_rng(0).standard_normal((8, 1, 14, 14)).astype(np.float32)
    model = sieve.Model(str(path))
    logits = model(x)

    # torch.autograd: the gradient of each sample's largest logit.
    inputs = torch.from_numpy(x).requires_grad_(True)
    out = net(inputs)
    classes = out.argmax(dim=1)
    out.gather(1, classes[:, None]).sum().backward()
    reference = inputs.grad.numpy()

    gradient = sieve.explain(model, x, "gradient")  # target None: the predicted class, as above
    relevance = sieve.explain(model, x, "lrp.epsilon_plus")

    logit_error = np.abs(logits - out.detach().numpy()).max()
    gradient_error = np.abs(gradient - reference).max() / np.abs(reference).max()
    print(f"model: {path}")
    print(f"predicted classes: {classes.tolist()} (sieve: {logits.argmax(axis=1).tolist()})")
    print(f"logits: largest difference {logit_error:.2e}")
    print(f"gradient: largest difference {gradient_error:.2e} of the largest |gradient|")
    print(f"gradient: largest |gradient| {np.abs(reference).max():.3e}")
    # Each sample's relevance next to the logit it explains (the biases take the rest).
    print("lrp.epsilon_plus: relevance sums", " ".join(f"{v:.3f}" for v in relevance.sum(axis=(1, 2, 3))))
    print("  the explained logits          ", " ".join(f"{v:.3f}" for v in logits.max(axis=1)))
    # float32 sums in another order: a few units in the last place of the largest values.
    if logit_error > 1e-4 or gradient_error > 1e-5 or (logits.argmax(axis=1) != classes.numpy()).any():
        print("sieve and torch disagree", file=sys.stderr)
        return 1
    print("sieve's gradient equals torch.autograd's")
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1:
        sys.exit(main(sys.argv[1]))
    with tempfile.TemporaryDirectory() as scratch:
        sys.exit(main(scratch))
