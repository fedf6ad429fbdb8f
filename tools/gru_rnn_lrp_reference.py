#!/usr/bin/python3
"""Reference relevance of GRU and RNN classifiers by the rules of the book's ch. 11 (Arras et al.)
carried over from the LSTM, written independently of sieve, in float64 from the weights of small ONNX
models this script builds.

Rules (docs/methods.md, "Recurrent cells"), walked back through time against each direction's
processing order, with one ε everywhere (the ε-rule's ε, the prop/abs stabilizers, the splits):
- linear maps z = W x_t + R h_{t-1} + b: R_j = Σ_s a_j w_js / (z_s + ε·sign z_s) · R_s, the bias keeps
  its share; activations pass relevance unchanged;
- GRU, h_t = (1 − z) ⊙ h̃ + z ⊙ h_{t-1}: a proportional split of R_h into the two terms, then each
  product by Table 11.1 — (1 − z) ⊙ h̃ with the gate's pre-activation −a_z (1 − σ(a) = σ(−a)) and the
  signal's a_h, z ⊙ h_{t-1} with a_z and h_{t-1} itself; the candidate h̃ = tanh(a_h):
    linear_before_reset = 0: a_h = W_h x + R_h (r ⊙ h_{t-1}) + b_h, the ε-rule to x and to
      u = r ⊙ h_{t-1}, then the product r ⊙ h_{t-1} by Table 11.1 (a_r, h_{t-1});
    linear_before_reset = 1: a_h = W_h x + Wb_h + r ⊙ q, q = R_h h_{t-1} + Rb_h, the ε-rule to x and
      to the term r ⊙ q, the product by Table 11.1 (a_r, q), then the ε-rule from q to h_{t-1};
- RNN, h_t = tanh|relu(W x + R h_{t-1} + b): the ε-rule;
- the head, a Gemm on the final hidden states: the ε-rule, starting from R = the explained logit.
With biases zeroed and ε → 0 every variant conserves: Σ R(x) + Σ R(h_0) = the logit.

Models (I = 4 features, H = 3 hidden units, 3 classes; inputs x [N, T, I] and h0 [N, D, H], logits
[N, 3]); written to tests/data/models/ with x, h0 (N = 8, T = 6), the float64 logits, the explained
class (largest logit) and, per variant, R of x and h0 at ε = 0.01:
- gru_lrp_forward (linear_before_reset = 1, as PyTorch exports), its layout-1 twin
  gru_lrp_forward_layout1 (the same weights, no transposes), and gru_lrp_forward_zero_bias;
- gru_lrp_bidirectional (linear_before_reset = 0, the head reads the last time step of Y, so relevance
  enters the reverse direction at its first step);
- rnn_lrp_tanh (bidirectional, tanh) and rnn_lrp_tanh_zero_bias, rnn_lrp_relu (forward, relu);
- lstm_lrp_layout0 and lstm_lrp_layout1 (no references): one LSTM classifier in both layouts, with the
  inputs of gru_lrp_forward;
- gru_lrp_clip and rnn_lrp_sigmoid (no references): what the rules do not cover, for the refusals.

Run with Debian's interpreter:  /usr/bin/python3 tools/gru_rnn_lrp_reference.py
"""
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "models")
VARIANTS = ("all", "prop", "abs", "half")
EPSILON = 0.01
FEATURES, HIDDEN, CLASSES, BATCH, STEPS = 4, 3, 3, 8, 6


def stabilized(z, eps):
    return z + eps * np.where(z >= 0, 1.0, -1.0)


def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def split_product(relevance, z_gate, z_signal, variant, eps):
    """(R_gate, R_signal) of a product gate ⊙ signal by Table 11.1."""
    if variant == "all":
        return np.zeros_like(relevance), relevance
    if variant == "half":
        return 0.5 * relevance, 0.5 * relevance
    if variant == "prop":
        gate = z_gate / stabilized(z_gate + z_signal, eps) * relevance
    else:
        gate = np.abs(z_gate) / (np.abs(z_gate) + np.abs(z_signal) + eps) * relevance
    return gate, relevance - gate


