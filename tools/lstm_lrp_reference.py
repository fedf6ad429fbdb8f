#!/usr/bin/python3
"""Reference relevance of LSTMs by the book's ch. 11 rules (Arras et al.), written independently of
sieve, from the weights of the exported ONNX files; and the book's Table 11.2 on the toy models of
tools/train_lstm_toy.py.

The ONNX LSTM (forward, reverse or bidirectional, default activations, gate order i, o, f, c) is run
step by step in float64. LRP walks each direction back through time against its processing order
(book §11.3), the shares of both directions adding up at each step of x:
- linear maps, the four pre-activations z = W x_t + R h_{t-1} + b: the ε-rule
  R_j = Σ_s a_j w_js / (z_s + ε·sign z_s) · R_s; the bias keeps its share;
- the three products gate ⊙ signal, i ⊙ g, f ⊙ c_{t-1} and o ⊙ tanh(c_t), by Table 11.1 on the
  gate's pre-activation z_g and the signal's z_s (c_{t-1} for f ⊙ c_{t-1}, c_t for o ⊙ tanh(c_t)):
    all  (signal-take-all): R_g = 0, R_s = R_p;
    prop: R_g = z_g / (z_g + z_s + ε·sign(z_g + z_s)) · R_p, R_s = the rest;
    abs:  R_g = |z_g| / (|z_g| + |z_s| + ε) · R_p, R_s = the rest;
    half: R_g = R_s = R_p / 2;
  the activation functions pass relevance unchanged;
- the accumulation c_t = f ⊙ c_{t-1} + i ⊙ g: a proportional split with the same ε
  (R_{f⊙c} = f c_{t-1} / (c_t + ε·sign c_t) · R_c, R_{i⊙g} = i g / (…) · R_c);
  the book's §11.3.3 derives it under LRP-all, where the forget gate gets nothing. Under prop, abs and
  half the forget gate takes its share of f ⊙ c_{t-1} like the other two gates: that reading
  reproduces the book's Table 11.2, while keeping f ⊙ c_{t-1} signal-take-all (rows "f: none") lets
  LRP-half track the numbers on "add" (ρ ≈ 99.8 %, against the book's 29 % and 51 %);
- the linear output layer: the ε-rule, starting from R = the explained output.
The relevance left at h_0 and c_0 is the initial states'. With biases zeroed and ε → 0 every variant
conserves: Σ R(x) + R(h_0) + R(c_0) = the explained output (checked below).

Besides LRP: gradient × input (autograd) and occlusion f-diff (f(x) − f(x with step t zeroed)).
Per-time-step relevance is the sum over the step's features (book §11.5.1).

Written to tests/data/models/:
- lstm_toy_<task>_0_lrp_<variant>_T13.npy: relevance [100, 13, 2] of toy model 0 on the committed
  T = 13 inputs, ε = 0 as the book uses on the toy task;
- lstm_lrp_classifier.onnx (+ lstm_lrp_classifier_zero_bias.onnx, the same weights with every bias zeroed):
  an LSTM classifier, 4 features, 3 hidden units, 3 classes, random weights, inputs x [N, T, 4],
  h0 [N, 3], c0 [N, 3]; lstm_lrp_classifier_{x,h0,c0}.npy (N = 8, T = 6), _logits.npy (float64),
  _target.npy (the explained class: the largest logit, int64), and for each variant
  lstm_lrp_classifier_lrp_<variant>_{x,h0,c0}.npy at ε = 0.01 (rules above, same ε everywhere).
- lstm_lrp_bidirectional.onnx: a bidirectional LSTM (4 features, 3 hidden units per direction) whose two
  final hidden states, concatenated, feed a Gemm to 3 classes; zero initial states; random weights;
  lstm_lrp_bidirectional_x.npy [8, 6, 4], _logits.npy, and lstm_lrp_bidirectional_lrp_<variant>.npy,
  R of x for the largest logit at ε = 0.01.
It prints Table 11.2 over the committed toy models on the full test sets (2500 sequences, T ∈ {13, 14})
and on the committed slice of them (200 sequences) that sieve's test measures.

Run with Debian's interpreter after tools/train_lstm_toy.py:  /usr/bin/python3 tools/lstm_lrp_reference.py
"""
import glob
import os
import warnings

