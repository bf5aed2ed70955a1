"""Sequence: shape checks and their messages, input handling, dtype, rng, input_grad, summary, mlp."""

from __future__ import annotations

import re
import warnings

import attrs
import numpy as np
import pytest

from user_layers import Scale

from lamina import layers
from lamina.layers.layer import ROW_ALIGN

rng0 = np.random.default_rng(0)


def dense(n_in, n_out, dtype=np.float32):
    return layers.Dense.init(np.random.default_rng(n_in * 100 + n_out), n_in, n_out, dtype=dtype)


# --- shape checks at construction ------------------------------------------------------------

def test_misfit_fails_at_construction_naming_both_layers():
    with pytest.raises(layers.ShapeError,
                       match=r"^layers\[2\] Dense\(64 -> 10.*expects input \(n, 64\).*layers\[1\] ReLU.*\(n, "
                             r"128\)$"):
        layers.Sequence([dense(784, 128), layers.ReLU(), dense(64, 10)])


def test_misfit_error_is_a_value_error_with_its_parts():
    with pytest.raises(ValueError) as caught:
        layers.Sequence([dense(4, 5), dense(6, 3)])
    error = caught.value
    assert isinstance(error, layers.ShapeError)
    assert (error.path, error.expected, error.received) == ("layers[1]", (6,), (5,))
    assert error.source.startswith("layers[0] Dense(4 -> 5")


def test_nested_misfit_is_named_by_path():
    inner = layers.Sequence([dense(6, 3), layers.ReLU()])
    with pytest.raises(layers.ShapeError,
                       match=r"^layers\[1\]\.layers\[0\] Dense\(6 -> 3.*\(n, 6\).*layers\[0\] Dense\(4 -> "
                             r"5.*\(n, 5\)$"):
        layers.Sequence([dense(4, 5), inner])


def test_nested_misfit_deeper_in_names_the_inner_source():
    inner = layers.Sequence([layers.Tanh(), layers.Sequence([dense(7, 2)])])
    with pytest.raises(layers.ShapeError,
                       match=r"^layers\[1\]\.layers\[1\]\.layers\[0\] Dense\(7 -> 2.*\(n, 7\)"
                             r".*layers\[1\]\.layers\[0\] Tanh.*\(n, 5\)$"):
        layers.Sequence([dense(4, 5), inner])


def test_fitting_layers_build():
    model = layers.Sequence([dense(4, 5), layers.Sequence([layers.ReLU(), dense(5, 2)]), layers.Sigmoid()])
    assert model.output_shape((4,)) == (2,)
    assert model.output_shape(None) == (2,)


# --- shape checks at the first batch ---------------------------------------------------------

def test_a_user_layer_defers_the_check_to_the_first_batch():
    model = layers.Sequence([dense(4, 5), Scale(gain=np.ones(5, dtype=np.float32)), dense(6, 3)])  # builds
    x = np.ones((2, 4), dtype=np.float32)
    pattern = r"^layers\[2\] Dense\(6 -> 3.*expects input \(n, 6\).*layers\[1\] Scale.*\(2, 5\)$"
    with pytest.raises(layers.ShapeError, match=pattern):
        model.forward(x, layers.EVAL)
    with pytest.raises(layers.ShapeError, match=pattern):
        model(x)


def test_an_activation_first_defers_the_check_to_the_first_batch():
    model = layers.Sequence([layers.ReLU(), dense(4, 3)])
    assert model(np.ones((2, 4))).shape == (2, 3)
    with pytest.raises(layers.ShapeError, match=r"^layers\[1\] Dense\(4 -> 3.*\(n, 4\).*layers\[0\] "
                                                r"ReLU.*\(2, 5\)$"):
        model.forward(np.ones((2, 5)), layers.EVAL)


@pytest.mark.parametrize("shape", [(3, 6), (3,), (3, 4, 1)])
def test_a_wrong_batch_fails_at_the_first_layer(shape):
    model = layers.mlp(rng0, [4, 5, 3])
    with pytest.raises(layers.ShapeError,
                       match=r"^layers\[0\] Dense\(4 -> 5.*expects input \(n, (\.\.\., )?4\), but the input"):
        model.forward(np.ones(shape), layers.EVAL)