class Cell:
    """One recurrent node's weights per direction, a float64 forward pass and the LRP walk back."""

    def __init__(self, kind, directions, linear_before_reset, activation, rng, bias_scale):
        gates = {"LSTM": 4, "GRU": 3, "RNN": 1}[kind]
        self.kind, self.lbr, self.activation = kind, linear_before_reset, activation
        self.directions = directions
        scale = 1.0 / np.sqrt(HIDDEN)
        # Twice the usual initial scale, so gates spread over (0, 1) instead of sitting near ½.
        self.W = rng.uniform(-2 * scale, 2 * scale, (directions, gates * HIDDEN, FEATURES))
        self.R = rng.uniform(-2 * scale, 2 * scale, (directions, gates * HIDDEN, HIDDEN))
        self.B = bias_scale * rng.uniform(-2 * scale, 2 * scale, (directions, 2 * gates * HIDDEN))

    def block(self, m, d, k):
        return m[d][k * HIDDEN:(k + 1) * HIDDEN]

    def act(self, a):
        return np.tanh(a) if self.activation == "Tanh" else np.maximum(a, 0.0)

    def run(self, d, x, h):
        """Direction d over x [N, T, I] from h [N, H]: per time step its values, and the final state."""
        steps = range(STEPS - 1, -1, -1) if self.reverse(d) else range(STEPS)
        trace = {}
        for t in steps:
            xt = x[:, t]
            if self.kind == "RNN":
                b = self.B[d][:HIDDEN] + self.B[d][HIDDEN:]
                a = xt @ self.W[d].T + h @ self.R[d].T + b
                trace[t] = {"x": xt, "h_prev": h, "a": a}
                h = self.act(a)
                continue
            W = [self.block(self.W, d, k) for k in range(3)]
            R = [self.block(self.R, d, k) for k in range(3)]
            Wb = [self.B[d][k * HIDDEN:(k + 1) * HIDDEN] for k in range(3)]
            Rb = [self.B[d][(3 + k) * HIDDEN:(4 + k) * HIDDEN] for k in range(3)]
            a_z = xt @ W[0].T + h @ R[0].T + Wb[0] + Rb[0]
            a_r = xt @ W[1].T + h @ R[1].T + Wb[1] + Rb[1]
            z, r = sigmoid(a_z), sigmoid(a_r)
            q = h @ R[2].T + Rb[2]
            if self.lbr:
                a_h = xt @ W[2].T + Wb[2] + r * q
            else:
                a_h = xt @ W[2].T + (r * h) @ R[2].T + Wb[2] + Rb[2]
            candidate = np.tanh(a_h)
            new_h = (1.0 - z) * candidate + z * h
            trace[t] = {"x": xt, "h_prev": h, "a_z": a_z, "a_r": a_r, "a_h": a_h, "z": z, "r": r,
                        "q": q, "candidate": candidate, "h": new_h, "W": W, "R": R}
            h = new_h
        return trace, h

    def reverse(self, d):
        return d == 1

    def back(self, d, trace, r_h, r_y_last, variant, eps):
        """R of x (per step, [N, I]) and of h0 from R at the final state r_h and at Y's last time step."""
        steps = list(range(STEPS - 1, -1, -1)) if self.reverse(d) else list(range(STEPS))
        r_x = {}
        for t in reversed(steps):
            v = trace[t]
            if t == STEPS - 1 and r_y_last is not None:
                r_h = r_h + r_y_last
            if self.kind == "RNN":
                ratio = r_h / stabilized(v["a"], eps)
                r_x[t] = v["x"] * (ratio @ self.W[d])
                r_h = v["h_prev"] * (ratio @ self.R[d])
                continue
            per_h = r_h / stabilized(v["h"], eps)
            r_new = (1.0 - v["z"]) * v["candidate"] * per_h
            r_kept = v["z"] * v["h_prev"] * per_h
            r_z_new, r_candidate = split_product(r_new, -v["a_z"], v["a_h"], variant, eps)
            r_z_kept, r_h_prev = split_product(r_kept, v["a_z"], v["h_prev"], variant, eps)
            ratio_z = (r_z_new + r_z_kept) / stabilized(v["a_z"], eps)
            ratio_h = r_candidate / stabilized(v["a_h"], eps)
            W, R = v["W"], v["R"]
            if self.lbr:
                r_term = v["r"] * v["q"] * ratio_h
                r_reset, r_q = split_product(r_term, v["a_r"], v["q"], variant, eps)
                r_h_prev = r_h_prev + v["h_prev"] * ((r_q / stabilized(v["q"], eps)) @ R[2])
            else:
                r_u = v["r"] * v["h_prev"] * (ratio_h @ R[2])
                r_reset, r_signal = split_product(r_u, v["a_r"], v["h_prev"], variant, eps)
                r_h_prev = r_h_prev + r_signal
            ratio_r = r_reset / stabilized(v["a_r"], eps)
            r_x[t] = v["x"] * (ratio_z @ W[0] + ratio_r @ W[1] + ratio_h @ W[2])
            r_h = r_h_prev + v["h_prev"] * (ratio_z @ R[0] + ratio_r @ R[1])
        return np.stack([r_x[t] for t in range(STEPS)], axis=1), r_h


