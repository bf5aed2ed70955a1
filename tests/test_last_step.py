"""LastStep: (n, t, f) -> (n, f), the gradient to the last step only."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lamina import layers
from sequence_checks import check_both_modes


def test_takes_the_last_step_and_sends_the_gradient_back_there():
    x = np.arange(24.0).reshape(2, 3, 4)
    y, cache = layers.LastStep().forward(x, layers.EVAL)
    np.testing.assert_array_equal(y, x[:, 2])
    dx, grads = layers.LastStep().backward(cache, np.ones((2, 4)), layers.EVAL)
    assert grads == layers.LastStep() and not dx[:, :2].any() and (dx[:, 2] == 1).all()
    assert layers.LastStep().backward(cache, np.ones((2, 4)), layers.Mode(input_grad=False))[0] is None
    assert layers.LastStep().output_shape((7, 4)) == (4,) and layers.LastStep().output_shape(None) is None


def test_a_flat_input_is_a_shape_error_that_says_sequences():
    with pytest.raises(layers.ShapeError, match=r"^layers\[1\] LastStep\(\) expects sequences \(n, t, f\) "
                                                r"with t >= 1, but layers\[0\] Dense\(4 -> 4, float32\) "
                                                r"gives \(n, 4\)"):
        layers.Sequence([layers.Dense.init(np.random.default_rng(0), 4, 4), layers.LastStep()])
    with pytest.raises(layers.ShapeError, match=r"expects sequences \(n, t, f\).*\(n, 0, 4\)"):
        layers.LastStep().forward(np.zeros((2, 0, 4)), layers.EVAL)


@given(n=st.integers(1, 3), t=st.integers(1, 5), f=st.integers(1, 4), seed=st.integers(0, 2**16))
def test_gradients(gradient_record, n, t, f, seed):
    x = np.random.default_rng(seed).standard_normal((n, t, f))
    check_both_modes(layers.LastStep(), x, gradient_record, "LastStep")