import numpy as np
import onnx
import onnx.numpy_helper
import torch
import torch.nn as nn

from train_lstm_toy import OUT, TASKS, TEST_LENGTHS, target, test_set

VARIANTS = ("all", "prop", "abs", "half")
CLASSIFIER_EPSILON = 0.01


def stabilized(z, eps):
    return z + eps * torch.where(z >= 0, 1.0, -1.0)


class Lstm:
    """The ONNX LSTM node of a model (forward, reverse or bidirectional) and the linear layer on the
    final hidden states of its directions (concatenated), as float64 tensors."""

    def __init__(self, path):
        graph = onnx.load(path).graph
        constants = {t.name: torch.tensor(onnx.numpy_helper.to_array(t), dtype=torch.float64) for t in graph.initializer}
        lstm = next(n for n in graph.node if n.op_type == "LSTM")
        attributes = {a.name: onnx.helper.get_attribute_value(a) for a in lstm.attribute}
        assert "activations" not in attributes and attributes.get("layout", 0) == 0
        direction = attributes.get("direction", b"forward").decode()
        w_all, r_all, b_all = (constants[name] for name in lstm.input[1:4])
        hidden = r_all.shape[2]
        # ONNX order i, o, f, c; kept as named blocks so the rules below read like the book.
        order = ("i", "o", "f", "c")
        self.directions = []
        for d in range(w_all.shape[0]):
            w, r, b = w_all[d], r_all[d], b_all[d]
            self.directions.append({
                "reverse": direction == "reverse" or d == 1,
                "w": {g: w[k * hidden:(k + 1) * hidden] for k, g in enumerate(order)},
                "r": {g: r[k * hidden:(k + 1) * hidden] for k, g in enumerate(order)},
                "b": {g: b[k * hidden:(k + 1) * hidden] + b[(4 + k) * hidden:(5 + k) * hidden]
                      for k, g in enumerate(order)}})
        self.hidden = hidden
        head = next(n for n in graph.node if n.op_type in ("MatMul", "Gemm") and n.input[1] in constants)
        weight = constants[head.input[1]]
        if head.op_type == "Gemm":
            transposed = any(a.name == "transB" and a.i == 1 for a in head.attribute)
            self.head_w = weight.T if transposed else weight
            self.head_b = constants[head.input[2]] if len(head.input) > 2 else torch.zeros(weight.shape[0])
        else:
            self.head_w = weight
            adds = [n for n in graph.node if n.op_type == "Add" and head.output[0] in n.input]
            self.head_b = next((constants[i] for n in adds for i in n.input if i in constants),
                               torch.zeros(weight.shape[1], dtype=torch.float64))

    @staticmethod
    def steps(direction, count):
        """The time steps in processing order."""
        return list(reversed(range(count))) if direction["reverse"] else list(range(count))

    def run(self, direction, x, h, c):
        """One direction over x: {name: [T] list of [N, H] by time step} and its final hidden state."""
        trace = {k: [None] * x.shape[1] for k in ("x", "h_prev", "c_prev", "z", "i", "o", "f", "g", "c", "h")}
        w, r, b = direction["w"], direction["r"], direction["b"]
        for t in self.steps(direction, x.shape[1]):
            z = {k: x[:, t] @ w[k].T + h @ r[k].T + b[k] for k in w}
            i, o, f, g = torch.sigmoid(z["i"]), torch.sigmoid(z["o"]), torch.sigmoid(z["f"]), torch.tanh(z["c"])
            for k, v in (("x", x[:, t]), ("h_prev", h), ("c_prev", c), ("z", z), ("i", i), ("o", o), ("f", f), ("g", g)):
                trace[k][t] = v
            c = f * c + i * g
            h = o * torch.tanh(c)
            trace["c"][t], trace["h"][t] = c, h
        return trace, h

    def forward(self, x, h0=None, c0=None):
        """Logits [N, C] and each direction's trace; h0, c0 [N, H] (one direction) or [D, N, H]."""
        states = []
        for d, direction in enumerate(self.directions):
            zero = torch.zeros(x.shape[0], self.hidden, dtype=torch.float64)
            h = zero if h0 is None else (h0 if h0.dim() == 2 else h0[d])
            c = zero if c0 is None else (c0 if c0.dim() == 2 else c0[d])
            states.append(self.run(direction, x, h, c))
        features = torch.cat([final for _, final in states], dim=1)
        return features @ self.head_w + self.head_b, [trace for trace, _ in states]


