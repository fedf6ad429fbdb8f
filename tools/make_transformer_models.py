#!/usr/bin/python3
"""Exports the transformer test models of the relevance treatments and their reference explanations
(random weights, fixed seeds), to tests/data/models/:

- vit_lrp: a one-block Vision Transformer (tools/make_modern_models.py's VitTiny) at opset 13;
- bert_lrp: a two-block BERT-style encoder classifier (post-norm, token ids in, word and position
  embeddings, tanh pooler on the first token) at opset 13;
- vit_lrp_unbiased, bert_lrp_unbiased: the same with every bias, LayerNorm shift, positional embedding
  and class token set to zero, for the conservation test;
- vit_torchvision: torchvision's VisionTransformer (nn.MultiheadAttention, whose export splits the packed
  projection with integer arithmetic on shapes) in a one-layer 16×16 configuration, with PyTorch's
  float64 logits.

The references are computed in float64 by an implementation independent of sieve's: the model's own
forward in PyTorch with each relevance treatment written as a gradient modification (LXT's way), so that
relevance = input ⊙ modified gradient. `ratio(z, eps)` passes the gradient times z / (z + eps·sign z),
which is LRP's division by the stabilized output written as a gradient; a linear node wrapped in it is
the ε rule, a sum wrapped in it is the proportional split. Detached tensors are constants (the LN rule's
standard deviation, CP-LRP's softmax probabilities); `half` halves the gradient (AttnLRP's uniform rule on
the two factors of a product); `identity_rule` makes relevance pass an activation unchanged.

Every node of the exported graph has its counterpart here, in the graph's order:
Conv/Gemm/MatMul with constant weights: ε rule (biases of MatMul layers are a separate Add, a
proportional split with 1e-6); Add/Div by constants and residual sums: proportional; LayerNorm: LN rule;
GELU, tanh: identity; Softmax: held (cp) or proportional (attnlrp); MatMul of two activations: the
value factor takes all (cp) or both halves (attnlrp).

Run with Debian's interpreter:  /usr/bin/python3 tools/make_transformer_models.py
"""
import math
import os

import numpy as np
import onnx
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

from make_modern_models import Block, VitTiny
from make_test_models import OUT
from make_test_models import export as export_with_logits

PROPORTIONAL_EPS = 1e-6  # the stabilizer of every proportional split in sieve (DESIGN.md conventions)


class Ratio(torch.autograd.Function):
    @staticmethod
    def forward(ctx, z, eps):
        ctx.save_for_backward(z)
        ctx.eps = eps
        return z.clone()

    @staticmethod
    def backward(ctx, g):
        (z,) = ctx.saved_tensors
        stabilized = z + ctx.eps * torch.where(z >= 0, 1.0, -1.0).to(z.dtype)
        return g * z / stabilized, None


class Half(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, g):
        return 0.5 * g


class IdentityRule(torch.autograd.Function):
    """y = f(x) with relevance passing unchanged: R_x = R_y, so the gradient at x is g·f(x)/x."""

    @staticmethod
    def forward(ctx, x, f):
        y = f(x)
        ctx.save_for_backward(x, y)
        return y

    @staticmethod
    def backward(ctx, g):
        x, y = ctx.saved_tensors
        safe = torch.where(x == 0, torch.ones_like(x), x)
        return torch.where(x == 0, torch.zeros_like(g), g * y / safe), None


def ratio(z, eps=PROPORTIONAL_EPS):
    return Ratio.apply(z, eps)


