"""Dense and the activations: their maths by hand, their validation, Sigmoid's stability and accuracy."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from lamina import layers


# --- Dense -----------------------------------------------------------------------------------

def test_dense_forward_and_backward_by_hand():
    d = layers.Dense(weight=np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]), bias=np.array([0.5, -0.5]))
    x = np.array([[1.0, 0.0, -1.0], [2.0, 1.0, 0.0]])
    y, cache = d.forward(x, layers.EVAL)
    np.testing.assert_array_equal(y, [[1 - 5 + 0.5, 2 - 6 - 0.5], [2 + 3 + 0.5, 4 + 4 - 0.5]])
    np.testing.assert_array_equal(d(x), y)
    dy = np.array([[1.0, -1.0], [0.0, 2.0]])
    dx, grads = d.backward(cache, dy, layers.EVAL)
    np.testing.assert_array_equal(dx, [[1 - 2, 3 - 4, 5 - 6], [4, 8, 12]])          # dy @ weight.T
    np.testing.assert_array_equal(grads.weight, [[1, -1 + 4], [0, 2], [-1, 1]])      # x.T @ dy
    np.testing.assert_array_equal(grads.bias,
                                  [1, 1])                                # dy summed over the batch
    assert isinstance(grads, layers.Dense)
    none, same = d.backward(cache, dy, layers.Mode(input_grad=False))
    assert none is None and same == grads


def test_dense_init_fields_and_repr():
    d = layers.Dense.init(np.random.default_rng(0), 784, 128)
    assert d.weight.shape == (784, 128) and d.bias.shape == (128,)
    assert d.weight.dtype == d.bias.dtype == np.float32
    assert (d.n_in, d.n_out) == (784, 128)
    assert repr(d) == "Dense(784 -> 128, float32)"
    dense = layers.Dense.init(np.random.default_rng(0), 3, 2, dtype=np.float64)
    assert repr(dense) == "Dense(3 -> 2, float64)"


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(rng=np.random.RandomState(0)), TypeError, "numpy.random.Generator first: Dense.init\\(rng, n_in, "
                                                    "n_out\\), got RandomState"),
    (dict(n_in=0), ValueError, r"n_in must be a positive int, got 0"),
    (dict(n_out=2.0), ValueError, r"n_out must be a positive int, got 2\.0"),
    (dict(n_in=True), ValueError, r"n_in must be a positive int, got True"),
    (dict(init="lecun"), ValueError, r'init must be "he", "glorot" or a float >= 0 .*, got \'lecun\''),
    (dict(dtype=np.float16), TypeError, r"float32 or float64.*float16"),
])
def test_dense_init_validation(kwargs, error, match):
    args = dict(rng=np.random.default_rng(0), n_in=3, n_out=2) | kwargs
    with pytest.raises(error, match=match):
        layers.Dense.init(**args)


def test_dense_constructor_validation():
    with pytest.raises(layers.ShapeError, match=r"bias of shape \(2,\).*bias of shape \(3,\)"):
        layers.Dense(weight=np.zeros((4, 2)), bias=np.zeros(3))
    with pytest.raises(layers.ShapeError, match=r"2-D weight"):
        layers.Dense(weight=np.zeros(4), bias=np.zeros(4))
    with pytest.raises(TypeError, match=r"share a dtype.*float64.*float32"):
        layers.Dense(weight=np.zeros((4, 2)), bias=np.zeros(2, dtype=np.float32))
    with pytest.raises(TypeError, match=r"float32 or float64 array, got dtype int64"):
        layers.Dense(weight=np.zeros((4, 2), dtype=np.int64), bias=np.zeros(2, dtype=np.int64))


def test_dense_shape_errors():
    d = layers.Dense.init(np.random.default_rng(0), 4, 3)
    with pytest.raises(layers.ShapeError, match=r"Dense\(4 -> 3, float32\) expects input \(n, 4\), but the "
                                                r"input is \(2, 5\)"):
        d.forward(np.ones((2, 5), dtype=np.float32), layers.EVAL)
    with pytest.raises(layers.ShapeError, match=r"\(n, 4\).*\(4,\)"):
        d(np.ones(4, dtype=np.float32))
    _, cache = d.forward(np.ones((2, 4), dtype=np.float32), layers.EVAL)
    with pytest.raises(layers.ShapeError, match=r"output gradient of shape \(2, 3\).*\(2, 4\)"):
        d.backward(cache, np.ones((2, 4), dtype=np.float32), layers.EVAL)
    with pytest.raises(layers.ShapeError, match=r"expects input \(n, 4\), but the input is \(n, 5\)"):
        d.output_shape((5,))


# --- activations -----------------------------------------------------------------------------

def test_relu_by_hand():
    x = np.array([[-2.0, -0.5, 0.5, 3.0]])
    y, cache = layers.ReLU().forward(x, layers.EVAL)
    np.testing.assert_array_equal(y, [[0, 0, 0.5, 3.0]])
    dx, grads = layers.ReLU().backward(cache, np.array([[1.0, 2.0, 3.0, 4.0]]), layers.EVAL)
    np.testing.assert_array_equal(dx, [[0, 0, 3.0, 4.0]])
    assert grads == layers.ReLU() and layers.parameters(grads) == []


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
@pytest.mark.parametrize("width", [3, 16, 40])   # a short last axis (the scalar 0) and long ones (a zero row)
def test_relu_gives_the_bits_of_maximum_with_zero(dtype, width):
    special = [-0.0, 0.0, np.nan, -np.inf, np.inf, -1.5, 2.5] if dtype != np.int64 else [-3, 0, 5]
    x = np.resize(np.array(special, dtype), (4, 2, width))
    y, _ = layers.ReLU().forward(x, layers.EVAL)
    by_hand = [[[max(v, 0) if v == v else v for v in row] for row in block] for block in x.tolist()]
    expected = np.array(by_hand)
    assert y.dtype == x.dtype and y.shape == x.shape
    np.testing.assert_array_equal(y, expected.astype(dtype))
    if dtype != np.int64:   # no negative zero comes out (array_equal would take -0.0 for 0.0)
        assert not np.signbit(y[y == 0]).any()


@given(hnp.arrays(np.float64, hnp.array_shapes(max_dims=3, max_side=5), elements=st.floats(-30, 30)))
def test_tanh_and_sigmoid_match_math(x):
    np.testing.assert_allclose(layers.Tanh()(x), np.vectorize(math.tanh)(x), rtol=1e-15, atol=1e-300)
    exact = np.vectorize(lambda v: 1 / (1 + math.exp(-v)))(x)
    np.testing.assert_allclose(layers.Sigmoid()(x), exact, rtol=2e-15)  # both sides within ~3 ulp


def test_activation_derivatives_by_hand():
    x = np.array([[-1.0, 0.0, 2.0]])
    dy = np.array([[1.0, 2.0, 3.0]])
    s = [1 / (1 + math.exp(1.0)), 0.5, 1 / (1 + math.exp(-2.0))]
    _, cache = layers.Sigmoid().forward(x, layers.EVAL)
    np.testing.assert_allclose(layers.Sigmoid().backward(cache, dy, layers.EVAL)[0],
                               [[v * (1 - v) * g for v, g in zip(s, [1, 2, 3])]],
                               rtol=1e-15)
    t = [math.tanh(v) for v in (-1.0, 0.0, 2.0)]
    _, cache = layers.Tanh().forward(x, layers.EVAL)
    np.testing.assert_allclose(layers.Tanh().backward(cache, dy, layers.EVAL)[0],
                               [[(1 - v * v) * g for v, g in zip(t, [1, 2, 3])]],
                               rtol=1e-15)


@pytest.mark.parametrize("activation", [layers.ReLU, layers.Sigmoid, layers.Tanh])
def test_activations_keep_shape_and_dtype(activation):
    x = np.linspace(-3, 3, 24, dtype=np.float32).reshape(2, 3, 4)
    y, cache = activation().forward(x, layers.EVAL)
    assert y.shape == x.shape and y.dtype == np.float32
    dx, _ = activation().backward(cache, np.ones_like(y), layers.EVAL)
    assert dx.shape == x.shape and dx.dtype == np.float32
    assert activation().output_shape((3, 4)) == (3, 4)
    with pytest.raises(ValueError, match=r"output gradient has shape \(2, 3\)"):
        activation().backward(cache, np.ones((2, 3), dtype=np.float32), layers.EVAL)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_is_quiet_and_exact_at_the_extremes(dtype):
    """No overflow (or any other) warning at |x| = 1e4; the limits come out exactly."""
    x = np.array([-1e4, -800.0, 800.0, 1e4], dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any RuntimeWarning would fail the test
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            y, cache = layers.Sigmoid().forward(x, layers.EVAL)
            dx, _ = layers.Sigmoid().backward(cache, np.ones_like(x), layers.EVAL)
    assert y.dtype == dtype
    np.testing.assert_array_equal(y, [0.0, 0.0, 1.0, 1.0])
    np.testing.assert_array_equal(dx, [0.0, 0.0, 0.0, 0.0])
    assert np.all(np.isfinite(dx))


def test_sigmoid_is_accurate_for_large_negative_x():
    """Relative accuracy down to x = -700, where 1 / (1 + e^-x) is ~1e-304 (a naive 1 - sigmoid(-x) gives
    0)."""
    x = np.concatenate([np.linspace(-700, 700, 2801), [-708.3, -36.7, -20.0, 36.7]])
    # exact in float64: e^x / (1 + e^x) for x < 0, 1 / (1 + e^-x) otherwise (math.exp is correctly rounded
    # to < 1 ulp, and 1 + e is either exact or within 1 ulp), so the reference is good to a few ulp
    exact = np.array([math.exp(v) / (1 + math.exp(v)) if v < 0 else 1 / (1 + math.exp(-v)) for v in x])
    assert exact.min() > np.finfo(np.float64).tiny  # all normal numbers, so relative error is meaningful
    np.testing.assert_allclose(layers.Sigmoid()(x), exact, rtol=2e-15)


def test_tanh_is_quiet_at_the_extremes():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            y = layers.Tanh()(np.array([-1e4, 1e4]))
    np.testing.assert_array_equal(y, [-1.0, 1.0])
