"""PositionalEmbedding: weight[:t] added to each sequence, its gradient summed over the batch, too long a
sequence."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lamina import layers
from sequence_checks import check_both_modes, check_saved_and_loaded


def positional(max_length=5, dim=3):
    return layers.PositionalEmbedding.init(np.random.default_rng(0), max_length, dim, dtype=np.float64)


def test_adds_the_first_t_rows_and_sums_the_gradient_over_the_batch():
    pos = positional()
    x = np.random.default_rng(1).standard_normal((2, 4, 3))
    y, cache = pos.forward(x, layers.EVAL)
    np.testing.assert_array_equal(y, x + pos.weight[:4])
    dy = np.random.default_rng(2).standard_normal(y.shape)
    dx, grads = pos.backward(cache, dy, layers.EVAL)
    np.testing.assert_array_equal(dx, dy)
    np.testing.assert_array_equal(grads.weight[:4], dy.sum(axis=0))
    assert not grads.weight[4].any()
    assert pos.backward(cache, dy, layers.Mode(input_grad=False))[0] is None
    assert repr(pos) == "PositionalEmbedding(5 x 3, float64)" and (pos.max_length, pos.dim) == (5, 3)


def test_a_sequence_longer_than_max_length_is_a_shape_error_with_the_path():
    embedding = layers.Embedding.init(np.random.default_rng(0), 9, 3, dtype=np.float64)
    model = layers.Sequence([embedding, positional()])
    with pytest.raises(layers.ShapeError, match=r"^layers\[1\] PositionalEmbedding\(5 x 3, float64\) expects "
                                                r"sequences of at most 5 steps .* gives \(n, 6, 3\)"):
        model(np.zeros((2, 6), np.int64))
    with pytest.raises(layers.ShapeError, match=r"at most 5 steps"):
        model.summary((6,))
    with pytest.raises(layers.ShapeError,
                       match=r"expects sequences \(n, t, 3\), but the input is \(n, 4, 2\)"):
        positional().forward(np.zeros((2, 4, 2)), layers.EVAL)
    assert positional().output_shape((5, 3)) == (5, 3)


def test_saved_and_loaded(tmp_path):
    check_saved_and_loaded(positional(), np.ones((1, 2, 3)), tmp_path)


@given(n=st.integers(1, 3), t=st.integers(1, 6), dim=st.integers(1, 4), seed=st.integers(0, 2**16))
def test_gradients(gradient_record, n, t, dim, seed):
    rng = np.random.default_rng(seed)
    pos = layers.PositionalEmbedding.init(rng, 6, dim, dtype=np.float64)
    check_both_modes(pos, rng.standard_normal((n, t, dim)), gradient_record, repr(pos))
