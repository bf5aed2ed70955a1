"""MSE, Huber and L1: mean over all elements, as torch's mse_loss, huber_loss and l1_loss, against hand
values.

References are the element-wise definitions written in Python loops; hand values are worked out in the
docstrings.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from lamina import layers, losses

mse = losses.MSE()

shapes = st.one_of(st.tuples(st.integers(1, 6)), st.tuples(st.integers(1, 6), st.integers(1, 6)))


@st.composite
def pred_and_target(draw, shapes=shapes):
    shape = draw(shapes)
    pred = draw(hnp.arrays(np.float64, shape, elements=st.floats(-10, 10)))
    target = draw(hnp.arrays(np.float64, shape, elements=st.floats(-10, 10)))
    return pred, target


def huber_of(d, delta):
    """torch's huber_loss of one error: d^2 / 2 inside [-delta, delta], delta (|d| - delta / 2) outside."""
    return 0.5 * d * d if abs(d) < delta else delta * (abs(d) - 0.5 * delta)


# --- MSE -------------------------------------------------------------------------------------

@given(pred_and_target(shapes=st.tuples(st.integers(1, 6), st.integers(1, 6))))
def test_mse_matches_torch_formula(case):
    pred, target = case
    value, cache = mse.forward(pred, target)
    squares = [(p - t) ** 2 for p, t in zip(pred.ravel(), target.ravel())]
    assert value == pytest.approx(math.fsum(squares) / pred.size, rel=1e-12, abs=1e-300)
    np.testing.assert_allclose(mse.backward(cache), 2 * (pred - target) / pred.size, rtol=1e-15)


def test_mse_is_a_mean_over_all_elements():
    """Hand numbers: errors 1, 2, 3, 4 over a (2, 2) prediction cost (1 + 4 + 9 + 16) / 4."""
    value, cache = mse.forward(np.array([[1.0, 2.0], [3.0, 4.0]]), np.zeros((2, 2)))
    assert value == 7.5
    np.testing.assert_array_equal(mse.backward(cache), [[0.5, 1.0], [1.5, 2.0]])


@given(st.integers(1, 6), st.integers(1, 6), st.data())
def test_mse_labels_equal_one_hot_targets(n, k, data):
    pred = data.draw(hnp.arrays(np.float64, (n, k), elements=st.floats(-3, 3)))
    labels = data.draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, k - 1)))
    one_hot = np.zeros((n, k))
    for i, label in enumerate(labels):
        one_hot[i, label] = 1.0
    v1, c1 = mse.forward(pred, labels)
    v2, c2 = mse.forward(pred, one_hot)
    assert v1 == v2
    np.testing.assert_array_equal(mse.backward(c1), mse.backward(c2))


def test_mse_float32_stays_float32():
    pred = np.ones((3, 2), dtype=np.float32)
    value, cache = mse.forward(pred, np.array([0, 1, 0]))
    assert isinstance(value, float) and value == pytest.approx(0.5)
    assert mse.backward(cache).dtype == np.float32
    _, cache = mse.forward(pred, np.zeros((3, 2)))  # a float64 target is cast to the prediction's dtype
    assert mse.backward(cache).dtype == np.float32


# --- Huber -----------------------------------------------------------------------------------

def test_huber_by_hand():
    """delta = 1, errors (0.5, -2, 3): 0.5^2 / 2 = 0.125, 1 (2 - 0.5) = 1.5, 1 (3 - 0.5) = 2.5; the gradient
    clips."""
    loss = losses.Huber()
    value, cache = loss.forward(np.array([[0.5, -2.0, 3.0]]), np.zeros((1, 3)))
    assert value == pytest.approx((0.125 + 1.5 + 2.5) / 3, rel=1e-15)
    np.testing.assert_allclose(loss.backward(cache), [[0.5 / 3, -1 / 3, 1 / 3]], rtol=1e-15)


def test_huber_delta_by_hand():
    """delta = 2, errors (1, -2, 5): 1/2, 2 (at the seam both pieces give 2), 2 (5 - 1) = 8; gradients 1, -2,
    2."""
    loss = losses.Huber(delta=2.0)
    value, cache = loss.forward(np.array([4.0, 1.0, 10.0]), np.array([3.0, 3.0, 5.0]))
    assert value == pytest.approx((0.5 + 2 + 8) / 3, rel=1e-15)
    np.testing.assert_allclose(loss.backward(cache), [1 / 3, -2 / 3, 2 / 3], rtol=1e-15)


@given(pred_and_target(), st.sampled_from([1.0, 0.25, 2.5, 1e-3, 50.0]))
def test_huber_matches_torch_formula(case, delta):
    pred, target = case
    loss = losses.Huber(delta=delta)
    value, cache = loss.forward(pred, target)
    d = (pred - target).ravel()
    assert value == pytest.approx(math.fsum(huber_of(v, delta) for v in d) / d.size, rel=1e-12, abs=1e-300)
    clipped = [max(-delta, min(delta, v)) / d.size for v in d]
    np.testing.assert_allclose(loss.backward(cache).ravel(), clipped, rtol=1e-15)