def test_a_wrong_batch_into_a_nested_first_layer_names_its_path():
    model = layers.Sequence([layers.Sequence([dense(4, 5)]), layers.ReLU()])
    with pytest.raises(layers.ShapeError, match=r"^layers\[0\]\.layers\[0\] Dense\(4 -> 5.*the input is \(2, "
                                                r"3\)"):
        model(np.ones((2, 3)))


# --- input -----------------------------------------------------------------------------------

def test_a_float64_batch_into_a_float32_model_gives_float32():
    model = layers.mlp(rng0, [3, 4, 2])
    x = np.random.default_rng(1).standard_normal((5, 3))
    y, cache = model.forward(x, layers.EVAL)
    assert y.dtype == np.float32 and model(x).dtype == np.float32
    assert cache[0].dtype == np.float32  # cast once, on entry
    dx, grads = model.backward(cache, np.ones_like(y), layers.EVAL)
    assert dx.dtype == np.float32 and {g.dtype for g in layers.parameters(grads)} == {np.dtype(np.float32)}
    np.testing.assert_allclose(y, model(x.astype(np.float32)), rtol=1e-6)


def test_a_float64_model_stays_float64():
    model = layers.mlp(rng0, [3, 4, 2], dtype=np.float64)
    x32 = np.random.default_rng(1).standard_normal((5, 3)).astype(np.float32)
    y, cache = model.forward(x32, layers.EVAL)
    assert y.dtype == np.float64 and model(x32).dtype == np.float64
    _, grads = model.backward(cache, np.ones_like(y), layers.EVAL)
    assert {g.dtype for g in layers.parameters(grads)} == {np.dtype(np.float64)}


def test_integer_pixels_are_cast_to_the_model_dtype():
    model = layers.mlp(rng0, [3, 2])
    assert model(np.array([[0, 128, 255]], dtype=np.uint8)).dtype == np.float32


def test_layers_without_parameters_keep_the_batch_dtype():
    """No silent float64 step: an activation-only Sequence, alone or nested in a float32 model."""
    x32 = np.ones((2, 4), dtype=np.float32)
    assert layers.Sequence([layers.ReLU(), layers.Tanh()])(x32).dtype == np.float32
    model = layers.Sequence([dense(4, 5), layers.Sequence([layers.ReLU()]), dense(5, 2)])
    y, cache = model.forward(x32, layers.EVAL)
    assert y.dtype == np.float32
    _, grads = model.backward(cache, np.ones_like(y), layers.EVAL)
    assert {g.dtype for g in layers.parameters(grads)} == {np.dtype(np.float32)}


def test_mixed_parameter_dtypes_are_refused():
    with pytest.raises(TypeError, match=r"share one dtype.*float32.*float64"):
        layers.Sequence([dense(4, 5), dense(5, 2, dtype=np.float64)])


@pytest.mark.parametrize("x", [
    np.array([["1", "2"]]), np.array([[1.0, None]], dtype=object), np.ones((1, 2), dtype=complex),
    np.ones((1, 2), dtype=bool), "12",
], ids=["str", "object", "complex", "bool", "text"])
def test_non_numeric_input_is_refused(x):
    model = layers.mlp(rng0, [2, 2])
    with pytest.raises(TypeError, match=r"float or integer array, got dtype"):
        model(x)
    with pytest.raises(TypeError, match=r"float or integer array, got dtype"):
        model.forward(x, layers.EVAL)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_input_names_the_row(bad):
    model = layers.mlp(rng0, [2, 2])
    x = np.zeros((5, 2))
    x[3, 1] = bad
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the error itself, not a NumPy warning on the way to it
        with pytest.raises(ValueError, match=r"row 3 holds NaN or inf"):
            model.forward(x, layers.EVAL)
        with pytest.raises(ValueError, match=r"row 3 holds NaN or inf"):
            model(x)


