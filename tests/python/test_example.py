"""The example script runs and finds sieve's gradient equal to torch.autograd's."""

import os
import subprocess
import sys

from conftest import REPO


def test_torch_example(tmp_path):
    done = subprocess.run([sys.executable, str(REPO / "examples" / "python" / "torch_gradient.py"), str(tmp_path)],
                          capture_output=True, text=True, env=dict(os.environ))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "sieve's gradient equals torch.autograd's" in done.stdout
    assert (tmp_path / "small_cnn.onnx").exists()