def test_huber_is_half_mse_inside_delta_and_scaled_l1_far_outside():
    rng = np.random.default_rng(0)
    pred, target = rng.standard_normal((5, 3)), rng.standard_normal((5, 3))
    half_mse = mse.forward(pred, target)[0] / 2
    assert losses.Huber(delta=100.0).forward(pred, target)[0] == pytest.approx(half_mse, rel=1e-14)
    far = pred + 1e3
    delta = 0.5
    assert losses.Huber(delta=delta).forward(far, target)[0] == pytest.approx(
        delta * (losses.L1().forward(far, target)[0] - delta / 2), rel=1e-14)


@given(pred_and_target(), st.sampled_from([1.0, 0.3, 3.0]))
def test_huber_gradient_matches_finite_differences(gradient_record, case, delta):
    pred, target = case
    # off the seam, where the second derivative jumps
    assume(np.all(np.abs(np.abs(pred - target) - delta) > 1e-3))
    assume(np.abs(pred - target).max() > 0.1)  # a gradient of ~0 everywhere is all rounding
    error = layers.check_loss_gradient(losses.Huber(delta=delta), pred, target)
    gradient_record.add(error, "Huber")
    assert error < 1e-6


@pytest.mark.parametrize("delta", [0.0, -1.0, float("nan"), float("inf"), "1", None, True])
def test_huber_delta_must_be_positive_and_finite(delta):
    with pytest.raises(ValueError, match=r"Huber: delta must be a positive finite number, got"):
        losses.Huber(delta=delta)


# --- L1 --------------------------------------------------------------------------------------

def test_l1_by_hand():
    """Errors (1, -2, 0, 0.5): mean 3.5 / 4; the gradient sign / 4, and 0 at zero error (as torch's)."""
    loss = losses.L1()
    value, cache = loss.forward(np.array([[1.0, -2.0], [7.0, 0.5]]), np.array([[0.0, 0.0], [7.0, 0.0]]))
    assert value == 0.875
    np.testing.assert_array_equal(loss.backward(cache), [[0.25, -0.25], [0.0, 0.25]])


@given(pred_and_target())
def test_l1_matches_torch_formula(case):
    pred, target = case
    # some errors exactly 0
    target = np.where(np.arange(pred.size).reshape(pred.shape) % 3 == 0, pred, target)
    value, cache = losses.L1().forward(pred, target)
    d = (pred - target).ravel()
    assert value == pytest.approx(math.fsum(abs(v) for v in d) / d.size, rel=1e-12, abs=1e-300)
    signs = [1.0 if v > 0 else -1.0 if v < 0 else 0.0 for v in d]
    np.testing.assert_array_equal(losses.L1().backward(cache).ravel(), np.array(signs) / d.size)


@given(pred_and_target())
def test_l1_gradient_matches_finite_differences(gradient_record, case):
    pred, target = case
    assume(np.all(np.abs(pred - target) > 1e-3))  # off the kink at zero error
    error = layers.check_loss_gradient(losses.L1(), pred, target)
    gradient_record.add(error, "L1")
    assert error < 1e-6


# --- shared ----------------------------------------------------------------------------------

@pytest.mark.parametrize("loss", [losses.Huber(), losses.L1()], ids=["Huber", "L1"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_keeps_the_prediction_dtype(loss, dtype):
    value, cache = loss.forward(np.full((3, 2), 2, dtype=dtype), np.zeros((3, 2)))
    assert isinstance(value, float)
    assert loss.backward(cache).dtype == dtype


@pytest.mark.parametrize("loss", [losses.Huber(), losses.L1()], ids=["Huber", "L1"])
def test_huber_and_l1_take_float_targets_of_the_prediction_shape(loss):
    name = type(loss).__name__
    with pytest.raises(layers.ShapeError, match=rf"{name} expects a target of the prediction's shape \(3, "
                                                r"1\), but the target gives \(3,\)"):
        loss.forward(np.zeros((3, 1)), np.zeros(3))
    with pytest.raises(TypeError, match=f"{name}: a target array must be float, got dtype int64"):
        loss.forward(np.zeros((3, 2)), np.zeros((3, 2), dtype=np.int64))
    with pytest.raises(ValueError, match=f"{name}: target row 1 holds NaN or inf"):
        loss.forward(np.zeros((3, 2)), np.array([[0.0, 1.0], [np.inf, 0.0], [0.0, 0.0]]))


def test_huber_records_compare_by_delta():
    assert losses.Huber(delta=2) == losses.Huber(delta=2.0) != losses.Huber()
    assert losses.L1() == losses.L1()
    with pytest.raises(AttributeError):
        losses.Huber().delta = 3.0
