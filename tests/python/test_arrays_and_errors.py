"""How arrays come in (without a copy, or converted once) and how bad input is refused."""

import threading
import time
import tracemalloc

import numpy as np
import pytest

import sieve
from conftest import IMAGES, MODEL, assert_same, cli_error


def peak_traced_bytes(call):
    """The peak of memory NumPy allocated during `call` (the library's own memory is not traced)."""
    tracemalloc.start()
    try:
        call()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_contiguous_float32_is_not_copied(model, images):
    batch = np.ascontiguousarray(np.repeat(images, 40, axis=0))
    # Results are the library's memory too, so a copy of the batch would be the largest NumPy allocation.
    assert peak_traced_bytes(lambda: model(batch)) < batch.nbytes / 4
    assert peak_traced_bytes(lambda: sieve.explain(model, batch, "gradient")) < batch.nbytes * 1.25


def test_other_arrays_are_converted_once(model, images):
    wide = np.zeros(images.shape[:3] + (56,), dtype=np.float64)
    wide[..., ::2] = images
    view = wide[..., ::2]
    assert not view.flags.c_contiguous and view.dtype == np.float64
    expected = sieve.explain(model, images, "lrp.epsilon_plus")
    np.testing.assert_array_equal(sieve.explain(model, view, "lrp.epsilon_plus"), expected)
    np.testing.assert_array_equal(sieve.explain(model, np.asfortranarray(images), "lrp.epsilon_plus"), expected)
    batch = np.repeat(view, 40, axis=0)[..., ::1]
    strided = np.zeros(batch.shape[:3] + (56,), dtype=np.float32)[..., ::2]
    strided[...] = batch
    converted = strided.size * 4
    assert converted <= peak_traced_bytes(lambda: model(strided)) < 2 * converted


def test_read_only_arrays_are_read(model, images):
    frozen = images.copy()
    frozen.flags.writeable = False
    assert_same(model(frozen), model(images))


def test_the_interpreter_lock_is_released(model, images):
    batch = np.repeat(images, 10, axis=0)
    ticks = []
    stop = threading.Event()

    def tick():
        while not stop.is_set():
            ticks.append(time.perf_counter())
            time.sleep(0.001)

    ticker = threading.Thread(target=tick)
    ticker.start()
    try:
        start = time.perf_counter()
        sieve.explain(model, batch, "integrated_gradients:steps=64")
        end = time.perf_counter()
    finally:
        stop.set()
        ticker.join()
    middle = [t for t in ticks if start + 0.25 * (end - start) < t < end - 0.25 * (end - start)]
    assert end - start > 0.05 and len(middle) > 5, (end - start, len(middle))


@pytest.mark.parametrize(
    "x, message",
    [
        (np.zeros((2, 1, 28, 28), dtype=np.complex64), "x: dtype complex64 is not a real number type"),
        (np.array([["a"]]), "x: dtype <U1 is not a real number type"),
        (np.zeros((2, 1, 28, 28), dtype=object), "x: dtype object is not a real number type"),
        ([[0.0] * 28] * 28, "x: expected a NumPy array, got list"),
        (np.float32(1.0), "x: expected a NumPy array, got float32"),
        (np.array(1.0, dtype=np.float32), "x: a batch needs a leading batch dimension, got a scalar"),
        (np.zeros((2, 28, 28), dtype=np.float32), "input 'input' has shape [2,28,28] but the model expects [?,1,28,28]"),
        (np.zeros((0, 1, 28, 28), dtype=np.float32), "x: the batch has no samples"),
        (np.full((1, 1, 28, 28), np.nan, dtype=np.float32), "input 'input' contains NaN at element 0"),
    ],
)
def test_bad_arrays_raise_sieve_error(model, x, message):
    with pytest.raises(sieve.Error) as raised:
        sieve.explain(model, x, "gradient")
    assert str(raised.value).startswith(message), str(raised.value)


def test_errors_carry_the_command_lines_message(tmp_path, model, images):
    for method in ["lrp.epsilon_plu", "gradient:steps=3", "integrated_gradients:steps=zero"]:
        with pytest.raises(sieve.Error) as raised:
            sieve.explain(model, images, method)
        assert str(raised.value) == cli_error("explain", MODEL, IMAGES, "-m", method, "--out", tmp_path / "x.npy")
    with pytest.raises(sieve.Error) as raised:
        sieve.explain(model, images, "gradient", target=10)
    assert str(raised.value) == cli_error("explain", MODEL, IMAGES, "-m", "gradient", "--target", "10", "--out", tmp_path / "x.npy")
    with pytest.raises(sieve.Error) as raised:
        sieve.explain(model, images, "pattern.net")
    assert str(raised.value) == cli_error("explain", MODEL, IMAGES, "-m", "pattern.net", "--out", tmp_path / "x.npy")


def test_bad_targets(model, images):
    for target, message in [
        ([1, 2], "target: 2 classes for 7 samples: give one per sample"),
        ("max", "target: None (the predicted class), a class index or a list of one class index per sample"),
        ([0.5] * 7, "target: a list of class indices, got an item of type float"),
    ]:
        with pytest.raises(sieve.Error) as raised:
            sieve.explain(model, images, "gradient", target=target)
        assert str(raised.value) == message


def test_invalid_and_closed_models(tmp_path, images):
    missing = tmp_path / "missing.onnx"
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"not a model")
    for path in [missing, garbage]:
        with pytest.raises(sieve.Error) as raised:
            sieve.Model(str(path))
        assert str(raised.value) == cli_error("info", path)
    with sieve.Model(str(MODEL)) as model:
        assert not model.closed
        model(images)
    assert model.closed
    for use in [lambda: model(images), lambda: sieve.explain(model, images, "gradient"), lambda: model.input_names,
                lambda: sieve.fit_patterns(model, [images])]:
        with pytest.raises(sieve.Error, match="the model is closed"):
            use()


def test_patterns_of_another_model_and_empty_data(tmp_path, model, images):
    with pytest.raises(sieve.Error, match="no data for pattern fitting"):
        sieve.fit_patterns(model, [])
    with pytest.raises(sieve.Error, match="x: dtype"):
        sieve.fit_patterns(model, [images, images.astype(np.complex64)])
    with pytest.raises(sieve.Error, match="unknown pattern type|pattern type"):
        sieve.fit_patterns(model, [images], type="quadratic")
    with pytest.raises(sieve.Error, match="missing.safetensors"):
        sieve.Patterns.load(str(tmp_path / "missing.safetensors"))


def test_evaluate_refuses_what_it_cannot_do(model, images):
    with pytest.raises(sieve.Error, match="evaluates region_perturbation"):
        sieve.evaluate(model, images, "gradient", "sparseness")
    with pytest.raises(sieve.Error, match="shape"):
        sieve.evaluate(model, images, [images[:2]], "region_perturbation:size=4,steps=2")
    with pytest.raises(sieve.Error, match="unknown parameter|has no parameter"):
        sieve.evaluate(model, images, "gradient", "region_perturbation:sise=4")