def test_inference_checks_the_output_and_names_the_input_row_only_when_it_caused_a_non_finite_output():
    # -inf through a leading ReLU is 0: the output is finite and is what that row computes
    np.testing.assert_array_equal(layers.Sequence([layers.ReLU()])(np.array([[-np.inf, 1.0]])), [[0.0, 1.0]])
    with pytest.raises(ValueError, match=r"row 0 holds NaN or inf"):
        layers.Sequence([layers.ReLU()])(np.array([[np.nan, 1.0]]))
    # a finite input the model overflows on: no input row to blame, the output comes back as it is, with a
    # warning
    huge = layers.Dense(weight=np.full((2, 1), 3e38, np.float32), bias=np.zeros(1, np.float32))
    with pytest.warns(RuntimeWarning, match="overflows"):
        y = layers.Sequence([huge])(np.ones((3, 2), np.float32))
    assert np.isinf(y).all()


@attrs.frozen
class Argmax:
    """A last layer with an integer output, (n, k) -> (n,)."""

    def forward(self, x, mode):
        return x.argmax(axis=1), None

    def backward(self, cache, dy, mode):
        raise NotImplementedError


def test_inference_with_an_integer_output_still_names_a_nan_input_row():
    model = layers.Sequence([dense(2, 3), Argmax()])
    x = np.ones((4, 2), np.float32)
    assert model(x).dtype.kind == "i"
    x[2, 0] = np.nan
    with pytest.raises(ValueError, match=r"row 2 holds NaN or inf"):
        model(x)


@pytest.mark.parametrize("shape", [(0, 2), (0,), (), (3, 0)])
def test_an_empty_batch_is_refused(shape):
    model = layers.mlp(rng0, [2, 2])
    with pytest.raises(ValueError, match=re.escape(str(shape)) if shape else r"\(\)"):
        model.forward(np.zeros(shape), layers.EVAL)


def test_bad_layer_lists_are_refused():
    with pytest.raises(ValueError, match="at least one layer"):
        layers.Sequence([])
    with pytest.raises(TypeError, match=r"layers\[1\] must be a layer record.*ndarray"):
        layers.Sequence([dense(2, 2), np.ones(2)])


# --- the mode: randomness, inference ---------------------------------------------------------

@attrs.frozen
class Noise(layers.Layer):
    """Adds N(0, 1) noise in training; the identity at inference."""

    def forward(self, x, mode):
        return (x + mode.require_rng(self).standard_normal(x.shape) if mode.train else x), None

    def backward(self, cache, dy, mode):
        return dy, self


@attrs.frozen
class Plain:
    """2 x, whatever the mode."""

    def forward(self, x, mode):
        return 2 * x, None

    def backward(self, cache, dy, mode):
        return 2 * dy, self


def test_the_mode_reaches_every_layer_and_draws_happen_in_forward_order():
    d = dense(3, 3, dtype=np.float64)
    model = layers.Sequence([d, Noise(), Plain(), layers.Sequence([Noise()])])
    x = np.random.default_rng(1).standard_normal((4, 3))
    y, _ = model.forward(x, layers.Mode(train=True, rng=np.random.default_rng(7)))
    reference = np.random.default_rng(7)
    first = reference.standard_normal((4, 3))
    expected = 2 * (d(x) + first) + reference.standard_normal((4, 3))
    np.testing.assert_allclose(y, expected, rtol=1e-14)


def test_forward_advances_the_generator():
    rng = np.random.default_rng(3)
    model = layers.Sequence([Noise()])
    a, _ = model.forward(np.zeros((1, 2)), layers.Mode(train=True, rng=rng))
    b, _ = model.forward(np.zeros((1, 2)), layers.Mode(train=True, rng=rng))
    assert not np.array_equal(a, b)


def test_a_layer_that_draws_in_training_without_an_rng_says_how_to_give_one():
    model = layers.Sequence([dense(2, 2), Noise()])
    with pytest.raises(ValueError, match=r"Noise.*no rng.*layers\.Mode\(train=True, rng="):
        model.forward(np.ones((1, 2)), layers.TRAIN)


def test_call_is_forward_in_eval_bit_for_bit_and_draws_nothing():
    d = dense(3, 3, dtype=np.float64)
    x = np.random.default_rng(1).standard_normal((4, 3))
    model = layers.Sequence([d, Noise(), Plain()])
    y = model(x)
    np.testing.assert_array_equal(y, model.forward(x, layers.EVAL)[0])
    np.testing.assert_array_equal(y, 2 * d(x))


