"""The module gives the command line's results on the bundled model and images."""

import numpy as np
import pytest

import sieve
from conftest import IMAGES, MODEL, TRAIN, assert_same, cli_explain, cli_json, cli_ok


def test_inputs_and_outputs_equal_predict(model, images):
    predicted = cli_json("predict", MODEL, IMAGES, "--json")["predictions"]
    assert images.shape == (len(predicted), 1, 28, 28)
    assert images.dtype == np.float32
    logits = model(images)
    assert_same(logits, np.array([p["logits"] for p in predicted], dtype=np.float32))
    assert model.class_names == cli_json("predict", MODEL, IMAGES, "--json")["class_names"]


@pytest.mark.parametrize(
    "method",
    ["gradient", "integrated_gradients:steps=16", "lrp.epsilon_plus", "lrp.epsilon_gamma_box", "deep_taylor.bounded",
     "occlusion:window=4,stride=4", "grad_cam"],
)
def test_explain_equals_the_command_line(tmp_path, model, images, method):
    assert_same(sieve.explain(model, images, method), cli_explain(tmp_path, method))


def test_targets(tmp_path, model, images):
    assert_same(sieve.explain(model, images, "gradient", target=3), cli_explain(tmp_path, "gradient", "--target", "3"))
    # One class per sample: each row as explained for its class alone.
    classes = [0, 1, 2, 3, 4, 5, 6]
    per_sample = sieve.explain(model, images, "lrp.epsilon_plus", target=np.array(classes))
    for i, c in enumerate(classes):
        assert_same(per_sample[i : i + 1], sieve.explain(model, images[i : i + 1], "lrp.epsilon_plus", target=c))


def test_rules_as_on_the_command_line(tmp_path, model, images):
    assert_same(
        sieve.explain(model, images, "lrp.epsilon_plus", rules=["first:flat"]),
        cli_explain(tmp_path, "lrp.epsilon_plus", "--rule", "first:flat"),
    )


def test_methods_are_the_registry(model):
    listed = cli_json("methods", "--json")["methods"]
    assert sieve.methods() == listed
    assert any(m["name"] == "lrp.epsilon_plus" for m in sieve.methods())


def test_patterns_fitted_from_batches(tmp_path, model, images):
    train = sieve.load_inputs(model, [str(TRAIN)])
    assert train.shape == (2000, 1, 28, 28)
    patterns = sieve.fit_patterns(model, (train[i : i + 300] for i in range(0, len(train), 300)), description="train")
    assert patterns.images == 2000 and patterns.type == "relu" and len(patterns.layers) == 5
    cli_file = tmp_path / "cli.safetensors"
    cli_ok("fit-patterns", MODEL, "--data", TRAIN, "--out", cli_file)
    for method in ["pattern.net", "pattern.attribution"]:
        expected = cli_explain(tmp_path, method, "--patterns", cli_file)
        # Fitted in memory on batches of 300 rows, where the command line fits batches of 32: oneDNN may
        # pick other kernels per batch size, so the layer outputs summed into the statistics agree only to
        # float32 rounding, within τ = 1.2e-4 of their magnitude (the shared cnn's bound, docs/testing.md),
        # and the patterns and explanations within a small multiple of it; 1e-3 of the largest value.
        fitted = sieve.explain(model, images, method, patterns=patterns)
        np.testing.assert_allclose(fitted, expected, rtol=0, atol=1e-3 * np.abs(expected).max())
        # Written and read back, and the command line's file read from Python: the same patterns.
        saved = tmp_path / "saved.safetensors"
        patterns.save(str(saved))
        assert_same(cli_explain(tmp_path, method, "--patterns", saved), fitted)
        loaded = sieve.Patterns.load(str(cli_file))
        assert_same(sieve.explain(model, images, method, patterns=loaded), expected)


def test_region_perturbation_equals_evaluate(tmp_path, model, images):
    metric = "region_perturbation:size=4,steps=12,order=morf+lerf"
    out = tmp_path / "evaluate.json"
    cli_ok("evaluate", MODEL, IMAGES, "-m", "lrp.epsilon_plus", "--metric", metric, "--json", out)
    import json

    expected = json.loads(out.read_text())["region_perturbation"]
    result = sieve.evaluate(model, images, "lrp.epsilon_plus", metric)
    assert result["tiles"] == expected["tiles"] == 49
    method = result["methods"]["lrp.epsilon_plus"]
    for order in ["morf", "lerf"]:
        assert_same(method[order]["curves"], np.array(expected["methods"]["lrp.epsilon_plus"][order]["curves"]))
        assert method[order]["aopc_mean"] == pytest.approx(expected["methods"]["lrp.epsilon_plus"][order]["aopc_mean"])
    assert method["abpc_mean"] == pytest.approx(expected["methods"]["lrp.epsilon_plus"]["abpc_mean"])
    assert_same(result["random"]["curves"], np.array(expected["random"]["curves"]))
    # The same explanations given as an array.
    given = sieve.evaluate(model, images, [sieve.explain(model, images, "lrp.epsilon_plus")], metric)
    assert_same(given["methods"]["explanations[0]"]["morf"]["curves"], method["morf"]["curves"])


def test_several_outputs_as_a_dict(tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["positive"]), helper.make_node("Neg", ["x"], ["negated"])],
        "two_outputs",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3])],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["N", 3]) for n in ["positive", "negated"]],
    )
    path = tmp_path / "two_outputs.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    x = np.array([[-1.0, 0.5, 2.0]], dtype=np.float32)
    outputs = sieve.Model(str(path))(x)
    assert list(outputs) == ["positive", "negated"]
    np.testing.assert_array_equal(outputs["positive"], np.maximum(x, 0))
    np.testing.assert_array_equal(outputs["negated"], -x)
