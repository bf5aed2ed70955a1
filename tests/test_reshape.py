"""Flatten and Reshape: row-major order of channels-last samples, shapes at build time, gradients, files and
bad input."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lamina import layers


def test_flatten_is_row_major_over_channels_last_samples():
    x = np.arange(2 * 3 * 4 * 2, dtype=np.float64).reshape(2, 3, 4, 2)
    y, cache = layers.Flatten().forward(x, layers.TRAIN)
    assert y.shape == (2, 24)
    # the channels of one pixel sit next to each other, then the pixels of a row, then the rows
    assert y[1, 0] == x[1, 0, 0, 0] and y[1, 1] == x[1, 0, 0, 1]
    assert y[1, 2] == x[1, 0, 1, 0] and y[1, 8] == x[1, 1, 0, 0]
    dx, grads = layers.Flatten().backward(cache, y * 10, layers.TRAIN)
    np.testing.assert_array_equal(dx, x * 10)
    assert grads == layers.Flatten()


def test_reshape_feeds_flat_mnist_to_a_cnn():
    x = np.arange(2 * 784, dtype=np.float32).reshape(2, 784)
    reshape = layers.Reshape((28, 28, 1))
    y, cache = reshape.forward(x, layers.TRAIN)
    assert y.shape == (2, 28, 28, 1) and y[1, 2, 3, 0] == x[1, 2 * 28 + 3]
    np.testing.assert_array_equal(reshape.backward(cache, y, layers.TRAIN)[0], x)
    assert reshape.output_shape((784,)) == (28, 28, 1) and reshape.output_shape(None) == (28, 28, 1)
    assert layers.Reshape(784).shape == (784,)


def test_reshape_infers_one_axis():
    reshape = layers.Reshape((-1, 2))
    assert reshape.output_shape((3, 4)) == (6, 2)
    assert reshape.output_shape(None) is None
    assert reshape.forward(np.zeros((5, 3, 4)), layers.EVAL)[0].shape == (5, 6, 2)


@given(st.lists(st.integers(1, 4), min_size=1, max_size=3), st.integers(1, 3), st.integers(0, 2**16))
def test_gradients(gradient_record, shape, n, seed):
    x = np.random.default_rng(seed).standard_normal((n, *shape))
    size = int(np.prod(shape))
    for layer in (layers.Flatten(), layers.Reshape((size,)), layers.Reshape((-1, shape[0]))):
        gradient_record.add(layers.check_gradients(layer, x), repr(layer))
        assert layer.forward(x, layers.EVAL)[0].shape[1:] == layer.output_shape(tuple(shape))


def test_flatten_output_shape():
    assert layers.Flatten().output_shape((5, 5, 64)) == (1600,)
    assert layers.Flatten().output_shape((10,)) == (10,)
    assert layers.Flatten().output_shape(None) is None
    assert layers.Flatten().output_shape((None, 5, 3)) is None


def test_flatten_into_a_dense_of_the_wrong_width_names_both():
    rng = np.random.default_rng(0)
    with pytest.raises(layers.ShapeError) as error:
        layers.Sequence([layers.Reshape((5, 5, 64)), layers.Flatten(), layers.Dense.init(rng, 1024, 10)])
    assert str(error.value) == ("layers[2] Dense(1024 -> 10, float32) expects input (n, 1024), "
                                "but layers[1] Flatten() gives (n, 1600)")


def test_a_reshape_of_the_wrong_size():
    with pytest.raises(layers.ShapeError, match=r"layers\[1\] Reshape\(\(28, 28, 1\)\) expects samples of "
                                                r"784 values .* but layers\[0\] Dense\(3 -> 700, float32\) "
                                                r"gives \(n, 700\) \(700 values\)"):
        layers.Sequence([layers.Dense.init(np.random.default_rng(0), 3, 700), layers.Reshape((28, 28, 1))])
    with pytest.raises(layers.ShapeError, match=r"Reshape\(\(28, 28, 1\)\) expects samples of 784 values"):
        layers.Reshape((28, 28, 1))(np.zeros((2, 785), np.float32))
    with pytest.raises(layers.ShapeError, match="a multiple of 3"):
        layers.Reshape((-1, 3)).forward(np.zeros((2, 4)), layers.EVAL)


@pytest.mark.parametrize("shape", [(), (0, 3), (-1, -1), (2, -2), (2.0, 3), "28x28", (True, 2)])
def test_bad_shapes(shape):
    with pytest.raises(ValueError, match="Reshape: shape must be"):
        layers.Reshape(shape)


def test_reshape_and_flatten_round_trip_through_a_model_file(tmp_path):
    model = layers.Sequence([layers.Reshape((2, 3, 1)), layers.Flatten(),
                             layers.Dense.init(np.random.default_rng(0), 6, 2)])
    layers.save(tmp_path / "m.npz", model)
    loaded = layers.load(tmp_path / "m.npz")
    assert loaded == model and loaded.layers[0].shape == (2, 3, 1)
    assert repr(loaded.layers[0]) == "Reshape((2, 3, 1))" and repr(loaded.layers[1]) == "Flatten()"


def test_no_input_gradient_when_the_mode_needs_none():
    x = np.zeros((2, 3, 4))
    for layer in (layers.Flatten(), layers.Reshape((12,))):
        y, cache = layer.forward(x, layers.TRAIN)
        assert layer.backward(cache, y, layers.Mode(train=True, input_grad=False))[0] is None