class Rules:
    def __init__(self, epsilon, attention):
        self.epsilon, self.attention = epsilon, attention

    def dense(self, x, linear):
        """nn.Linear as exported: Gemm (2-D input, bias inside the ε rule) or MatMul + Add (3-D)."""
        if x.dim() == 2:
            return ratio(F.linear(x, linear.weight, linear.bias), self.epsilon)
        return ratio(ratio(x @ linear.weight.t(), self.epsilon) + linear.bias)

    def layer_norm(self, x, norm):
        mean = x.mean(-1, keepdim=True)
        std = torch.sqrt(((x - mean) ** 2).mean(-1, keepdim=True) + norm.eps).detach()
        return ratio((x - mean) / std * norm.weight + norm.bias)

    def attention_block(self, x, block, heads, dim):
        n, t, d = x.shape
        qkv = self.dense(x, block.qkv).reshape(n, t, 3, heads, d // heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        if self.attention == "cp":
            scores = q @ k.transpose(-2, -1)
        else:
            scores = ratio(Half.apply(q) @ Half.apply(k).transpose(-2, -1))
        scores = ratio(scores / math.sqrt(d // heads))
        p = torch.softmax(scores, dim=-1)
        if self.attention == "cp":
            out = ratio(p.detach() @ v)
        else:
            out = ratio(Half.apply(ratio(p)) @ Half.apply(v))
        return self.dense(out.transpose(1, 2).reshape(n, t, d), block.proj)

    def mlp(self, x, block):
        h = IdentityRule.apply(self.dense(x, block.fc1), F.gelu)
        return self.dense(h, block.fc2)


def vit_relevance_forward(model, x, rules):
    block = model.block
    x = ratio(F.conv2d(x, model.embed.weight, model.embed.bias, stride=model.embed.stride), rules.epsilon)
    x = x.flatten(2).transpose(1, 2)
    x = ratio(torch.cat([model.cls.expand(x.shape[0], -1, -1), x], dim=1) + model.pos)
    x = ratio(x + rules.attention_block(rules.layer_norm(x, block.norm1), block, block.heads, x.shape[-1]))
    x = ratio(x + rules.mlp(rules.layer_norm(x, block.norm2), block))
    return rules.dense(rules.layer_norm(x, model.norm)[:, 0], model.head)


class PostNormBlock(Block):
    """BERT's encoder block: the LayerNorm after each residual sum."""

    def forward(self, x):
        n, t, d = x.shape
        q, k, v = self.qkv(x).reshape(n, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        attention = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(d // self.heads), dim=-1)
        x = self.norm1(x + self.proj((attention @ v).transpose(1, 2).reshape(n, t, d)))
        return self.norm2(x + self.fc2(F.gelu(self.fc1(x))))


class BertTiny(nn.Module):
    def __init__(self, vocab=40, length=8, dim=16, heads=2, hidden=32, blocks=2, classes=3):
        super().__init__()
        self.words = nn.Embedding(vocab, dim)
        self.positions = nn.Parameter(torch.randn(1, length, dim) * 0.5)
        self.norm = nn.LayerNorm(dim)
        self.blocks = nn.ModuleList(PostNormBlock(dim, heads, hidden) for _ in range(blocks))
        self.pooler = nn.Linear(dim, dim)
        self.head = nn.Linear(dim, classes)
        for norm in [self.norm] + [n for b in self.blocks for n in (b.norm1, b.norm2)]:
            norm.weight.data.uniform_(0.5, 1.5)
            norm.bias.data.normal_(0.0, 0.2)

    def embed(self, ids):
        return self.words(ids)

    def forward(self, ids):
        return self.classify(self.embed(ids))

    def classify(self, e):
        x = self.norm(e + self.positions)
        for block in self.blocks:
            x = block(x)
        return self.head(torch.tanh(self.pooler(x[:, 0])))


def bert_relevance_forward(model, e, rules):
    x = rules.layer_norm(ratio(e + model.positions), model.norm)
    for block in model.blocks:
        x = rules.layer_norm(ratio(x + rules.attention_block(x, block, block.heads, x.shape[-1])), block.norm1)
        x = rules.layer_norm(ratio(x + rules.mlp(x, block)), block.norm2)
    pooled = IdentityRule.apply(rules.dense(x[:, 0], model.pooler), torch.tanh)
    return rules.dense(pooled, model.head)


def unbiased(model):
    """Zeroes every bias, LayerNorm shift, positional embedding and class token."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias") or name in ("pos", "cls", "positions"):
                p.zero_()
    return model


def export(name, model, example, input_name, dynamic_axes):
    path = os.path.join(OUT, name + ".onnx")
    torch.onnx.export(model.float(), example, path, opset_version=13, input_names=[input_name],
                      output_names=["output"], dynamic_axes=dynamic_axes)
    onnx.checker.check_model(onnx.load(path))
    print(f"{name:20s} {os.path.getsize(path):7d} bytes")


METHODS = {  # reference file suffix: (ε of the layers, attention treatment); sieve's method strings in the test
    "epsilon_cp": (0.01, "cp"),
    "epsilon_attnlrp": (0.01, "attnlrp"),
}


def input_x_gradient(forward, x, targets):
    x = x.detach().clone().requires_grad_(True)
    out = forward(x)
    (g,) = torch.autograd.grad(out[torch.arange(len(targets)), targets].sum(), x)
    return (x * g).detach()


def relevance(forward, model, x, targets, epsilon, attention):
    x = x.detach().clone().requires_grad_(True)
    out = forward(model, x, Rules(epsilon, attention))
    # Relevance is z ⊙ (modified gradient) at every node, so a one-hot gradient seeds R = the logit.
    (g,) = torch.autograd.grad(out[torch.arange(len(targets)), targets].sum(), x)
    return (x * g).detach()


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(11)
    gen = torch.Generator().manual_seed(12)

    vit = VitTiny().double().eval()
    x = torch.randn(4, 3, 16, 16, generator=gen, dtype=torch.float64)
    bert = BertTiny().double().eval()
    ids = torch.randint(0, 40, (4, 8), generator=gen)
    for suffix, (v, b) in {"": (vit, bert), "_unbiased": (unbiased(VitTiny()), unbiased(BertTiny()))}.items():
        v, b = v.double().eval(), b.double().eval()
        with torch.no_grad():
            np.save(os.path.join(OUT, f"vit_lrp{suffix}_logits.npy"), v(x).numpy())
            np.save(os.path.join(OUT, f"bert_lrp{suffix}_logits.npy"), b(ids).numpy())
        if suffix == "":
            e = b.embed(ids).detach()
            vt, bt = v(x).argmax(1), b(ids).argmax(1)
            with torch.no_grad():  # the relevance forwards are the models' own forwards
                assert torch.allclose(vit_relevance_forward(v, x, Rules(0.01, "cp")), v(x), rtol=1e-12, atol=1e-12)
                assert torch.allclose(bert_relevance_forward(b, e, Rules(0.01, "attnlrp")), b(ids), rtol=1e-12,
                                      atol=1e-12)
            np.save(os.path.join(OUT, "vit_lrp_targets.npy"), vt.numpy())
            np.save(os.path.join(OUT, "bert_lrp_targets.npy"), bt.numpy())
            r = input_x_gradient(v, x, vt)
            np.save(os.path.join(OUT, "vit_lrp_input_x_gradient.npy"), r.numpy().astype(np.float32))
            r = input_x_gradient(b.classify, e, bt)
            np.save(os.path.join(OUT, "bert_lrp_input_x_gradient.npy"), r.sum(-1).numpy().astype(np.float32))
            for method, (epsilon, attention) in METHODS.items():
                r = relevance(vit_relevance_forward, v, x, vt, epsilon, attention)
                np.save(os.path.join(OUT, f"vit_lrp_{method}.npy"), r.numpy().astype(np.float32))
                r = relevance(bert_relevance_forward, b, e, bt, epsilon, attention)
                np.save(os.path.join(OUT, f"bert_lrp_{method}.npy"), r.sum(-1).numpy().astype(np.float32))
        export(f"vit_lrp{suffix}", v, torch.randn(1, 3, 16, 16), "input",
               {"input": {0: "batch"}, "output": {0: "batch"}})
        export(f"bert_lrp{suffix}", b, torch.zeros(1, 8, dtype=torch.int64), "input_ids",
               {"input_ids": {0: "batch"}, "output": {0: "batch"}})
    np.save(os.path.join(OUT, "vit_lrp_input.npy"), x.numpy().astype(np.float32))
    vit_torchvision = torchvision.models.VisionTransformer(image_size=16, patch_size=4, num_layers=1, num_heads=2,
                                                           hidden_dim=16, mlp_dim=32, num_classes=5)
    nn.init.normal_(vit_torchvision.heads.head.weight)  # torchvision starts the head at zero
    export_with_logits("vit_torchvision", vit_torchvision, (3, 16, 16), 13, gen=gen)
    np.save(os.path.join(OUT, "bert_lrp_input_ids.npy"), ids.numpy())


if __name__ == "__main__":
    main()