def split_product(relevance, z_gate, z_signal, variant, eps):
    """(R_gate, R_signal) of a product gate ⊙ signal by Table 11.1."""
    if variant == "all":
        return torch.zeros_like(relevance), relevance
    if variant == "half":
        return 0.5 * relevance, 0.5 * relevance
    if variant == "prop":
        gate = z_gate / stabilized(z_gate + z_signal, eps) * relevance
    elif variant == "abs":
        gate = z_gate.abs() / (z_gate.abs() + z_signal.abs() + eps) * relevance
    else:
        raise ValueError(variant)
    return gate, relevance - gate


def lrp(model, x, targets, variant, eps, h0=None, c0=None, forget_product=True):
    """Relevance of x [N, T, D] and of the initial states ([N, H] for one direction, else [D, N, H]) for
    the logits `targets` [N]. Without forget_product f ⊙ c_{t-1} is signal-take-all under every variant
    (printed beside Table 11.2 for comparison)."""
    logits, traces = model.forward(x, h0, c0)
    rows = torch.arange(x.shape[0])
    explained = logits[rows, targets]
    finals = [tr["h"][model.steps(direction, x.shape[1])[-1]] for direction, tr in zip(model.directions, traces)]
    contributions = torch.cat(finals, dim=1) * model.head_w[:, targets].T
    r_head = contributions / stabilized(explained, eps)[:, None] * explained[:, None]
    r_x = torch.zeros_like(x)
    r_h0, r_c0 = [], []
    for d, (direction, tr) in enumerate(zip(model.directions, traces)):
        r_h = r_head[:, d * model.hidden:(d + 1) * model.hidden]
        r_c = torch.zeros_like(r_h)
        for t in reversed(model.steps(direction, x.shape[1])):
            z = tr["z"][t]
            r_zo, r_state = split_product(r_h, z["o"], tr["c"][t], variant, eps)
            r_c = r_c + r_state
            denominator = stabilized(tr["c"][t], eps)
            r_product = tr["i"][t] * tr["g"][t] / denominator * r_c
            r_c_prev = tr["f"][t] * tr["c_prev"][t] / denominator * r_c
            r_zi, r_zg = split_product(r_product, z["i"], z["c"], variant, eps)
            r_zf = torch.zeros_like(r_h)
            if forget_product:
                r_zf, r_c_prev = split_product(r_c_prev, z["f"], tr["c_prev"][t], variant, eps)
            r_h_prev = torch.zeros_like(r_h)
            for gate, r_gate in (("i", r_zi), ("c", r_zg), ("o", r_zo), ("f", r_zf)):
                ratio = r_gate / stabilized(z[gate], eps)
                r_x[:, t] += tr["x"][t] * (ratio @ direction["w"][gate])
                r_h_prev += tr["h_prev"][t] * (ratio @ direction["r"][gate])
            r_h, r_c = r_h_prev, r_c_prev
        r_h0.append(r_h)
        r_c0.append(r_c)
    if len(model.directions) == 1:
        return r_x, r_h0[0], r_c0[0]
    return r_x, torch.stack(r_h0), torch.stack(r_c0)


