"""Shared fixtures of the Python tests: the bundled model and images, and the command line to compare with.

Run from the repository: PYTHONPATH=build/release/python /usr/bin/python3 -m pytest tests/python
(scripts/test.sh does). SIEVE_CLI names another command-line binary.
"""

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

import sieve

REPO = Path(__file__).resolve().parents[2]
MODEL = REPO / "examples" / "fashion_cnn.onnx"
IMAGES = REPO / "examples" / "images"
TRAIN = REPO / "examples" / "fashion_train_2000.idx.gz"
CLI = Path(os.environ.get("SIEVE_CLI", REPO / "build" / "release" / "sieve"))


def run_cli(*args):
    """Runs the command line; returns (exit code, stdout, stderr)."""
    done = subprocess.run([str(CLI), *map(str, args)], capture_output=True, text=True, cwd=REPO)
    return done.returncode, done.stdout, done.stderr


def cli_ok(*args):
    code, out, err = run_cli(*args)
    assert code == 0, err
    return out


def cli_error(*args):
    """The message the command line prints for an error, without its "sieve: error: " prefix."""
    code, _, err = run_cli(*args)
    assert code == 1, err
    line = err.strip().splitlines()[-1]
    assert line.startswith("sieve: error: "), err
    return line[len("sieve: error: "):]


def cli_explain(tmp_path, method, *extra):
    """The command line's explanations of the bundled images as one [N, ...] array."""
    out = tmp_path / "cli.npy"
    cli_ok("explain", MODEL, IMAGES, "-m", method, "--out", out, *extra)
    return np.load(out)


def cli_json(*args):
    return json.loads(cli_ok(*args))


def assert_same(actual, expected):
    """The module runs the library's code on the same values in the same batches as the command line,
    so results are equal, not only close."""
    assert actual.shape == expected.shape
    np.testing.assert_array_equal(actual, expected)


@pytest.fixture(scope="session")
def model():
    return sieve.Model(str(MODEL))


@pytest.fixture(scope="session")
def images(model):
    return sieve.load_inputs(model, [str(IMAGES)])