class Classifier:
    def __init__(self, cell, head_from_y, rng, bias_scale):
        self.cell, self.head_from_y = cell, head_from_y
        width = cell.directions * HIDDEN
        self.head_w = rng.uniform(-1, 1, (CLASSES, width))
        self.head_b = bias_scale * rng.uniform(-1, 1, CLASSES)

    def forward(self, x, h0):
        traces, features = [], []
        for d in range(self.cell.directions):
            trace, final = self.cell.run(d, x, h0[:, d])
            traces.append(trace)
            features.append(final)
        if self.head_from_y:  # Y at the last time step: the reverse direction's first state
            features = [self.state_at(tr, STEPS - 1) for tr in traces]
        feats = np.concatenate(features, axis=1)
        return feats @ self.head_w.T + self.head_b, traces, feats

    def state_at(self, trace, t):
        v = trace[t]
        return v["h"] if self.cell.kind == "GRU" else self.cell.act(v["a"])

    def lrp(self, x, h0, targets, variant, eps):
        logits, traces, feats = self.forward(x, h0)
        rows = np.arange(x.shape[0])
        explained = logits[rows, targets]
        contributions = feats * self.head_w[targets]
        r_feats = contributions / stabilized(explained, eps)[:, None] * explained[:, None]
        r_x, r_h0 = np.zeros_like(x), np.zeros_like(h0)
        for d in range(self.cell.directions):
            r_d = r_feats[:, d * HIDDEN:(d + 1) * HIDDEN]
            at_final, at_last_step = (None, r_d) if self.head_from_y else (r_d, None)
            rx, rh = self.cell.back(d, traces[d], at_final if at_final is not None else np.zeros_like(r_d),
                                    at_last_step, variant, eps)
            r_x += rx
            r_h0[:, d] = rh
        return r_x, r_h0