def gradient_x_input(model, x, targets):
    x = x.clone().requires_grad_(True)
    logits, _ = model.forward(x)
    logits[torch.arange(x.shape[0]), targets].sum().backward()
    return (x * x.grad).detach()


def occlusion(model, x, targets):
    """f(x) − f(x with step t zeroed), [N, T]."""
    rows = torch.arange(x.shape[0])
    with torch.no_grad():
        full = model.forward(x)[0][rows, targets]
        out = torch.zeros(x.shape[:2], dtype=torch.float64)
        for t in range(x.shape[1]):
            occluded = x.clone()
            occluded[:, t] = 0.0
            out[:, t] = full - model.forward(occluded)[0][rows, targets]
    return out


def per_step(relevance):
    return relevance.sum(-1) if relevance.dim() == 3 else relevance


def table_row(per_model):
    """'mean (std)' in % of each statistic over the models."""
    values = np.array(per_model) * 100.0
    return "  ".join(f"{m:8.3f} ({s:6.3f})" for m, s in zip(values.mean(0), values.std(0)))


def at_positions(step_relevance, a, b):
    """R_a, R_b and (|R_a| + |R_b|) / Σ_t |R_t| of each sequence."""
    rows = np.arange(len(a))
    r_a, r_b = step_relevance[rows, a], step_relevance[rows, b]
    return r_a, r_b, (np.abs(r_a) + np.abs(r_b)) / np.abs(step_relevance).sum(1)


def statistics(n_a, n_b, r_a, r_b, share):
    """ρ(n_a, R_a), ρ(n_b, R_b), E[(|R_a| + |R_b|) / Σ_t |R_t|] over one test set."""
    return np.corrcoef(n_a, r_a)[0, 1], np.corrcoef(n_b, r_b)[0, 1], share.mean()


def committed_slice(task):
    """The committed test sequences in test_set's form, positions and numbers read off the inputs."""
    out = {}
    for T in TEST_LENGTHS:
        x = np.load(os.path.join(OUT, f"lstm_toy_{task}_input_T{T}.npy")).astype(np.float64)
        marked = np.argwhere(x[:, :, 1] != 0.0)
        a, b = marked[0::2, 1], marked[1::2, 1]
        rows = np.arange(x.shape[0])
        out[T] = (x, x[rows, a, 1], x[rows, b, 1], a, b)
    return out


def table_11_2(test_sets, title, extra_rows):
    methods = ["gradient × input", "occlusion"] + ["LRP-" + v for v in VARIANTS]
    if extra_rows:
        methods += ["LRP-" + v + ", f: none" for v in VARIANTS[1:]]
    print(f"Table 11.2: mean (std) in % over the models; ε = 0; {title}")
    print(f"{'':24s} {'ρ(n_a, R_a)':>18s} {'ρ(n_b, R_b)':>18s} {'E[(|R_a|+|R_b|)/Σ|R_t|]':>18s}")
    for task in TASKS:
        test = test_sets(task)
        paths = sorted(glob.glob(os.path.join(OUT, f"lstm_toy_{task}_[0-9].onnx")))
        per_method = {m: [] for m in methods}
        for path in paths:
            model = Lstm(path)
            # Pool both lengths: the steps are per sequence, and each statistic is over test points.
            rows = {m: [] for m in methods}
            for T in TEST_LENGTHS:
                x_np, n_a, n_b, a, b = test[T]
                x = torch.tensor(x_np.astype(np.float32), dtype=torch.float64)
                # The model solves its task on this test set (its test MSE is printed by the training).
                assert np.mean((model.forward(x)[0][:, 0].numpy() - target(task, n_a, n_b)) ** 2) < 1e-3
                targets = torch.zeros(len(a), dtype=torch.long)
                relevance = {"gradient × input": gradient_x_input(model, x, targets),
                             "occlusion": occlusion(model, x, targets)}
                for v in VARIANTS:
                    relevance["LRP-" + v] = lrp(model, x, targets, v, 0.0)[0]
                for v in VARIANTS[1:] if extra_rows else ():
                    relevance["LRP-" + v + ", f: none"] = lrp(model, x, targets, v, 0.0, forget_product=False)[0]
                for m in methods:
                    rows[m].append((n_a, n_b) + at_positions(per_step(relevance[m]).numpy(), a, b))
            for m in methods:
                per_method[m].append(statistics(*(np.concatenate(parts) for parts in zip(*rows[m]))))
        print(f"{task} ({len(paths)} models)")
        for m in methods:
            print(f"  {m:22s} {table_row(per_method[m])}")


