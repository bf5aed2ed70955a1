"""Dense, LayerNorm, the element-wise layers and Dropout on inputs of any rank (n, ..., f), as torch's."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lamina import layers
from sequence_checks import check_both_modes

ELEMENTWISE = [layers.ReLU(), layers.Sigmoid(), layers.Tanh(), layers.GELU(), layers.Identity(),
               layers.LeakyReLU(0.1)]


def test_dense_maps_the_last_axis_as_torch_linear():
    rng = np.random.default_rng(0)
    dense = layers.Dense.init(rng, 4, 3, dtype=np.float64)
    x = rng.standard_normal((2, 5, 6, 4))
    y, cache = dense.forward(x, layers.EVAL)
    assert y.shape == (2, 5, 6, 3)
    np.testing.assert_allclose(y, np.einsum("abci,io->abco", x, dense.weight) + dense.bias, rtol=1e-12)
    dy = rng.standard_normal(y.shape)
    dx, grads = dense.backward(cache, dy, layers.EVAL)
    np.testing.assert_allclose(dx, dy @ dense.weight.T, rtol=1e-12)
    np.testing.assert_allclose(grads.weight, np.einsum("abci,abco->io", x, dy), rtol=1e-12)
    np.testing.assert_allclose(grads.bias, dy.sum(axis=(0, 1, 2)), rtol=1e-12)
    assert dense.output_shape((5, 6, 4)) == (5, 6, 3) and dense.output_shape((None, 4)) == (None, 3)


def test_dense_refuses_another_width_on_the_last_axis():
    dense = layers.Dense.init(np.random.default_rng(0), 4, 3)
    with pytest.raises(layers.ShapeError, match=r"Dense\(4 -> 3, float32\) expects input \(n, \.\.\., 4\), "
                                                r"but the "
                                                r"input is \(2, 7, 5\)"):
        dense(np.zeros((2, 7, 5), np.float32))
    with pytest.raises(layers.ShapeError, match=r"expects input \(n, \.\.\., 4\).*\(n, 7, 5\)"):
        dense.output_shape((7, 5))
    with pytest.raises(layers.ShapeError, match=r"expects an output gradient of shape \(2, 7, 3\)"):
        dense.backward(np.zeros((2, 7, 4)), np.zeros((2, 7, 4)), layers.EVAL)


def test_a_float32_sequence_stays_float32_through_every_layer():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 5, 4)).astype(np.float32)
    mode = layers.Mode(train=True, rng=rng)
    for layer in [*ELEMENTWISE, layers.Dense.init(rng, 4, 4), layers.LayerNorm.init(4), layers.Dropout(0.3)]:
        y, cache = layer.forward(x, mode)
        dx, _ = layer.backward(cache, np.ones_like(y), mode)
        assert y.dtype == dx.dtype == np.float32, layer


def test_dropout_on_a_sequence_zeroes_elements_and_scales_the_rest():
    x = np.ones((4, 50, 20))
    y, _ = layers.Dropout(0.25).forward(x, layers.Mode(train=True, rng=np.random.default_rng(0)))
    assert set(np.unique(y)) == {0.0, 1 / 0.75}
    assert abs((y == 0).mean() - 0.25) < 0.02
    np.testing.assert_array_equal(layers.Dropout(0.25)(x), x)


@st.composite
def ranked(draw):
    """A float64 input (n, ..., f) of rank 2 to 4."""
    shape = draw(st.lists(st.integers(1, 4), min_size=1, max_size=3))
    n = draw(st.integers(1, 3))
    f = draw(st.integers(3, 5))
    seed = draw(st.integers(0, 2**16))
    return np.random.default_rng(seed).standard_normal((n, *shape[:-1], f)) * 1.5


@given(x=ranked(), which=st.integers(0, len(ELEMENTWISE) + 2))
def test_gradients_on_any_rank(gradient_record, x, which):
    rng = np.random.default_rng(which)
    f = x.shape[-1]
    extra = [layers.Dense.init(rng, f, f, dtype=np.float64),
             layers.LayerNorm(weight=rng.normal(1, 0.2, f), bias=rng.normal(0, 0.2, f)), layers.Dropout(0.4)]
    layer = (ELEMENTWISE + extra)[which]
    check_both_modes(layer, x, gradient_record, f"{layer!r} on {x.shape}")