def onnx_model(classifier, path, layout, **extra):
    cell = classifier.cell
    D = cell.directions
    f32 = lambda a: numpy_helper.from_array(np.asarray(a, dtype=np.float32))
    inits = []
    for name, value in (("W", cell.W), ("R", cell.R), ("B", cell.B), ("head_w", classifier.head_w),
                        ("head_b", classifier.head_b)):
        t = f32(value)
        t.name = name
        inits.append(t)
    shape = numpy_helper.from_array(np.array([0, D * HIDDEN], dtype=np.int64))
    shape.name = "flat"
    inits.append(shape)
    nodes = []
    attrs = {"hidden_size": HIDDEN, "direction": "bidirectional" if D == 2 else "forward", "layout": layout}
    if cell.kind == "GRU":
        attrs["linear_before_reset"] = int(cell.lbr)
    elif cell.kind == "RNN":
        attrs["activations"] = [cell.activation] * D
    attrs.update(extra)
    if layout == 0:
        nodes += [helper.make_node("Transpose", ["x"], ["x_tm"], perm=[1, 0, 2]),
                  helper.make_node("Transpose", ["h0"], ["h0_dm"], perm=[1, 0, 2])]
        rec_in = ["x_tm", "W", "R", "B", "", "h0_dm"]
    else:
        rec_in = ["x", "W", "R", "B", "", "h0"]
    nodes.append(helper.make_node(cell.kind, rec_in, ["Y", "Y_h"], name="cell", **attrs))
    if classifier.head_from_y:
        starts = numpy_helper.from_array(np.array([STEPS - 1], dtype=np.int64)); starts.name = "last"
        ends = numpy_helper.from_array(np.array([STEPS], dtype=np.int64)); ends.name = "end"
        axes = numpy_helper.from_array(np.array([0 if layout == 0 else 1], dtype=np.int64)); axes.name = "time"
        inits += [starts, ends, axes]
        nodes.append(helper.make_node("Slice", ["Y", "last", "end", "time"], ["Y_last"]))
        # [1, D, N, H] (layout 0) or [N, 1, D, H] (layout 1)
        if layout == 0:
            nodes.append(helper.make_node("Transpose", ["Y_last"], ["Y_n"], perm=[2, 0, 1, 3]))
            final = "Y_n"
        else:
            final = "Y_last"
    elif layout == 0:
        nodes.append(helper.make_node("Transpose", ["Y_h"], ["Y_n"], perm=[1, 0, 2]))
        final = "Y_n"
    else:
        final = "Y_h"
    nodes += [helper.make_node("Reshape", [final, "flat"], ["features"]),
              helper.make_node("Gemm", ["features", "head_w", "head_b"], ["logits"], transB=1)]
    graph = helper.make_graph(
        nodes, "classifier",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", STEPS, FEATURES]),
         helper.make_tensor_value_info("h0", TensorProto.FLOAT, ["batch", D, HIDDEN])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", CLASSES])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, path)


def main():
    rng = np.random.default_rng(11)
    x = rng.standard_normal((BATCH, STEPS, FEATURES)).astype(np.float32).astype(np.float64)
    specs = [
        # name, kind, directions, linear_before_reset, activation, head from Y, variants, layouts
        ("gru_lrp_forward", "GRU", 1, True, None, False, VARIANTS, (0, 1)),
        ("gru_lrp_bidirectional", "GRU", 2, False, None, True, VARIANTS, (0,)),
        ("rnn_lrp_tanh", "RNN", 2, False, "Tanh", False, ("all",), (0,)),
        ("rnn_lrp_relu", "RNN", 1, False, "Relu", False, ("all",), (0,)),
    ]
    for name, kind, D, lbr, activation, from_y, variants, layouts in specs:
        seed = int(rng.integers(1 << 30))
        h0 = (0.5 * rng.standard_normal((BATCH, D, HIDDEN))).astype(np.float32).astype(np.float64)
        for bias_scale, suffix in ((1.0, ""), (0.0, "_zero_bias")):
            if suffix and name not in ("gru_lrp_forward", "rnn_lrp_tanh"):
                continue
            r = np.random.default_rng(seed)
            cell = Cell(kind, D, lbr, activation, r, bias_scale)
            classifier = Classifier(cell, from_y, r, bias_scale)
            # The weights as float32, so sieve and the reference compute with the same numbers.
            for m in (cell, classifier):
                for k, v in vars(m).items():
                    if isinstance(v, np.ndarray):
                        setattr(m, k, v.astype(np.float32).astype(np.float64))
            for layout in layouts if not suffix else (0,):
                path = os.path.join(OUT, name + suffix + ("_layout1" if layout else "") + ".onnx")
                onnx_model(classifier, path, layout)
            # What the rules do not cover, for the refusals: a clipped GRU, an RNN with another activation.
            if name == "gru_lrp_forward" and not suffix:
                onnx_model(classifier, os.path.join(OUT, "gru_lrp_clip.onnx"), 0, clip=10.0)
            if name == "gru_lrp_forward" and not suffix:
                # An LSTM in both layouts (no reference: the two must agree), sharing the GRU's inputs.
                lstm = Classifier(Cell("LSTM", 1, False, None, r, 1.0), False, r, 1.0)
                for layout in (0, 1):
                    onnx_model(lstm, os.path.join(OUT, f"lstm_lrp_layout{layout}.onnx"), layout)
            if name == "rnn_lrp_relu" and not suffix:
                onnx_model(classifier, os.path.join(OUT, "rnn_lrp_sigmoid.onnx"), 0, activations=["Sigmoid"])
            if suffix:
                for v in variants:
                    logits = classifier.forward(x, h0)[0]
                    targets = logits.argmax(1)
                    r_x, r_h0 = classifier.lrp(x, h0, targets, v, 0.0)
                    total = r_x.sum((1, 2)) + r_h0.sum((1, 2))
                    worst = np.max(np.abs(total - logits[np.arange(BATCH), targets]))
                    assert worst < 1e-9, (name, v, worst)
                continue
            logits = classifier.forward(x, h0)[0]
            targets = logits.argmax(1)
            np.save(os.path.join(OUT, name + "_x.npy"), x.astype(np.float32))
            np.save(os.path.join(OUT, name + "_h0.npy"), h0.astype(np.float32))
            np.save(os.path.join(OUT, name + "_logits.npy"), logits)
            for v in variants:
                r_x, r_h0 = classifier.lrp(x, h0, targets, v, EPSILON)
                np.save(os.path.join(OUT, f"{name}_lrp_{v}_x.npy"), r_x.astype(np.float32))
                np.save(os.path.join(OUT, f"{name}_lrp_{v}_h0.npy"), r_h0.astype(np.float32))
            print(f"{name}: logits {np.round(logits[0], 4)}; class {targets}")


if __name__ == "__main__":
    main()