def write_toy_references():
    for task in TASKS:
        model = Lstm(os.path.join(OUT, f"lstm_toy_{task}_0.onnx"))
        x = torch.tensor(np.load(os.path.join(OUT, f"lstm_toy_{task}_input_T13.npy")), dtype=torch.float64)
        expected = np.load(os.path.join(OUT, f"lstm_toy_{task}_0_output_T13.npy"))
        assert np.allclose(model.forward(x)[0][:, 0].numpy(), expected, atol=1e-12)
        targets = torch.zeros(x.shape[0], dtype=torch.long)
        for v in VARIANTS:
            r_x = lrp(model, x, targets, v, 0.0)[0]
            np.save(os.path.join(OUT, f"lstm_toy_{task}_0_lrp_{v}_T13.npy"), r_x.numpy().astype(np.float32))


class LstmClassifier(nn.Module):
    def __init__(self, features=4, hidden=3, classes=3):
        super().__init__()
        self.lstm = nn.LSTM(features, hidden, batch_first=True)
        self.head = nn.Linear(hidden, classes)

    def forward(self, x, h0, c0):
        out, _ = self.lstm(x, (h0.unsqueeze(0), c0.unsqueeze(0)))
        return self.head(out[:, -1])


def export_classifier(model, name, inputs):
    path = os.path.join(OUT, name + ".onnx")
    batch = {0: "batch"}
    torch.onnx.export(model, tuple(t[:1] for t in inputs), path, opset_version=13,
                      input_names=["x", "h0", "c0"], output_names=["logits"],
                      dynamic_axes={"x": {0: "batch", 1: "time"}, "h0": batch, "c0": batch, "logits": batch})
    graph = onnx.load(path)
    onnx.checker.check_model(graph)
    assert any(n.op_type == "LSTM" for n in graph.graph.node)
    return path