def test_inference_of_a_large_input_runs_in_chunks_with_the_same_numbers(monkeypatch):
    sizes = []
    model = layers.Sequence([dense(3, 8), layers.ReLU(), dense(8, 2)])
    forward = type(model).forward_unchecked
    monkeypatch.setattr(type(model), "forward_unchecked",
                        lambda self, x, mode: sizes.append(len(x)) or forward(self, x, mode))
    x = np.random.default_rng(2).standard_normal((5000, 3)).astype(np.float32)
    y = model(x)
    # five chunks of about 1000 rows, not one 5000-row batch; each starts at a multiple of ROW_ALIGN rows
    starts = np.cumsum([0, *sizes[:-1]])
    assert len(sizes) == 5 and sum(sizes) == 5000 and max(sizes) - min(sizes) <= ROW_ALIGN
    assert all(start % ROW_ALIGN == 0 for start in starts)
    whole = forward(model, x, layers.EVAL)[0]
    np.testing.assert_array_equal(y, whole)


def test_the_callers_input_is_never_overwritten():
    x = np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3)
    for model in (layers.Sequence([layers.ReLU()]),
                  layers.Sequence([layers.ReLU(), dense(3, 3), layers.ReLU()])):
        before = x.copy()
        model.forward(x, layers.EVAL)
        model(x)
        np.testing.assert_array_equal(x, before)


# --- input_grad ------------------------------------------------------------------------------

@attrs.frozen
class MustSkip:
    """A first layer that may only be asked for no input gradient (and says so)."""

    def forward(self, x, mode):
        return x, None

    def backward(self, cache, dy, mode):
        assert not mode.input_grad, "the Sequence should pass input_grad=False to its first layer"
        return None, self


def forward_backward(model, x, input_grad):
    y, cache = model.forward(x, layers.EVAL)
    dy = np.random.default_rng(5).standard_normal(y.shape).astype(y.dtype)
    return model.backward(cache, dy, layers.Mode(input_grad=input_grad))


@pytest.mark.parametrize("first", [
    lambda: dense(3, 3),
    lambda: Scale(gain=np.array([0.5, 1.0, 2.0], dtype=np.float32)),
    lambda: layers.Sequence([Scale(gain=np.array([0.5, 1.0, 2.0], dtype=np.float32)), dense(3, 3)]),
], ids=["Dense", "user layer", "nested"])
def test_without_input_grad_the_parameter_gradients_are_the_same(first):
    model = layers.Sequence([first(), layers.ReLU(), dense(3, 2)])
    x = np.random.default_rng(4).standard_normal((6, 3)).astype(np.float32)
    dx, grads = forward_backward(model, x, True)
    skipped, same = forward_backward(model, x, False)
    assert dx is not None and dx.shape == (6, 3)
    # Dense skips it; the user layer needn't
    assert (skipped is None) == (type(model.layers[0]) is layers.Dense)
    assert same == grads  # array fields compare with np.array_equal
    assert all(np.array_equal(a, b) for a, b in zip(layers.parameters(same), layers.parameters(grads)))


def test_without_input_grad_the_first_layer_is_told():
    model = layers.Sequence([MustSkip(), dense(3, 2)])
    dx, _ = forward_backward(model, np.ones((2, 3), dtype=np.float32), False)
    assert dx is None
    with pytest.raises(AssertionError, match="input_grad=False"):
        forward_backward(model, np.ones((2, 3), dtype=np.float32), True)


def test_backward_needs_this_sequences_cache():
    model = layers.mlp(rng0, [3, 4, 2])
    _, cache = model.forward(np.ones((2, 3)), layers.EVAL)
    with pytest.raises(ValueError, match=r"3 entries"):
        model.backward(cache[:2], np.ones((2, 2), dtype=np.float32), layers.EVAL)


# --- summary ---------------------------------------------------------------------------------

def count(text: str) -> int:
    return int(text.replace(",", ""))


