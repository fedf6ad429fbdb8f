#!/usr/bin/python3
"""Trains the toy LSTMs of the book's ch. 11 §11.5.1 (the fidelity test behind Table 11.2) and exports
them to tests/data/models/ with a slice of their test set.

The task, as the book states it: a sequence of T rows with two features; at every step but two the
first feature holds a random number n_t and the second is 0; at the two relevant steps a < b (drawn
uniformly) the number moves to the second feature (an implicit marker). The target is n_a + n_b
("add", n_t uniform on [−1, −0.5] ∪ [0.5, 1]) or n_a − n_b ("subtract", n_t uniform on [0.5, 1]).
10000 training sequences with T ∈ {4..10}, 2500 validation with T ∈ {11, 12}, 2500 test with
T ∈ {13, 14}; MSE loss. The model is one LSTM cell and a linear output without bias, 17 parameters:
PyTorch's LSTM has two bias vectors per gate, so its hidden-to-hidden bias is frozen at zero. A model
is kept when its validation MSE is below 1e-4; the book keeps 50 per task, this script MODELS (each
seed that misses the bound is skipped, and the seeds kept are printed).

Written per task (add, subtract) to tests/data/models/:
- lstm_toy_<task>_<k>.onnx: model k, opset 13, one ONNX LSTM node, batch and time axes dynamic;
- lstm_toy_<task>_input_T13.npy, _T14.npy: the first 100 test sequences of each length, float32 [100, T, 2];
- lstm_toy_<task>_<k>_output_T13.npy, _T14.npy: PyTorch's float64 output on them, [100].

The full test set is regenerated from its seed by tools/lstm_lrp_reference.py (test_set below).

Run with Debian's interpreter:  /usr/bin/python3 tools/train_lstm_toy.py [add] [subtract]
(both tasks when none is named; the tasks are independent, so two processes may train them side by side).
"""
import os
import sys
import time
import warnings

import numpy as np
import onnx
import torch
import torch.nn as nn

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "models")
TASKS = ("add", "subtract")
MODELS = 5
TRAIN_LENGTHS, VALIDATION_LENGTHS, TEST_LENGTHS = range(4, 11), (11, 12), (13, 14)
COMMITTED_PER_LENGTH = 100
DATA_SEED = {"add": 11, "subtract": 12}
ADAM_EPOCHS, LBFGS_ROUNDS = 20, 20  # each L-BFGS round is up to 50 iterations


def sequences(task, rng, count, lengths):
    """{T: (x [m, T, 2], n_a [m], n_b [m], a [m], b [m])} for `count` sequences of lengths drawn from `lengths`."""
    lengths = list(lengths)
    drawn = rng.choice(lengths, size=count)
    out = {}
    for T in lengths:
        m = int((drawn == T).sum())
        numbers = rng.uniform(0.5, 1.0, size=(m, T))
        if task == "add":
            numbers *= rng.choice([-1.0, 1.0], size=(m, T))
        ab = np.array([np.sort(rng.choice(T, 2, replace=False)) for _ in range(m)]).reshape(m, 2)
        rows = np.arange(m)
        x = np.zeros((m, T, 2))
        x[:, :, 0] = numbers
        for position in (ab[:, 0], ab[:, 1]):
            x[rows, position, 0] = 0.0
            x[rows, position, 1] = numbers[rows, position]
        out[T] = (x, numbers[rows, ab[:, 0]], numbers[rows, ab[:, 1]], ab[:, 0], ab[:, 1])
    return out


def target(task, n_a, n_b):
    return n_a + n_b if task == "add" else n_a - n_b


def datasets(task):
    """Training, validation and test sets, the same for every model of a task."""
    rng = np.random.default_rng(DATA_SEED[task])
    train = sequences(task, rng, 10000, TRAIN_LENGTHS)
    validation = sequences(task, rng, 2500, VALIDATION_LENGTHS)
    test = sequences(task, rng, 2500, TEST_LENGTHS)
    return train, validation, test


def test_set(task):
    return datasets(task)[2]


class ToyLstm(nn.Module):
    """One LSTM cell, the last step's output through a linear map without bias."""

    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(2, 1, batch_first=True)
        self.out = nn.Linear(1, 1, bias=False)
        self.lstm.bias_hh_l0.data.zero_()
        self.lstm.bias_hh_l0.requires_grad_(False)

    def forward(self, x):
        h, _ = self.lstm(x)
        return self.out(h[:, -1]).squeeze(-1)