def write_classifier_references():
    torch.manual_seed(5)
    model = LstmClassifier()
    with torch.no_grad():
        # Twice PyTorch's initial scale, so gates spread over (0, 1) instead of sitting near ½.
        for p in model.parameters():
            p.mul_(2.0)
    model.eval()
    gen = torch.Generator().manual_seed(6)
    inputs = (torch.randn(8, 6, 4, generator=gen), 0.5 * torch.randn(8, 3, generator=gen),
              0.5 * torch.randn(8, 3, generator=gen))
    path = export_classifier(model, "lstm_lrp_classifier", inputs)
    zero_bias = LstmClassifier()
    zero_bias.load_state_dict(model.state_dict())
    with torch.no_grad():
        for name, p in zero_bias.named_parameters():
            if "bias" in name:
                p.zero_()
    zero_bias_path = export_classifier(zero_bias.eval(), "lstm_lrp_classifier_zero_bias", inputs)
    for name, t in zip(("x", "h0", "c0"), inputs):
        np.save(os.path.join(OUT, f"lstm_lrp_classifier_{name}.npy"), t.numpy())
    with torch.no_grad():
        logits = model.double()(*(t.double() for t in inputs)).numpy()
    np.save(os.path.join(OUT, "lstm_lrp_classifier_logits.npy"), logits)
    targets = torch.tensor(logits.argmax(1))
    np.save(os.path.join(OUT, "lstm_lrp_classifier_target.npy"), targets.numpy().astype(np.int64))

    x, h0, c0 = (t.double() for t in inputs)
    reference = Lstm(path)
    assert np.allclose(reference.forward(x, h0, c0)[0].numpy(), logits, atol=1e-12)
    for v in VARIANTS:
        for name, r in zip(("x", "h0", "c0"), lrp(reference, x, targets, v, CLASSIFIER_EPSILON, h0, c0)):
            np.save(os.path.join(OUT, f"lstm_lrp_classifier_lrp_{v}_{name}.npy"), r.numpy().astype(np.float32))

    # Conservation without biases: every variant hands the whole logit to x, h0 and c0.
    unbiased = Lstm(zero_bias_path)
    explained = unbiased.forward(x, h0, c0)[0][torch.arange(8), targets]
    for v in VARIANTS:
        r_x, r_h, r_c = lrp(unbiased, x, targets, v, 1e-9, h0, c0)
        total = r_x.sum((1, 2)) + r_h.sum(1) + r_c.sum(1)
        assert torch.allclose(total, explained, rtol=1e-7), (v, total, explained)
    print("conservation with biases zeroed (ε = 1e-9): Σ R(x, h0, c0) = logit for", ", ".join(VARIANTS))


class BidirectionalClassifier(nn.Module):
    def __init__(self, features=4, hidden=3, classes=3):
        super().__init__()
        self.lstm = nn.LSTM(features, hidden, batch_first=True, bidirectional=True)
        self.head = nn.Linear(2 * hidden, classes)

    def forward(self, x):
        _, (h_n, _) = self.lstm(x)
        return self.head(torch.cat([h_n[0], h_n[1]], dim=1))


def write_bidirectional_references():
    torch.manual_seed(7)
    model = BidirectionalClassifier()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(2.0)
    model.eval()
    x = torch.randn(8, 6, 4, generator=torch.Generator().manual_seed(8))
    path = os.path.join(OUT, "lstm_lrp_bidirectional.onnx")
    torch.onnx.export(model, x[:1], path, opset_version=13, input_names=["x"], output_names=["logits"],
                      dynamic_axes={"x": {0: "batch", 1: "time"}, "logits": {0: "batch"}})
    graph = onnx.load(path)
    onnx.checker.check_model(graph)
    assert any(n.op_type == "LSTM" for n in graph.graph.node)
    np.save(os.path.join(OUT, "lstm_lrp_bidirectional_x.npy"), x.numpy())
    with torch.no_grad():
        logits = model.double()(x.double()).numpy()
    np.save(os.path.join(OUT, "lstm_lrp_bidirectional_logits.npy"), logits)
    reference = Lstm(path)
    assert np.allclose(reference.forward(x.double())[0].numpy(), logits, atol=1e-12)
    targets = torch.tensor(logits.argmax(1))
    for v in VARIANTS:
        r_x = lrp(reference, x.double(), targets, v, CLASSIFIER_EPSILON)[0]
        np.save(os.path.join(OUT, f"lstm_lrp_bidirectional_lrp_{v}.npy"), r_x.numpy().astype(np.float32))


def main():
    torch.set_num_threads(1)
    # The exporter's notes on LSTM batch sizes and constant shapes do not apply: batch and time are dynamic.
    warnings.filterwarnings("ignore", category=UserWarning, module="torch.onnx")
    write_toy_references()
    write_classifier_references()
    write_bidirectional_references()
    table_11_2(test_set, "2500 test sequences, T ∈ {13, 14}", True)
    # What tests/rules/lstm_relevance_test.cpp measures in sieve on the committed slice.
    table_11_2(committed_slice, "the committed 200 test sequences (100 each of T = 13, 14)", False)


if __name__ == "__main__":
    main()