def test_summary_has_one_line_per_layer_and_the_total():
    sizes = [784, 128, 64, 10]
    model = layers.mlp(rng0, sizes)
    lines = model.summary().splitlines()
    rows = [line for line in lines if line.startswith("layers[")]
    assert len(rows) == len(model.layers) == 5
    expected = [("(n, 128)", 784 * 128 + 128), ("(n, 128)", 0), ("(n, 64)", 128 * 64 + 64), ("(n, 64)", 0),
                ("(n, 10)", 64 * 10 + 10)]
    for i, (row, (shape, n)) in enumerate(zip(rows, expected)):
        assert row.startswith(f"layers[{i}]") and shape in row
        assert count(row.split()[-1]) == n, row
    total = [line for line in lines if line.startswith("total")]
    assert len(total) == 1
    assert count(re.search(r"total: ([\d,]+)", total[0]).group(1)) == sum(n for _, n in expected) == 109_386
    assert "float32" in total[0]


def test_summary_of_a_nested_model_with_unknown_shapes():
    model = layers.Sequence([layers.ReLU(), dense(4, 5), layers.Sequence([dense(5, 3), layers.Tanh()]),
                             Scale(gain=np.ones(3, dtype=np.float32))])
    rows = [line for line in model.summary().splitlines() if line.startswith("layers[")]
    assert len(rows) == 4
    assert "?" in rows[0] and "(n, 5)" in rows[1] and "(n, 3)" in rows[2] and "?" in rows[3]
    assert [count(r.split()[-1]) for r in rows] == [0, 4 * 5 + 5, 5 * 3 + 3, 3]
    assert "(n, 4)" in layers.Sequence([layers.ReLU(), dense(4, 5)]).summary(input_shape=(4,)).splitlines()[1]


# --- mlp -------------------------------------------------------------------------------------

def test_mlp_builds_the_documented_structure():
    model = layers.mlp(np.random.default_rng(1), [5, 7, 3, 2])
    assert [type(layer) for layer in model.layers] == [layers.Dense, layers.ReLU, layers.Dense, layers.ReLU,
                                                       layers.Dense]
    assert [(d.n_in, d.n_out) for d in model.layers[::2]] == [(5, 7), (7, 3), (3, 2)]
    assert all(d.weight.dtype == np.float32 and not d.bias.any() for d in model.layers[::2])
    tanh = layers.mlp(np.random.default_rng(1), [5, 7, 2], activation=layers.Tanh, dtype=np.float64)
    assert isinstance(tanh.layers[1], layers.Tanh) and tanh.dtype == np.float64
    assert len(layers.mlp(np.random.default_rng(1), [5, 2]).layers) == 1


def test_mlp_is_reproducible_from_the_generator():
    a = layers.mlp(np.random.default_rng(9), [4, 6, 2])
    b = layers.mlp(np.random.default_rng(9), [4, 6, 2])
    assert a == b and a != layers.mlp(np.random.default_rng(10), [4, 6, 2])


def test_mlp_needs_two_sizes():
    with pytest.raises(ValueError, match="at least an input and an output size"):
        layers.mlp(rng0, [5])


@pytest.mark.parametrize("init, variance", [("he", 2 / 500), ("glorot", 2 / (500 + 400))])
def test_dense_init_variance(init, variance):
    d = layers.Dense.init(np.random.default_rng(2), 500, 400, init=init, dtype=np.float64)
    # 200 000 draws: the sample variance is within 1% of the truth with overwhelming probability
    assert d.weight.var() == pytest.approx(variance, rel=0.02)
    assert abs(d.weight.mean()) < 0.01 * np.sqrt(variance)
    assert not d.bias.any()


def test_mlp_init_defaults_to_he_for_relu_and_glorot_otherwise():
    relu = layers.mlp(np.random.default_rng(3), [600, 500, 2]).layers[0].weight
    tanh = layers.mlp(np.random.default_rng(3), [600, 500, 2], activation=layers.Tanh).layers[0].weight
    glorot = layers.mlp(np.random.default_rng(3), [600, 500, 2], init="glorot").layers[0].weight
    assert relu.var() == pytest.approx(2 / 600, rel=0.02)
    assert tanh.var() == pytest.approx(2 / 1100, rel=0.02)
    assert glorot.var() == pytest.approx(2 / 1100, rel=0.02)