def as_tensors(task, split):
    return {T: (torch.tensor(x, dtype=torch.float32), torch.tensor(target(task, na, nb), dtype=torch.float32))
            for T, (x, na, nb, _, _) in split.items()}


def mean_squared_error(model, split):
    with torch.no_grad():
        total = sum(((model(x) - y) ** 2).sum().item() for x, y in split.values())
    return total / sum(len(y) for _, y in split.values())


def train(seed, train_split, validation_split):
    """The model of `seed` once its validation MSE is below 1e-4, or None if L-BFGS stops short of it.

    Adam on minibatches finds the basin (validation MSE ~2e-3 after ADAM_EPOCHS); full-batch L-BFGS
    then polishes the 17 parameters, which minibatch steps do slowly: the exact solution keeps tanh in
    its linear range with a large output weight."""
    torch.manual_seed(seed)
    model = ToyLstm()
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert sum(p.numel() for p in trainable) == 17
    adam = torch.optim.Adam(trainable, lr=1e-2)
    for _ in range(ADAM_EPOCHS):
        batches = [(T, idx) for T, (_, y) in train_split.items() for idx in torch.randperm(len(y)).split(100)]
        for k in torch.randperm(len(batches)).tolist():
            T, idx = batches[k]
            x, y = train_split[T]
            adam.zero_grad()
            ((model(x[idx]) - y[idx]) ** 2).mean().backward()
            adam.step()
    lbfgs = torch.optim.LBFGS(trainable, max_iter=50, history_size=20, line_search_fn="strong_wolfe")
    count = sum(len(y) for _, y in train_split.values())

    def closure():
        lbfgs.zero_grad()
        loss = sum(((model(x) - y) ** 2).sum() for x, y in train_split.values()) / count
        loss.backward()
        return loss

    for rounds in range(1, LBFGS_ROUNDS + 1):
        lbfgs.step(closure)
        validation = mean_squared_error(model, validation_split)
        if validation < 1e-4:
            return model, rounds, validation
    return None, LBFGS_ROUNDS, validation


def export(model, name, inputs):
    model.eval()
    path = os.path.join(OUT, name + ".onnx")
    torch.onnx.export(model, torch.zeros(1, 13, 2), path, opset_version=13, input_names=["input"],
                      output_names=["output"], dynamic_axes={"input": {0: "batch", 1: "time"}, "output": {0: "batch"}})
    graph = onnx.load(path)
    onnx.checker.check_model(graph)
    assert any(n.op_type == "LSTM" for n in graph.graph.node), name + ": no ONNX LSTM node"
    with torch.no_grad():
        m64 = model.double()
        for T, x in inputs.items():
            np.save(os.path.join(OUT, f"{name}_output_T{T}.npy"), m64(torch.tensor(x, dtype=torch.float64)).numpy())
        model.float()


def main():
    torch.set_num_threads(1)
    # The exporter's notes on LSTM batch sizes and constant shapes do not apply: batch and time are dynamic.
    warnings.filterwarnings("ignore", category=UserWarning, module="torch.onnx")
    os.makedirs(OUT, exist_ok=True)
    for task in sys.argv[1:] or TASKS:
        train_split, validation_split, test_split = datasets(task)
        committed = {T: test_split[T][0][:COMMITTED_PER_LENGTH].astype(np.float32) for T in TEST_LENGTHS}
        for T, x in committed.items():
            np.save(os.path.join(OUT, f"lstm_toy_{task}_input_T{T}.npy"), x)
        train_t, validation_t = as_tensors(task, train_split), as_tensors(task, validation_split)
        test_t = as_tensors(task, test_split)
        kept, seed = 0, 0
        while kept < MODELS:
            start = time.time()
            model, rounds, validation = train(seed, train_t, validation_t)
            status = "kept as %d" % kept if model is not None else "skipped"
            test = mean_squared_error(model, test_t) if model is not None else float("nan")
            print(f"{task} seed {seed}: {rounds} L-BFGS rounds, validation MSE {validation:.2e}, "
                  f"test MSE {test:.2e}, {time.time() - start:.0f} s, {status}", flush=True)
            if model is not None:
                export(model, f"lstm_toy_{task}_{kept}", committed)
                kept += 1
            seed += 1


if __name__ == "__main__":
    main()
